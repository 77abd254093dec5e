//! The network rules in one place: how a TCP connection is opened, what counts as this
//! machine (loopback), and how far an outgoing request may reach an address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tokio::net::{TcpStream, ToSocketAddrs};

/// Resolves `to`, connects to the first address that answers (in the resolver's order),
/// all within `timeout`, with `TCP_NODELAY` set: every protocol here writes a command
/// and waits for its answer, which Nagle's algorithm would hold back ~40 ms.
pub async fn connect(to: impl ToSocketAddrs, timeout: Duration) -> io::Result<TcpStream> {
    tokio::time::timeout(timeout, connect_first(to))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {} s", timeout.as_secs()),
            )
        })?
}

async fn connect_first(to: impl ToSocketAddrs) -> io::Result<TcpStream> {
    let mut last = None;
    for address in tokio::net::lookup_host(to).await? {
        match TcpStream::connect(address).await {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

/// Whether `ip` is this machine's loopback: 127.0.0.0/8, ::1, and 127.x.y.z written as
/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`, what a dual-stack listener reports).
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether `host` (a name or an address, IPv6 with or without brackets) names this
/// machine's loopback. Only `localhost` among names: another name may resolve anywhere.
/// 0.0.0.0 is not loopback (it means "any address" and reaches the network's view).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost") || bare.parse().is_ok_and(is_loopback_ip)
}

/// Whether a database URL (`postgres://…`) reaches the server on this machine: a
/// loopback host, a Unix socket (a path as the host, or `?host=/path`), or no host at
/// all (the driver then uses the local socket or localhost).
pub fn database_is_local(url: &url::Url) -> bool {
    let socket = |host: &str| host.starts_with('/') || host.to_ascii_lowercase().starts_with("%2f");
    if let Some((_, host)) = url.query_pairs().find(|(key, _)| key == "host") {
        return socket(&host) || is_loopback_host(&host);
    }
    match url.host_str() {
        None | Some("") => true,
        Some(host) => socket(host) || is_loopback_host(host),
    }
}

/// How far an outgoing request (a webhook) may reach an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A public address: always allowed.
    Public,
    /// Loopback or a private range: only with `webhooks.allow_private_targets`.
    Private,
    /// Link-local, cloud metadata, unspecified, multicast, broadcast, reserved: never.
    Forbidden,
}

impl Reach {
    /// A forbidden address stays forbidden even in a private range.
    fn of(forbidden: bool, private: bool) -> Reach {
        if forbidden {
            Reach::Forbidden
        } else if private {
            Reach::Private
        } else {
            Reach::Public
        }
    }
}

/// Well-known cloud metadata addresses outside the link-local ranges (those are
/// forbidden whole): Alibaba Cloud's, Azure's WireServer, AWS's over IPv6.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// How far a webhook may reach `ip`. An IPv6 address that carries an IPv4 one
/// (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged as
/// that IPv4 address.
pub fn classify(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, _, _] = ip.octets();
    let forbidden = a == 0 // "this network", 0.0.0.0 included
        || ip.is_link_local() // 169.254.0.0/16: cloud metadata
        || ip.is_multicast()
        || a >= 240 // reserved, and the broadcast address
        || METADATA_V4.contains(&ip);
    let private = is_loopback_ip(IpAddr::V4(ip))
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0.0/24, protocol assignments
        || (a == 198 && (b == 18 || b == 19)); // 198.18.0.0/15, benchmarking
    Reach::of(forbidden, private)
}

fn classify_v6(ip: Ipv6Addr) -> Reach {
    let first = ip.segments()[0];
    let forbidden = ip.is_unspecified()
        || (first & 0xffc0) == 0xfe80 // fe80::/10, link-local
        || ip.is_multicast() // ff00::/8
        || METADATA_V6.contains(&ip);
    let private = is_loopback_ip(IpAddr::V6(ip))
        || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (first & 0xffc0) == 0xfec0; // fec0::/10, the old site-local
    Reach::of(forbidden, private)
}

/// The IPv4 address an IPv6 one stands for, if it is one of the forms that reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let from = |hi: u16, lo: u16| Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => from(hi, lo),
        [0x2002, hi, lo, ..] => from(hi, lo),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "::",
            "[::]",
            "10.0.0.1",
            "::ffff:10.0.0.1",
            "127.example.com",
            "localhost.example.com",
            "mail.example.com",
            "",
            "[::1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn local_database_urls() {
        let local = |u: &str| database_is_local(&url::Url::parse(u).unwrap());
        assert!(local("postgres://maildesk@localhost/maildesk"));
        assert!(local("postgres://u:p@127.0.0.1:5432/db"));
        assert!(local("postgres://u@[::1]:5432/db"));
        assert!(local("postgres:///maildesk"));
        assert!(local("postgres:///maildesk?host=/var/run/postgresql"));
        assert!(local("postgres://%2Fvar%2Frun%2Fpostgresql/maildesk"));
        assert!(!local("postgres://db.example.com/maildesk"));
        assert!(!local("postgres://127.example.com/maildesk"));
        assert!(!local("postgres://0.0.0.0/maildesk"));
        assert!(!local("postgres://localhost/maildesk?host=db.example.com"));
    }

    #[tokio::test]
    async fn connect_tries_each_address_and_sets_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        // Port 0 is never listened on: the connect is refused at once.
        let closed: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let tcp = connect(&[closed, open][..], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), open);
        assert!(tcp.nodelay().unwrap());
        let none: &[std::net::SocketAddr] = &[];
        assert!(connect(none, Duration::from_secs(5)).await.is_err());
    }

    fn reach(ip: &str) -> Reach {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn link_local_metadata_and_special_addresses_are_never_reached() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "100.100.100.200",
            "168.63.129.16",
            "::",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::ffff:224.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
        ] {
            assert_eq!(reach(ip), Reach::Forbidden, "{ip}");
        }
    }

    #[test]
    fn loopback_and_private_ranges_are_private() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "fd00:ec2::253",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::7f00:1",
        ] {
            assert_eq!(reach(ip), Reach::Private, "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(reach(ip), Reach::Public, "{ip}");
        }
    }
}
