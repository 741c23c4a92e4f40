//! Where the LAN directory is: the standard address, derived from this host's own address.
//!
//! As in the original layer-cake, a LAN's directory (lan-cake) runs at `.195` of the private
//! range the hosts are in, on port 54195, so no host needs to be told where it is:
//!
//! | host address | LAN directory |
//! |---|---|
//! | `192.168.x.x` | `192.168.0.195:54195` |
//! | `172.16.x.x` – `172.31.x.x` | `172.16.0.195:54195` |
//! | `10.x.x.x` | `10.0.0.195:54195` |
//! | anything else (public, loopback, link-local, shared, documentation ranges) | none: give the address explicitly (`--directory-at-lan`) |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The port every directory daemon listens on by default (host-cake on loopback, lan-cake on
/// all interfaces).
pub const DIRECTORY_PORT: u16 = 54195;

/// The standard LAN directory for a host at `ip`, if its range has one.
pub fn standard_lan_directory(ip: Ipv4Addr) -> Option<SocketAddr> {
    let at = |a, b| {
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(a, b, 0, 195)),
            DIRECTORY_PORT,
        ))
    };
    match ip.octets() {
        [192, 168, _, _] => at(192, 168),
        [172, b, _, _] if (16..=31).contains(&b) => at(172, 16),
        [10, _, _, _] => at(10, 0),
        _ => None,
    }
}

/// This host's primary IPv4 address: the first address in a private range on an interface
/// that is up, in the order the system lists them; failing that, the first that is not
/// loopback or link-local. `None` when the host has no such address.
pub fn primary_ipv4() -> Option<Ipv4Addr> {
    let addrs: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified() => Some(v4),
            _ => None,
        })
        .collect();
    addrs
        .iter()
        .copied()
        .find(|a| standard_lan_directory(*a).is_some())
        .or_else(|| addrs.first().copied())
}

/// The standard LAN directory for this host (from [`primary_ipv4`]), if it has one.
pub fn lan_directory() -> Option<SocketAddr> {
    primary_ipv4().and_then(standard_lan_directory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lan(a: u8, b: u8, c: u8, d: u8) -> Option<String> {
        standard_lan_directory(Ipv4Addr::new(a, b, c, d)).map(|s| s.to_string())
    }

    #[test]
    fn each_private_range_has_its_directory_and_the_edges_do_not() {
        assert_eq!(lan(192, 168, 1, 50).as_deref(), Some("192.168.0.195:54195"));
        assert_eq!(lan(192, 168, 0, 195).as_deref(), Some("192.168.0.195:54195"));
        assert_eq!(lan(192, 168, 255, 255).as_deref(), Some("192.168.0.195:54195"));
        assert_eq!(lan(172, 16, 0, 1).as_deref(), Some("172.16.0.195:54195"));
        assert_eq!(lan(172, 31, 255, 254).as_deref(), Some("172.16.0.195:54195"));
        assert_eq!(lan(10, 0, 0, 2).as_deref(), Some("10.0.0.195:54195"));
        assert_eq!(lan(10, 255, 255, 255).as_deref(), Some("10.0.0.195:54195"));
        for (a, b, c, d) in [
            (172, 15, 255, 255), // just below 172.16/12
            (172, 32, 0, 0),     // just above it
            (192, 167, 1, 1),
            (192, 169, 1, 1),
            (11, 0, 0, 1),
            (9, 255, 255, 255),
            (127, 0, 0, 1),   // loopback
            (169, 254, 1, 1), // link-local
            (100, 64, 0, 1),  // shared (carrier-grade NAT)
            (192, 0, 2, 1),   // documentation
            (198, 51, 100, 1),
            (203, 0, 113, 1),
            (8, 8, 8, 8), // public
            (0, 0, 0, 0),
            (255, 255, 255, 255),
        ] {
            assert_eq!(lan(a, b, c, d), None, "{a}.{b}.{c}.{d}");
        }
    }

    proptest! {
        /// Every IPv4 address: a directory exactly when the address is in one of the three
        /// private ranges (the standard library's own test), and then always `.195` of the
        /// range's first network, on the directory port.
        #[test]
        fn only_private_addresses_have_a_standard_directory(bits in any::<u32>()) {
            let ip = Ipv4Addr::from(bits);
            let dir = standard_lan_directory(ip);
            prop_assert_eq!(dir.is_some(), ip.is_private());
            if let Some(SocketAddr::V4(d)) = dir {
                prop_assert_eq!(d.port(), DIRECTORY_PORT);
                prop_assert_eq!(d.ip().octets()[3], 195);
                prop_assert_eq!(d.ip().octets()[2], 0);
                prop_assert_eq!(d.ip().octets()[0], ip.octets()[0]);
            }
        }
    }

    #[test]
    fn every_second_octet_of_172_is_classified() {
        for b in 0..=255u8 {
            let expected = (16..=31).contains(&b);
            assert_eq!(lan(172, b, 7, 7).is_some(), expected, "172.{b}.7.7");
        }
    }
}
