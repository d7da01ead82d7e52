//! Internet addresses: which ones are special-purpose (loopback, private, link-local and the
//! rest of RFC 6890's registries), and which ones no outgoing connection may ever reach (cloud
//! metadata services). Used by every client that connects where a person said to: partner
//! servers (`overlap.private_peers`) and connectors (`connectors.private_hosts`), against
//! server-side request forgery (security findings 1 and 19).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is in a special-purpose range no public server on the internet is at
/// (RFC 6890 and the IANA registries): unspecified, "this network", loopback, private,
/// shared (CGNAT), link-local, IETF protocol assignments, documentation, benchmarking,
/// reserved, multicast and broadcast; for IPv6 also unique-local, site-local, discard,
/// NAT64 (64:ff9b::/96 and 64:ff9b:1::/48), the IPv4-compatible and IPv4-mapped forms, and
/// 6to4 (2002::/16) and Teredo (2001::/32) addresses, whose embedded IPv4 address is where
/// the packets really go.
pub fn is_special_purpose(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            a == 0 // 0.0.0.0/8, "this network"
                || a == 10
                || a == 127
                || a == 100 && (b & 0xc0) == 64 // 100.64.0.0/10, shared
                || a == 169 && b == 254
                || a == 172 && (b & 0xf0) == 16
                || a == 192 && b == 0 && c == 0 // 192.0.0.0/24, IETF protocol assignments
                || a == 192 && b == 0 && c == 2 // TEST-NET-1
                || a == 192 && b == 88 && c == 99 // 6to4 relay anycast (deprecated)
                || a == 192 && b == 168
                || a == 198 && (b & 0xfe) == 18 // 198.18.0.0/15, benchmarking
                || a == 198 && b == 51 && c == 100 // TEST-NET-2
                || a == 203 && b == 0 && c == 113 // TEST-NET-3
                || a >= 224 // multicast 224/4, reserved 240/4, broadcast
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special_purpose(IpAddr::V4(v4));
            }
            let embedded = |hi: u16, lo: u16| {
                is_special_purpose(IpAddr::V4(Ipv4Addr::from(((hi as u32) << 16) | lo as u32)))
            };
            v6.is_unspecified()
                || v6.is_loopback()
                || s[..6] == [0; 6] // ::/96, IPv4-compatible (deprecated)
                || s[..4] == [0x100, 0, 0, 0] // 100::/64, discard
                || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] // 64:ff9b::/96, NAT64
                || s[..3] == [0x64, 0xff9b, 1] // 64:ff9b:1::/48, local NAT64
                || s[0] == 0x2001 && s[1] == 0 // 2001::/32, Teredo
                || s[0] == 0x2001 && s[1] == 0xdb8 // documentation
                || s[0] == 0x2001 && (s[1] & 0xfff0) == 0x10 // ORCHIDv1 (2001:10::/28)
                || s[0] == 0x2002 && embedded(s[1], s[2]) // 6to4 around a special IPv4
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10, link local
                || (s[0] & 0xffc0) == 0xfec0 // fec0::/10, site local (deprecated)
                || (s[0] & 0xff00) == 0xff00 // multicast
        }
    }
}

/// Whether `ip` is somewhere no outgoing connection goes, whatever the operator allows: the
/// unspecified address and "this network" (0.0.0.0/8, which Linux connects to the host
/// itself), link-local addresses (169.254.0.0/16 and fe80::/10, where cloud instances find
/// their metadata service and credentials), multicast, reserved and broadcast addresses, and
/// the metadata services outside link-local (AWS `fd00:ec2::254`, Alibaba `100.100.100.200`,
/// Azure's WireServer `168.63.129.16`). An IPv6 address that carries an IPv4 address
/// (IPv4-mapped, IPv4-compatible, 6to4, NAT64) is judged by the IPv4 address.
pub fn is_never_reachable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            a == 0
                || a == 169 && b == 254
                || a >= 224
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || v4 == Ipv4Addr::new(168, 63, 129, 16)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_never_reachable(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_unspecified()
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xff00) == 0xff00
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// The IPv4 address an IPv6 address carries, where its packets really go: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, not `::` or `::1`), 6to4
/// (`2002:AABB:CCDD::/48`) and NAT64 (`64:ff9b::/96`).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let join = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0; 6] && !(v6.is_unspecified() || v6.is_loopback()) {
        Some(join(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(join(s[1], s[2]))
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(join(s[6], s[7]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrf_special_purpose_ranges_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "::127.0.0.1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
            "ff02::1",
        ] {
            assert!(is_special_purpose(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "2606:4700::1111",
            "100.128.0.1",
            "198.20.0.1",
            "2002:808:808::1",
            "2a00:1450::1",
        ] {
            assert!(!is_special_purpose(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn metadata_and_link_local_addresses_are_never_reachable_in_any_form() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "100.100.100.200",
            "168.63.129.16",
            "::",
            "fe80::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "2002:a9fe:a9fe::1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_never_reachable(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.5",
            "192.168.1.1",
            "8.8.8.8",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "2606:4700::1111",
        ] {
            assert!(!is_never_reachable(ip.parse().unwrap()), "{ip}");
        }
    }
}
