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
}

/// Carries one request to a partner server over HTTPS and answers its status and body. The
/// implementation (`meshwork-peer-client`) verifies certificates against the public roots and
/// `overlap.peer_ca_file`.
#[async_trait::async_trait]
pub trait PeerTransport: Send + Sync + std::fmt::Debug {
    async fn send(&self, request: PeerRequest<'_>) -> Result<(u16, Vec<u8>), TransportError>;
}

/// The client for partner servers: address checks, signatures and retries over a
/// [`PeerTransport`].
#[derive(Debug, Clone)]
pub struct PeerClient {
    transport: std::sync::Arc<dyn PeerTransport>,
    /// Whether partner servers may be at loopback, private or link-local addresses.
    allow_private: bool,
}

/// Largest answer read from a partner server (a chunk is 128 KiB).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Whether `ip` is an address no partner server on the internet has: loopback, private,
/// link-local, unique-local, unspecified, multicast or documentation.
fn is_private(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

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
            allow_private: config.overlap.allow_private_peers,
        }
    }

    /// Refuses partner addresses inside private networks unless `overlap.allow_private_peers`
    /// (so that an invitation cannot aim this server at its own network). A host name is
    /// resolved and every address checked.
    pub async fn check_address(&self, url: &str) -> AppResult<()> {
        if self.allow_private {
            return Ok(());
        }
        let refuse = || {
            AppError::new(
                ErrorCode::InvalidField,
                format!("the partner server {url} is at a loopback, private or link-local address; set overlap.allow_private_peers to allow it"),
            )
        };
        let parsed = url::Url::parse(url).map_err(|_| refuse())?;
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![(ip, port).into()],
            Some(url::Host::Ipv6(ip)) => vec![(ip, port).into()],
            Some(url::Host::Domain(d)) => match tokio::net::lookup_host((d, port)).await {
                Ok(a) => a.collect(),
                // Unresolvable: the request will fail and say so.
                Err(_) => return Ok(()),
            },
            None => return Err(refuse()),
        };
        if addrs.iter().any(|a| is_private(a.ip())) {
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
        self.check_address(base_url).await?;
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
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
