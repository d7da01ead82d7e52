//! Security finding 1 (SSRF through a partner server's URL), against real HTTPS listeners on
//! loopback: redirects are not followed, the address actually connected to is checked (so a
//! name that resolves to an internal address is refused however it resolved before), address
//! literals are checked, and only hosts the operator names get through to private addresses.

use meshwork_app::config::Config;
use meshwork_app::remote::link::{
    PeerClient, PeerMethod, PeerRequest, PeerTransport, TransportError,
};
use meshwork_peer_client::HttpsPeers;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTPS listener on 127.0.0.1 that answers every request with `answer` and counts the
/// connections it accepted.
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start(cert: &rcgen::CertifiedKey, answer: String) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = socket.accept().await else {
                    return;
                };
                seen.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn ok_answer() -> String {
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
        .to_string()
}

/// A certificate for localhost and 127.0.0.1, and a config trusting it.
fn setup(dir: &std::path::Path) -> (rcgen::CertifiedKey, Config) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let ca = dir.join("peer-ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let mut config = Config::default();
    config.overlap.peer_ca_file = ca.display().to_string();
    (cert, config)
}

fn get(url: &str) -> PeerRequest<'_> {
    PeerRequest {
        method: PeerMethod::Get,
        url,
        headers: vec![],
        body: vec![],
        max_answer_bytes: 1024,
    }
}

#[tokio::test]
async fn ssrf_peer_redirect_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, mut config) = setup(dir.path());
    // Both listeners are on loopback, so private peers are allowed here: what is refused is
    // the redirect itself.
    config.overlap.allow_private_peers = true;
    let internal = Listener::start(&cert, ok_answer()).await;
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: https://localhost:{}/internal\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        internal.port
    );
    let partner = Listener::start(&cert, redirect).await;
    let client = PeerClient::new(&config, HttpsPeers::shared(&config).unwrap());
    let e = client
        .send(
            &format!("https://localhost:{}", partner.port),
            Some(&[7; 32]),
            PeerMethod::Post,
            "/peer/v1/x",
            b"{}".to_vec(),
            "application/json",
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("redirect"), "{}", e.message);
    assert_eq!(partner.connections(), 1, "asked once, not retried");
    assert_eq!(internal.connections(), 0, "the redirect was followed");
}

#[tokio::test]
async fn ssrf_the_address_connected_to_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, mut config) = setup(dir.path());
    let internal = Listener::start(&cert, ok_answer()).await;
    let transport = HttpsPeers::new(&config).unwrap();
    // A name that resolves to loopback is refused by the transport itself, with no check
    // before it: so a name that resolved to a public address a moment ago gains nothing.
    for url in [
        format!("https://localhost:{}/peer/v1/x", internal.port),
        format!("https://127.0.0.1:{}/peer/v1/x", internal.port),
    ] {
        match transport.send(get(&url)).await {
            Err(TransportError::Refused(why)) => {
                assert!(why.contains("overlap.private_peers"), "{url}: {why}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // A name that does not resolve fails too.
    assert!(transport
        .send(get("https://no-such-host.invalid/peer/v1/x"))
        .await
        .is_err());
    assert_eq!(
        internal.connections(),
        0,
        "a refused address was connected to"
    );

    // The operator may name a private peer; only that name gets through.
    config.overlap.private_peers = vec!["localhost".into()];
    let transport = HttpsPeers::new(&config).unwrap();
    let (status, body) = transport
        .send(get(&format!(
            "https://localhost:{}/peer/v1/x",
            internal.port
        )))
        .await
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"{}"[..]));
    assert!(matches!(
        transport
            .send(get(&format!(
                "https://127.0.0.1:{}/peer/v1/x",
                internal.port
            )))
            .await,
        Err(TransportError::Refused(_))
    ));
    assert_eq!(internal.connections(), 1);
}
