//! The HTTP transport of connectors that speak HTTP (CardDAV), plugged into `meshwork-app` by
//! the server and the CLI: `meshwork-app` and `meshwork-connectors` know no HTTP client.
//!
//! reqwest over rustls: certificates are checked against the system's roots; at most five
//! redirects are followed (reqwest drops the credentials on a redirect to another host); no
//! proxy is used; a connection must open within 10 s and a request end within 2 minutes; an
//! answer is read up to the request's `max_answer` bytes, never whole before that check.
//!
//! Every address connected to passes the operator's [`AddressPolicy`] (security finding 19):
//! the resolver keeps only the allowed addresses of a name, so the address checked is the
//! address connected to; an address literal is checked before the request and at each
//! redirect (the resolver never sees literals).

use meshwork_connectors::address::AddressPolicy;
use meshwork_connectors::{HttpAnswer, HttpError, HttpRequest, HttpTransport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The transport.
#[derive(Debug, Clone)]
pub struct ConnectorHttp {
    client: reqwest::Client,
    addresses: AddressPolicy,
}

/// A resolver that answers only the addresses the policy allows for the name.
#[derive(Debug)]
struct CheckedResolver {
    addresses: AddressPolicy,
}

/// A refusal, found again in reqwest's error chain.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addresses = self.addresses.clone();
        Box::pin(async move {
            let kept: Vec<SocketAddr> =
                addresses
                    .resolve(name.as_str(), 0)
                    .await
                    .map_err(|e| match e {
                        meshwork_connectors::ConnectorError::Settings(why) => {
                            Box::new(Refusal(why)) as Box<dyn std::error::Error + Send + Sync>
                        }
                        other => other.to_string().into(),
                    })?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal of a URL whose host is an address literal the policy refuses.
fn literal_refused(addresses: &AddressPolicy, url: &reqwest::Url) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => std::net::IpAddr::V4(ip),
        url::Host::Ipv6(ip) => std::net::IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    addresses
        .check(url.host_str().unwrap_or_default(), ip)
        .err()
}

impl ConnectorHttp {
    /// The transport, connecting only where `addresses` allows.
    pub fn new(addresses: AddressPolicy) -> Result<Self, String> {
        let checked = addresses.clone();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("more than 5 redirects")
                } else if let Some(why) = literal_refused(&checked, attempt.url()) {
                    attempt.error(Refusal(why))
                } else {
                    attempt.follow()
                }
            }))
            .dns_resolver(Arc::new(CheckedResolver {
                addresses: addresses.clone(),
            }))
            .no_proxy()
            .user_agent(concat!(
                "Meshwork/",
                env!("CARGO_PKG_VERSION"),
                " connectors"
            ))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, addresses })
    }

    /// The transport, shared.
    pub fn shared(addresses: AddressPolicy) -> Result<Arc<dyn HttpTransport>, String> {
        Ok(Arc::new(Self::new(addresses)?))
    }
}

/// An error with its causes ("error sending request: connection refused").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cause = c.source();
    }
    s
}

/// The policy's refusal, if that is what stopped the request.
fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refusal>() {
            return Some(r.0.clone());
        }
        cause = c.source();
    }
    None
}

#[async_trait::async_trait]
impl HttpTransport for ConnectorHttp {
    async fn send(&self, r: HttpRequest<'_>) -> Result<HttpAnswer, HttpError> {
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|_| HttpError::Unreachable(format!("{:?} is not an HTTP method", r.method)))?;
        if let Some(why) = literal_refused(&self.addresses, r.url) {
            return Err(HttpError::Refused(why));
        }
        let mut req = self.client.request(method, r.url.clone()).body(r.body);
        for (k, v) in r.headers {
            req = req.header(k, v);
        }
        if let Some((user, password)) = r.basic_auth {
            req = req.basic_auth(user, Some(password));
        }
        let mut resp = req.send().await.map_err(|e| match refusal(&e) {
            Some(why) => HttpError::Refused(why),
            None => HttpError::Unreachable(chain(&e)),
        })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| HttpError::Unreachable(chain(&e)))?
        {
            if body.len() + chunk.len() > r.max_answer {
                return Err(HttpError::TooLarge(r.max_answer));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> AddressPolicy {
        AddressPolicy::new(vec![], vec!["127.0.0.0/8".parse().unwrap()])
    }

    async fn propfind(http: &ConnectorHttp, url: &str) -> Result<HttpAnswer, HttpError> {
        let url: reqwest::Url = url.parse().unwrap();
        http.send(HttpRequest {
            method: "PROPFIND",
            url: &url,
            headers: vec![],
            basic_auth: None,
            body: String::new(),
            max_answer: 1000,
        })
        .await
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_named() {
        let http = ConnectorHttp::new(loopback()).unwrap();
        let e = propfind(&http, "http://127.0.0.1:1/").await.unwrap_err();
        assert!(
            matches!(e, HttpError::Unreachable(ref m) if m.contains("onnect")),
            "{e}"
        );
    }

    /// A server on loopback that answers every request with `answer`, counting requests.
    async fn serve(answer: String) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(answer.as_bytes()).await;
            }
        });
        (port, count)
    }

    #[tokio::test]
    async fn finding_19_internal_addresses_are_refused_by_name_by_literal_and_on_redirect() {
        let (port, count) =
            serve("HTTP/1.1 207 Multi-Status\r\ncontent-length: 0\r\n\r\n".into()).await;
        let closed = ConnectorHttp::new(AddressPolicy::default()).unwrap();
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://[::ffff:169.254.169.254]/".to_string(),
        ] {
            let e = propfind(&closed, &url).await.unwrap_err();
            assert!(matches!(e, HttpError::Refused(_)), "{url}: {e}");
        }
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);

        // Listed loopback is reached, but not a redirect from it to the metadata service.
        let open = ConnectorHttp::new(loopback()).unwrap();
        assert_eq!(
            propfind(&open, &format!("http://127.0.0.1:{port}/"))
                .await
                .unwrap()
                .status,
            207
        );
        let (redirecting, _) = serve(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\n\r\n".into(),
        )
        .await;
        let e = propfind(&open, &format!("http://127.0.0.1:{redirecting}/"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, HttpError::Refused(ref m) if m.contains("never")),
            "{e}"
        );
    }
}
