//! Where connectors may connect (security finding 19, server-side request forgery).
//!
//! A workspace admin types a connector's host, and the server connects there. Connectors exist
//! to read a team's own servers, which are usually on internal addresses, so internal
//! addresses cannot simply be refused; but neither may any workspace aim the server at
//! whatever its network reaches (the database, a cloud metadata service, another tenant's
//! intranet). The operator decides:
//!
//! - an address no outgoing connection may reach ([`is_never_reachable`]: link-local, cloud
//!   metadata, multicast, unspecified) is always refused;
//! - a special-purpose address ([`is_special_purpose`]: loopback, private, unique-local, …) is
//!   refused unless the host name, the address or a range holding it is listed in
//!   `connectors.private_hosts`;
//! - any other (public) address is allowed.
//!
//! The check is made on every address a name resolves to, at the moment of connecting, and the
//! connection goes to an address that passed it ([`AddressPolicy::connect`]; the HTTP
//! transport filters in its resolver and checks each redirect the same way), so a name that
//! resolves to a public address when the settings are saved and to an internal one later (DNS
//! rebinding) gains nothing.

use crate::{ConnectorError, Result};
use meshwork_domain::net::{is_never_reachable, is_special_purpose};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The operator's allow list of internal hosts, and the rules above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Host names, lower case, without a trailing dot; `*.example.org` allows every name under
    /// `example.org`.
    names: Vec<String>,
    /// Addresses and ranges.
    nets: Vec<ipnet::IpNet>,
}

impl AddressPolicy {
    /// Allows internal hosts by name (`ldap.corp.example`, `*.corp.example`) and by address or
    /// range (`10.0.0.0/8`, `::1`), as `connectors.private_hosts` lists them.
    pub fn new(names: Vec<String>, nets: Vec<ipnet::IpNet>) -> Self {
        Self {
            names: names.into_iter().map(|n| normal(&n)).collect(),
            nets,
        }
    }

    /// Whether a connection to `ip`, reached through `host` (a name or an address literal),
    /// may be made; the refusal names the host and what would allow it, never the address a
    /// name resolved to (that would tell a workspace admin the layout of the operator's
    /// network).
    pub fn check(&self, host: &str, ip: IpAddr) -> std::result::Result<(), String> {
        let ip = ip.to_canonical();
        if is_never_reachable(ip) {
            tracing::warn!(host, %ip, "connector address refused: link-local, metadata or reserved");
            return Err(format!(
                "{host} is at a link-local, cloud metadata or reserved address, which connectors never connect to"
            ));
        }
        if !is_special_purpose(ip) || self.lists(host, ip) {
            return Ok(());
        }
        tracing::warn!(host, %ip, "connector address refused: internal and not in connectors.private_hosts");
        Err(format!(
            "{host} is at a loopback, private or other internal address; connectors reach internal servers only when this server's operator lists them in connectors.private_hosts"
        ))
    }

    fn lists(&self, host: &str, ip: IpAddr) -> bool {
        let host = normal(host);
        self.nets.iter().any(|n| n.contains(&ip))
            || self.names.iter().any(|n| match n.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => *n == host,
            })
    }

    /// The addresses of `host` (a name or an address literal) at `port` that may be connected
    /// to. A name that does not resolve is unreachable (a temporary failure); one whose every
    /// address is refused is a settings error, with the refusal.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| ConnectorError::Unreachable(format!("{host}: {e}")))?
                .collect(),
        };
        let mut refusal = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check(host, a.ip()) {
                Ok(()) => true,
                Err(why) => {
                    refusal.get_or_insert(why);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refusal) {
            (false, _) => Ok(allowed),
            (true, Some(why)) => Err(ConnectorError::Settings(why)),
            (true, None) => Err(ConnectorError::Unreachable(format!(
                "{host}: the name has no address"
            ))),
        }
    }

    /// A TCP connection to `host` at `port`, on the first allowed address that answers within
    /// `timeout` (each address gets the whole timeout).
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<tokio::net::TcpStream> {
        let mut last = None;
        for addr in self.resolve(host, port).await? {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => return Ok(tcp),
                Ok(Err(e)) => last = Some(format!("{host}:{port}: {e}")),
                Err(_) => last = Some(format!("{host}:{port}: timed out")),
            }
        }
        Err(ConnectorError::Unreachable(
            last.unwrap_or_else(|| format!("{host}:{port}: no address")),
        ))
    }
}

/// A host name as compared: lower case, without brackets or a trailing dot.
fn normal(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_need_the_operators_listing_and_metadata_never_passes() {
        let none = AddressPolicy::default();
        assert!(none.check("ldap.example.org", ip("93.184.216.34")).is_ok());
        for (host, addr) in [
            ("127.0.0.1", "127.0.0.1"),
            ("ldap.corp", "10.0.0.5"),
            ("[::1]", "::1"),
            ("mail.corp", "::ffff:192.168.1.2"),
        ] {
            let e = none.check(host, ip(addr)).unwrap_err();
            assert!(
                e.contains("connectors.private_hosts") && e.contains(host),
                "{e}"
            );
            assert!(
                !e.contains(addr) || host.contains(addr),
                "names the address: {e}"
            );
        }

        let listed = AddressPolicy::new(
            vec!["LDAP.Corp.".into(), "*.mail.corp".into()],
            vec![
                "127.0.0.1/32".parse().unwrap(),
                "192.168.0.0/16".parse().unwrap(),
            ],
        );
        assert!(listed.check("ldap.corp", ip("10.0.0.5")).is_ok());
        assert!(listed.check("imap.mail.corp", ip("10.0.0.6")).is_ok());
        assert!(listed.check("mail.corp", ip("10.0.0.6")).is_err());
        assert!(listed.check("evilmail.corp", ip("10.0.0.6")).is_err());
        assert!(listed.check("other.corp", ip("10.0.0.5")).is_err());
        assert!(listed.check("localhost", ip("127.0.0.1")).is_ok());
        assert!(listed.check("localhost", ip("127.0.0.2")).is_err());
        assert!(listed.check("x", ip("::ffff:192.168.1.2")).is_ok());

        let everything = AddressPolicy::new(
            vec!["metadata.google.internal".into()],
            vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
        );
        for addr in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
        ] {
            let e = everything
                .check("metadata.google.internal", ip(addr))
                .unwrap_err();
            assert!(e.contains("never"), "{addr}: {e}");
        }
    }

    #[tokio::test]
    async fn a_refused_host_is_never_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let e = AddressPolicy::default()
            .connect("127.0.0.1", port, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectorError::Settings(_)), "{e}");
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was made");

        let allowed = AddressPolicy::new(vec![], vec!["127.0.0.0/8".parse().unwrap()]);
        allowed
            .connect("localhost", port, Duration::from_secs(1))
            .await
            .unwrap();
    }
}
