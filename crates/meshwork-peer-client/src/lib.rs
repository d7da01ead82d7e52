//! `meshwork-peer-client`: the HTTPS transport for requests to partner Meshwork servers
//! (two-server overlap), over reqwest and rustls. It verifies certificates against the public
//! roots and `overlap.peer_ca_file`, speaks HTTPS only, and reads at most the answer size the
//! request allows. `meshwork-app` decides what to send, signs it, checks addresses and retries;
//! this crate only carries one request, so the application layer needs no HTTP client.
//!
//! Against server-side request forgery (security finding 1) it follows no redirect, uses no
//! proxy, and connects only where the application's [`PeerAddressPolicy`] allows: its resolver
//! drops special-purpose addresses (so the address checked is the address connected to, and
//! DNS rebinding gains nothing), a name that does not resolve fails, and an address literal is
//! checked before the request.

use meshwork_app::config::Config;
use meshwork_app::remote::link::{
    PeerAddressPolicy, PeerMethod, PeerRequest, PeerTransport, TransportError,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// reqwest over rustls, HTTPS only.
#[derive(Debug, Clone)]
pub struct HttpsPeers {
    http: reqwest::Client,
    policy: PeerAddressPolicy,
}

/// A resolver that keeps only the addresses the policy allows for the name.
#[derive(Debug)]
struct FilteringResolver {
    policy: PeerAddressPolicy,
}

/// Why a name was not resolved to anything usable: found again in reqwest's error chain.
#[derive(Debug)]
struct AddressRefused(String);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressRefused {}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.allows(&host, a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(AddressRefused(PeerAddressPolicy::refusal(&host)))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpsPeers {
    /// Trusts the public roots and the certificates in `overlap.peer_ca_file`.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(FilteringResolver {
                policy: PeerAddressPolicy::from_config(config),
            }))
            .connect_timeout(Duration::from_secs(10))
            // A session's last query chunk waits for the partner's half of the work.
            .timeout(Duration::from_secs(600))
            .user_agent(concat!("meshwork/", env!("CARGO_PKG_VERSION")));
        if !config.overlap.peer_ca_file.is_empty() {
            let path = &config.overlap.peer_ca_file;
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("overlap.peer_ca_file {path}: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("overlap.peer_ca_file {path}: {e}"))?;
            if certs.is_empty() {
                anyhow::bail!("overlap.peer_ca_file {path}: no PEM certificate in it");
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        Ok(Self {
            http: builder.build()?,
            policy: PeerAddressPolicy::from_config(config),
        })
    }

    /// The transport as the application layer takes it.
    pub fn shared(config: &Config) -> anyhow::Result<Arc<dyn PeerTransport>> {
        Ok(Arc::new(Self::new(config)?))
    }
}

#[async_trait::async_trait]
impl PeerTransport for HttpsPeers {
    async fn send(&self, request: PeerRequest<'_>) -> Result<(u16, Vec<u8>), TransportError> {
        let method = match request.method {
            PeerMethod::Get => reqwest::Method::GET,
            PeerMethod::Post => reqwest::Method::POST,
            PeerMethod::Put => reqwest::Method::PUT,
            PeerMethod::Delete => reqwest::Method::DELETE,
        };
        // The resolver sees names only; an address literal is checked here.
        let url = reqwest::Url::parse(request.url)
            .map_err(|e| TransportError::Refused(format!("{}: {e}", request.url)))?;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            let host = url.host_str().unwrap_or_default();
            if !self.policy.allows(host, ip) {
                return Err(TransportError::Refused(PeerAddressPolicy::refusal(host)));
            }
        }
        let mut req = self.http.request(method, url).body(request.body);
        for (name, value) in request.headers {
            req = req.header(name, value);
        }
        let resp = req.send().await.map_err(|e| match refused(&e) {
            Some(why) => TransportError::Refused(why),
            None => TransportError::Unreachable(describe(&e)),
        })?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, request.max_answer_bytes).await?;
        Ok((status, body))
    }
}

/// Reads an answer's body, at most `max` bytes.
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, TransportError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(TransportError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| TransportError::Unreachable(describe(&e)))?
    {
        if out.len() + chunk.len() > max {
            return Err(TransportError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The resolver's refusal, if that is why the request failed.
fn refused(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<AddressRefused>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}

/// A transport error with its causes (reqwest's own message is often just "error sending
/// request").
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
