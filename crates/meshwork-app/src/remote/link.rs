//! How two Meshwork servers find and trust each other: invitations, the link key, signed
//! requests, and the client that sends them (over the transport the binary plugs in).
//!
//! - An **invitation** (`mwinv1.` + base64url JSON) names the inviting server's URL, its
//!   partnership id and a 256-bit secret. The inviting server keeps only the secret's SHA-256.
//!   It travels out of band (the admins pass it to each other) and is good for one acceptance.
//! - On acceptance the invited server draws a fresh 256-bit **link key** and hands it over,
//!   with the invitation's secret, in one HTTPS request; from then on the invitation is spent,
//!   so someone who saw it later learns nothing of the link key.
//! - Every later request between the two servers is **signed**: HMAC-SHA256 under the link key
//!   over a domain tag, the method, the path and query, the sender's clock in milliseconds and
//!   the SHA-256 of the body. A receiver refuses a signature that does not verify, or a clock
//!   more than five minutes off. Replaying a request within that window repeats an idempotent
//!   step (every step is idempotent, and a run id is refused twice).
//! - Transport is HTTPS only, verified against the public roots plus `overlap.peer_ca_file`.
//!   This crate knows no HTTP client: [`PeerTransport`] carries one request, and the binary
//!   plugs in the HTTPS one (`meshwork-peer-client`). Retries, signatures, address checks and
//!   answer limits stay here.

use crate::error::{AppError, AppResult};
use crate::state::now_millis;
use base64::Engine;
use hmac::{Hmac, Mac};
use meshwork_config::Config;
use meshwork_domain::ErrorCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// What an invitation starts with.
pub const INVITATION_PREFIX: &str = "mwinv1.";
pub const TIME_HEADER: &str = "x-meshwork-peer-time";
pub const SIGNATURE_HEADER: &str = "x-meshwork-peer-signature";
/// How far a signed request's clock may be from the receiver's.
pub const SIGNATURE_WINDOW_MS: i64 = 5 * 60 * 1000;
const SIGNATURE_DOMAIN: &[u8] = b"meshwork-peer-v1";
/// Attempts of one request when the network or the partner's server fails.
const ATTEMPTS: u32 = 5;

/// The contents of an invitation.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invitation {
    /// The inviting server's public URL.
    pub url: String,
    /// The inviting side's partnership id.
    pub partnership: String,
    /// 32 random bytes, hex.
    pub secret: String,
}

impl std::fmt::Debug for Invitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invitation")
            .field("url", &self.url)
            .field("partnership", &self.partnership)
            .finish_non_exhaustive()
    }
}

impl Invitation {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("invitation serializes");
        format!(
            "{INVITATION_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Parses an invitation, naming what is wrong with a bad one.
    pub fn decode(text: &str) -> AppResult<Self> {
        let bad = |why: &str| {
            AppError::new(
                ErrorCode::InvitationInvalid,
                format!("field `invitation`: {why}"),
            )
        };
        let body = text
            .trim()
            .strip_prefix(INVITATION_PREFIX)
            .ok_or_else(|| bad("an invitation starts with `mwinv1.`; paste it whole"))?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad("the invitation is damaged (not base64url); paste it whole"))?;
        let inv: Invitation = serde_json::from_slice(&json)
            .map_err(|_| bad("the invitation is damaged (not an invitation); paste it whole"))?;
        check_peer_url(&inv.url).map_err(|e| bad(&e))?;
        if hex::decode(&inv.secret).map(|s| s.len()) != Ok(32)
            || uuid::Uuid::parse_str(&inv.partnership).is_err()
        {
            return Err(bad("the invitation is damaged (bad secret or id)"));
        }
        Ok(inv)
    }

    /// SHA-256 of the secret, as the inviting server keeps it.
    pub fn secret_hash(&self) -> Vec<u8> {
        secret_hash(&self.secret)
    }
}

pub fn secret_hash(secret_hex: &str) -> Vec<u8> {
    Sha256::digest(secret_hex.as_bytes()).to_vec()
}

/// A partner server URL must be `https://host[:port][/path]`, without credentials, query or
/// fragment.
pub fn check_peer_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if parsed.scheme() != "https" {
        return Err(format!(
            "{url:?} is not https://: partner servers talk over HTTPS only"
        ));
    }
    if parsed.host().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(format!(
            "{url:?} must be https://host[:port][/path], without credentials, query or fragment"
        ));
    }
    Ok(())
}

