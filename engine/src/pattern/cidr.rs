//! The `cidr` operator: an IPv4 or IPv6 block (`10.0.0.0/24`, `2001:db8::/32`) matched
//! against event strings that parse as IP addresses of the same family.

use std::net::IpAddr;

use super::PatternError;

/// A compiled CIDR block, kept as a masked integer so matching is two ANDs and a compare.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cidr {
    /// IPv4 network and mask.
    V4 { net: u32, mask: u32 },
    /// IPv6 network and mask.
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    /// Parse `a.b.c.d/n` or `x:y::z/n`. A bare address is accepted as a single-host block
    /// (as event-ruler does). Host bits beyond the prefix are ignored.
    pub(crate) fn parse(text: &str, path: &str) -> Result<Self, PatternError> {
        let bad = |why: &str| {
            PatternError::new(
                path,
                format!(
                    "invalid CIDR block {text:?} ({why}); expected e.g. \"10.0.0.0/24\" or \"2001:db8::/32\""
                ),
            )
        };
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u32 = match len {
            None => max,
            Some(l) => match l.parse::<u32>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => return Err(bad(&format!("prefix length must be 0..={max}"))),
            },
        };
        Ok(match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                Cidr::V4 {
                    net: u32::from(v4) & mask,
                    mask,
                }
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                Cidr::V6 {
                    net: u128::from(v6) & mask,
                    mask,
                }
            }
        })
    }

    /// Whether the event string `s` is an address inside the block.
    pub(crate) fn contains(&self, s: &str) -> bool {
        match (self, s.parse::<IpAddr>()) {
            (Cidr::V4 { net, mask }, Ok(IpAddr::V4(ip))) => u32::from(ip) & mask == *net,
            (Cidr::V6 { net, mask }, Ok(IpAddr::V6(ip))) => u128::from(ip) & mask == *net,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s, "x").expect("valid cidr")
    }

    #[test]
    fn ipv4_blocks() {
        assert!(c("10.0.0.0/24").contains("10.0.0.33"));
        assert!(!c("10.0.0.0/24").contains("10.0.1.33"));
        assert!(c("10.0.0.0/8").contains("10.255.1.1"));
        assert!(c("0.0.0.0/0").contains("1.2.3.4"));
        assert!(c("34.204.172.166").contains("34.204.172.166"));
        assert!(!c("34.204.172.166").contains("34.204.172.167"));
        assert!(
            c("10.0.0.7/24").contains("10.0.0.200"),
            "host bits are masked"
        );
        assert!(!c("10.0.0.0/24").contains("not an ip"));
        assert!(
            !c("10.0.0.0/24").contains("::ffff:10.0.0.1"),
            "families do not mix"
        );
    }

    #[test]
    fn ipv6_blocks() {
        assert!(c("2001:db8::/32").contains("2001:db8:1::5"));
        assert!(!c("2001:db8::/32").contains("2001:db9::5"));
        assert!(c("::/0").contains("fe80::1"));
        assert!(!c("2001:db8::/32").contains("10.0.0.1"));
    }

    #[test]
    fn bad_blocks_are_rejected() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "2001:db8::/129",
            "x/1",
            "10.0.0.0/",
            "1.2.3.4/+8",
        ] {
            let e = Cidr::parse(bad, "detail.ip[0].cidr").expect_err(bad);
            assert_eq!(e.path, "detail.ip[0].cidr");
            assert!(e.message.contains("10.0.0.0/24"), "{}", e.message);
        }
    }
}