/// The partner's side of an active link, sealed in the partnership row.
#[derive(Clone, Serialize, Deserialize)]
pub struct PeerLink {
    /// The partner server's public URL.
    pub url: String,
    /// The partner's partnership id (the path segment of its peer routes).
    pub partnership: String,
    /// The partner workspace's name, as it gave it.
    pub name: String,
    /// The link key, hex.
    pub link_key: String,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("url", &self.url)
            .field("partnership", &self.partnership)
            .finish_non_exhaustive()
    }
}

impl PeerLink {
    pub fn key(&self) -> AppResult<[u8; 32]> {
        hex::decode(&self.link_key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| AppError::internal("a stored link key is not 32 bytes"))
    }
}

fn mac(key: &[u8; 32], method: &str, path: &str, time: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [
        SIGNATURE_DOMAIN,
        method.as_bytes(),
        path.as_bytes(),
        time.to_string().as_bytes(),
        &Sha256::digest(body),
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The signature of a request, hex.
pub fn sign(key: &[u8; 32], method: &str, path: &str, time: i64, body: &[u8]) -> String {
    hex::encode(mac(key, method, path, time, body).finalize().into_bytes())
}

/// Checks a request's signature and clock (constant-time comparison).
pub fn verify(
    key: &[u8; 32],
    method: &str,
    path: &str,
    time: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> AppResult<()> {
    let refuse = |why: &str| AppError::new(ErrorCode::PeerSignatureInvalid, why.to_string());
    let time: i64 = time
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| refuse("the request has no valid x-meshwork-peer-time header"))?;
    let signature = signature
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| refuse("the request has no valid x-meshwork-peer-signature header"))?;
    if mac(key, method, path, time, body)
        .verify_slice(&signature)
        .is_err()
    {
        return Err(refuse(
            "the request is not signed with this partnership's link key",
        ));
    }
    if (now_millis() - time).abs() > SIGNATURE_WINDOW_MS {
        return Err(refuse(
            "the request's clock is more than five minutes off; check both servers' time",
        ));
    }
    Ok(())
}

/// The method of a request to a partner server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMethod {
    Get,
    Post,
    Put,
    Delete,
}

impl PeerMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerMethod::Get => "GET",
            PeerMethod::Post => "POST",
            PeerMethod::Put => "PUT",
            PeerMethod::Delete => "DELETE",
        }
    }
}

/// One request to a partner server, as the transport sends it.
#[derive(Debug)]
pub struct PeerRequest<'a> {
    pub method: PeerMethod,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The most answer bytes to read; a longer answer is [`TransportError::TooLarge`].
    pub max_answer_bytes: usize,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum TransportError {
    /// The network or TLS failed; the text names the causes (for the log only).
    Unreachable(String),
    /// The answer was longer than the request allowed.
    TooLarge,
    /// The request was not sent: the address it would reach is not allowed (the text says
    /// why, for the caller). Not retried.
    Refused(String),
}

/// Carries one request to a partner server over HTTPS and answers its status and body. The
/// implementation (`meshwork-peer-client`) verifies certificates against the public roots and
/// `overlap.peer_ca_file`, connects only to addresses its [`PeerAddressPolicy`] allows (checked
/// on the addresses it resolves and connects to), follows no redirect and uses no proxy.
#[async_trait::async_trait]
pub trait PeerTransport: Send + Sync + std::fmt::Debug {
    async fn send(&self, request: PeerRequest<'_>) -> Result<(u16, Vec<u8>), TransportError>;
}

/// The client for partner servers: address checks, signatures and retries over a
/// [`PeerTransport`].
#[derive(Debug, Clone)]
pub struct PeerClient {
    transport: std::sync::Arc<dyn PeerTransport>,
    policy: PeerAddressPolicy,
}

/// Largest answer read from a partner server (a chunk is 128 KiB).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Which addresses a partner server may be at (security finding 1, SSRF). Partner servers are
/// on the internet: a name or address in a special-purpose range (loopback, private,
/// link-local, and the rest [`is_special_purpose`] lists) is refused, unless the operator
/// allows every private peer (`overlap.allow_private_peers`) or names this host in
/// `overlap.private_peers`. The transport applies it to the address it actually connects to
/// (its resolver filters), so a name that resolves to a public address when checked and to an
/// internal one when connecting (DNS rebinding) gains nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAddressPolicy {
    allow_private: bool,
    /// Host names and address literals (lower case, IPv6 without brackets) allowed anywhere.
    named: Vec<String>,
}

impl PeerAddressPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            allow_private: config.overlap.allow_private_peers,
            named: config
                .overlap
                .private_peers
                .iter()
                .map(|h| {
                    h.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Whether `host` (a name, or an address literal) may be at a special-purpose address.
    pub fn trusts_host(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.');
        self.allow_private || self.named.iter().any(|n| n.eq_ignore_ascii_case(host))
    }

    /// Whether a connection to `ip`, reached through `host`, may be made.
    pub fn allows(&self, host: &str, ip: std::net::IpAddr) -> bool {
        !is_special_purpose(ip) || self.trusts_host(host)
    }

    /// The refusal of `host`, naming the settings that would allow it.
    pub fn refusal(host: &str) -> String {
        format!(
            "the partner server {host} is at a loopback, private or other special-purpose address; \
             name it in overlap.private_peers (or set overlap.allow_private_peers) to allow it"
        )
    }
}

pub use meshwork_domain::net::is_special_purpose;

/// An answer of a partner server that is not a success.
#[derive(Debug)]
pub struct PeerRefusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl PeerClient {
    pub fn new(config: &Config, transport: std::sync::Arc<dyn PeerTransport>) -> Self {
        Self {
            transport,
            policy: PeerAddressPolicy::from_config(config),
        }
    }

    /// Checks a partner server's URL before it is stored or first used, for a clear answer at
    /// once: its host must resolve, and only to addresses the [`PeerAddressPolicy`] allows.
    /// This is not what protects the server (a name may resolve differently a moment later);
    /// the transport applies the same policy to the address it connects to.
    pub async fn check_address(&self, url: &str) -> AppResult<()> {
        let parsed = url::Url::parse(url).map_err(|e| {
            AppError::new(
                ErrorCode::InvalidField,
                format!("{url:?} is not a URL: {e}"),
            )
        })?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let refuse = || AppError::new(ErrorCode::InvalidField, PeerAddressPolicy::refusal(&host));
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![(ip, port).into()],
            Some(url::Host::Ipv6(ip)) => vec![(ip, port).into()],
            Some(url::Host::Domain(d)) => match tokio::net::lookup_host((d, port)).await {
                Ok(a) => a.collect(),
                // Fails closed: a name that does not resolve now is not taken on trust.
                Err(e) => {
                    return Err(AppError::new(
                        ErrorCode::InvalidField,
                        format!(
                        "the partner server's name {d} does not resolve ({e}); check the address"
                    ),
                    ))
                }
            },
            None => return Err(refuse()),
        };
        if addrs.is_empty() || addrs.iter().any(|a| !self.policy.allows(&host, a.ip())) {
            return Err(refuse());
        }
        Ok(())
    }

    /// Sends one request to a partner server, signed when `key` is given; retries when the
    /// network or the partner's server fails (every peer step is idempotent). Answers the body
    /// of a success, or the partner's refusal.
    pub async fn send(
        &self,
        base_url: &str,
        key: Option<&[u8; 32]>,
        method: PeerMethod,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Result<Vec<u8>, PeerRefusal>, AppError> {
        let url = format!("{}{path}", base_url.trim_end_matches('/'));
        let mut last_error = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            let mut headers = vec![("content-type", content_type.to_string())];
            if let Some(key) = key {
                let time = now_millis();
                headers.push((TIME_HEADER, time.to_string()));
                headers.push((
                    SIGNATURE_HEADER,
                    sign(key, method.as_str(), path, time, &body),
                ));
            }
            let request = PeerRequest {
                method,
                url: &url,
                headers,
                body: body.clone(),
                max_answer_bytes: MAX_ANSWER_BYTES,
            };
            let (status, bytes) = match self.transport.send(request).await {
                Ok(answer) => answer,
                Err(TransportError::Unreachable(why)) => {
                    tracing::warn!(url = %url, error = %why, attempt, "partner server unreachable");
                    last_error = why;
                    continue;
                }
                Err(TransportError::Refused(why)) => {
                    return Err(AppError::new(ErrorCode::PeerUnavailable, why));
                }
                Err(TransportError::TooLarge) => {
                    return Err(AppError::new(
                        ErrorCode::PeerUnavailable,
                        format!("the partner's server at {base_url} answered more than {MAX_ANSWER_BYTES} bytes; the run is abandoned"),
                    ))
                }
            };
            if (200..300).contains(&status) {
                return Ok(Ok(bytes));
            }
            if (300..400).contains(&status) {
                // Redirects are not followed: they could steer a signed request anywhere.
                return Err(AppError::new(
                    ErrorCode::PeerUnavailable,
                    format!("the partner's server at {base_url} answered a redirect ({status}), which is not followed; check the partnership's address"),
                ));
            }
            if matches!(status, 502..=504) {
                last_error = format!("it answered {status}");
                continue;
            }
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let text = |k: &str| {
                body.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            return Ok(Err(PeerRefusal {
                status,
                code: text("code"),
                message: text("message"),
            }));
        }
        // The cause goes to the log only: an answer naming it would let an invitation probe
        // what listens where.
        tracing::warn!(url = %base_url, error = %last_error, "partner server unreachable; giving up");
        Err(AppError::new(
            ErrorCode::PeerUnavailable,
            format!("the partner's server at {base_url} could not be reached after {ATTEMPTS} attempts (the server log has the cause); nothing was shared, retry later"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_the_same_request_and_key() {
        let key = [7u8; 32];
        let now = now_millis();
        let t = now.to_string();
        let sig = sign(&key, "PUT", "/peer/v1/x", now, b"body");
        assert!(verify(&key, "PUT", "/peer/v1/x", Some(&t), Some(&sig), b"body").is_ok());
        for (m, p, b, k) in [
            ("POST", "/peer/v1/x", &b"body"[..], key),
            ("PUT", "/peer/v1/y", &b"body"[..], key),
            ("PUT", "/peer/v1/x", &b"bodY"[..], key),
            ("PUT", "/peer/v1/x", &b"body"[..], [8u8; 32]),
        ] {
            let e = verify(&k, m, p, Some(&t), Some(&sig), b).unwrap_err();
            assert_eq!(e.code, ErrorCode::PeerSignatureInvalid);
        }
        // A stale clock is refused even with a valid signature.
        let old = now - SIGNATURE_WINDOW_MS - 1000;
        let sig = sign(&key, "PUT", "/p", old, b"");
        let e = verify(&key, "PUT", "/p", Some(&old.to_string()), Some(&sig), b"").unwrap_err();
        assert!(e.message.contains("five minutes"), "{}", e.message);
        assert!(verify(&key, "PUT", "/p", None, Some(&sig), b"").is_err());
        assert!(verify(&key, "PUT", "/p", Some(&t), Some("zz"), b"").is_err());
    }

    #[test]
    fn invitations_round_trip_and_bad_ones_say_why() {
        let inv = Invitation {
            url: "https://crm.example.com".into(),
            partnership: "0192f5e0-7d1c-7a00-8000-000000000001".into(),
            secret: hex::encode([1u8; 32]),
        };
        assert_eq!(Invitation::decode(&inv.encode()).unwrap(), inv);
        for (text, why) in [
            ("hello", "starts with"),
            ("mwinv1.!!!", "base64url"),
            ("mwinv1.e30", "not an invitation"),
        ] {
            let e = Invitation::decode(text).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvitationInvalid);
            assert!(e.message.contains(why), "{text}: {}", e.message);
        }
        let http = Invitation {
            url: "http://crm.example.com".into(),
            ..inv
        };
        let e = Invitation::decode(&http.encode()).unwrap_err();
        assert!(e.message.contains("HTTPS only"), "{}", e.message);
        assert!(!format!("{http:?}").contains(&http.secret));
    }

    #[test]
    fn ssrf_named_private_peers_are_the_only_exception() {
        let mut config = Config::default();
        config.overlap.private_peers = vec!["Partner.Internal".into(), "[fd00::5]".into()];
        let policy = PeerAddressPolicy::from_config(&config);
        let private: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        assert!(policy.allows("partner.internal", private));
        assert!(policy.allows("partner.internal.", private));
        assert!(policy.allows("[fd00::5]", "fd00::5".parse().unwrap()));
        assert!(!policy.allows("other.internal", private));
        assert!(policy.allows("other.example", "8.8.8.8".parse().unwrap()));
        config.overlap.allow_private_peers = true;
        assert!(PeerAddressPolicy::from_config(&config).allows("other.internal", private));
    }

    #[tokio::test]
    async fn ssrf_unresolvable_peer_refused() {
        #[derive(Debug)]
        struct Never;
        #[async_trait::async_trait]
        impl PeerTransport for Never {
            async fn send(&self, _: PeerRequest<'_>) -> Result<(u16, Vec<u8>), TransportError> {
                unreachable!("nothing is sent")
            }
        }
        let client = PeerClient::new(&Config::default(), std::sync::Arc::new(Never));
        let e = client
            .check_address("https://no-such-host.invalid")
            .await
            .unwrap_err();
        assert!(e.message.contains("does not resolve"), "{}", e.message);
        let e = client
            .check_address("https://localhost:9")
            .await
            .unwrap_err();
        assert!(e.message.contains("overlap.private_peers"), "{}", e.message);
    }
}
