//! `--port`: host ports forwarded into the pod, by the portmap plugin (CNI's
//! `portMappings` capability). Two forms:
//!
//! - `NAME:[HOSTIP:]HOSTPORT`: a port some app of the pod declares (an appc image's
//!   `ports`; an OCI image's exposed `8080/tcp` is named `8080-tcp`, and `tcp-8080` is
//!   accepted for it too);
//! - `PROTO:PODPORT:HOSTIP:HOSTPORT`: any pod port (HOSTIP may be empty: every address).
//!
//! A host port already in use, or asked for twice, is an error before the pod starts. The
//! supervisor then keeps each host port bound (not listening) while the pod runs, as
//! podman's conmon does: the plugin's NAT rules do not take a port, and without that
//! another program (or another pod) could take it meanwhile and never be reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// One entry of `runtimeConfig.portMappings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.host_port)?,
            Some(ip) => write!(f, "{ip}:{}", self.host_port)?,
            None => write!(f, "{}", self.host_port)?,
        }
        write!(f, "/{} -> {}", self.protocol, self.container_port)
    }
}

/// A `--port` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PortRequest {
    Named {
        name: String,
        host_ip: Option<IpAddr>,
        host_port: u16,
    },
    Explicit(PortMapping),
}

/// A port an app declares.
#[derive(Debug, Clone)]
pub struct AppPort {
    pub app: String,
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub count: u16,
}

const PROTOCOLS: &[&str] = &["tcp", "udp", "sctp"];

impl PortRequest {
    pub fn parse(s: &str) -> Result<PortRequest> {
        let bad = |why: &str| NetError::Port {
            mapping: s.to_string(),
            reason: why.to_string(),
        };
        let parts = split_keeping_brackets(s);
        let port = |p: &str, what: &str| -> Result<u16> {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| bad(&format!("{what} {p:?} is not a port (1-65535)")))
        };
        let host_ip = |p: &str| -> Result<Option<IpAddr>> {
            if p.is_empty() {
                return Ok(None);
            }
            let p = p
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(p);
            p.parse::<IpAddr>()
                .map(Some)
                .map_err(|_| bad(&format!("{p:?} is not an IP address")))
        };
        match parts.as_slice() {
            [name, hp] => Ok(PortRequest::Named {
                name: check_name(name).map_err(|e| bad(&e))?,
                host_ip: None,
                host_port: port(hp, "host port")?,
            }),
            [name, ip, hp] => Ok(PortRequest::Named {
                name: check_name(name).map_err(|e| bad(&e))?,
                host_ip: host_ip(ip)?,
                host_port: port(hp, "host port")?,
            }),
            [proto, pp, ip, hp] => {
                let protocol = proto.to_ascii_lowercase();
                if !PROTOCOLS.contains(&protocol.as_str()) {
                    return Err(bad(&format!(
                        "protocol {proto:?} is not one of {}",
                        PROTOCOLS.join(", ")
                    )));
                }
                Ok(PortRequest::Explicit(PortMapping {
                    host_port: port(hp, "host port")?,
                    container_port: port(pp, "pod port")?,
                    protocol,
                    host_ip: host_ip(ip)?,
                }))
            }
            _ => Err(bad(
                "expected NAME:[HOSTIP:]HOSTPORT or PROTO:PODPORT:HOSTIP:HOSTPORT",
            )),
        }
    }
}

fn check_name(name: &str) -> std::result::Result<String, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!("{name:?} is not a port name"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Splits on `:` outside `[...]` (an IPv6 host address).
fn split_keeping_brackets(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Turns the requests into mappings: names are looked up among the apps' ports (an OCI
/// name `tcp-8080` also finds `8080-tcp`); a range maps port by port. Refused: a name no
/// app declares or two apps declare, and two mappings of one host port and protocol on
/// overlapping addresses.
pub fn resolve(requests: &[PortRequest], apps: &[AppPort]) -> Result<Vec<PortMapping>> {
    let mut out: Vec<(String, PortMapping)> = Vec::new();
    for req in requests {
        let (flag, mappings) = match req {
            PortRequest::Explicit(m) => (
                format!("{}:{}", m.protocol, m.container_port),
                vec![m.clone()],
            ),
            PortRequest::Named {
                name,
                host_ip,
                host_port,
            } => {
                let found = find_port(name, apps)?;
                let mut v = Vec::new();
                for k in 0..found.count {
                    let hp = u32::from(*host_port) + u32::from(k);
                    let hp = u16::try_from(hp).map_err(|_| NetError::Port {
                        mapping: format!("{name}:{host_port}"),
                        reason: format!(
                            "port {name} is a range of {}; host ports past 65535 are needed",
                            found.count
                        ),
                    })?;
                    v.push(PortMapping {
                        host_port: hp,
                        container_port: found.port + k,
                        protocol: found.protocol.to_ascii_lowercase(),
                        host_ip: *host_ip,
                    });
                }
                (format!("{name}:{host_port}"), v)
            }
        };
        for m in mappings {
            if !PROTOCOLS.contains(&m.protocol.as_str()) {
                return Err(NetError::Port {
                    mapping: flag,
                    reason: format!("protocol {:?} cannot be forwarded", m.protocol),
                });
            }
            if let Some((_, other)) = out.iter().find(|(_, o)| conflicts(o, &m)) {
                return Err(NetError::Port {
                    mapping: flag,
                    reason: format!("host port {} is already mapped ({other})", m.host_port),
                });
            }
            out.push((flag.clone(), m));
        }
    }
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

fn find_port<'a>(name: &str, apps: &'a [AppPort]) -> Result<&'a AppPort> {
    let alias = name
        .split_once('-')
        .filter(|(p, n)| PROTOCOLS.contains(p) && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(p, n)| format!("{n}-{p}"));
    let hits: Vec<&AppPort> = apps
        .iter()
        .filter(|p| p.name == name || Some(&p.name) == alias.as_ref())
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<String> = apps
                .iter()
                .map(|p| format!("{} ({}/{} of app {})", p.name, p.port, p.protocol, p.app))
                .collect();
            Err(NetError::Port {
                mapping: name.to_string(),
                reason: if known.is_empty() {
                    "no app of the pod declares a port of that name (it declares none; use PROTO:PODPORT:HOSTIP:HOSTPORT)".into()
                } else {
                    format!(
                        "no app of the pod declares a port of that name (ports: {})",
                        known.join(", ")
                    )
                },
            })
        }
        many => Err(NetError::Port {
            mapping: name.to_string(),
            reason: format!(
                "apps {} all declare it; use PROTO:PODPORT:HOSTIP:HOSTPORT",
                many.iter()
                    .map(|p| p.app.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn conflicts(a: &PortMapping, b: &PortMapping) -> bool {
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && match (a.host_ip, b.host_ip) {
            (None, _) | (_, None) => true,
            (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        }
}

/// Host ports held for a pod: one bound socket per TCP or UDP mapping.
#[derive(Debug, Default)]
pub struct Reservation {
    pub sockets: Vec<OwnedFd>,
}

/// Binds every mapping's host port (SCTP is left to the plugin). A port already bound or
/// listened on by anyone, another pod included, is an error naming it.
pub fn reserve(mappings: &[PortMapping]) -> Result<Reservation> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let mut r = Reservation::default();
    for m in mappings {
        let kind = match m.protocol.as_str() {
            "tcp" => SocketType::STREAM,
            "udp" => SocketType::DGRAM,
            _ => continue,
        };
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let family = if ip.is_ipv4() {
            AddressFamily::INET
        } else {
            AddressFamily::INET6
        };
        let sock = rustix::net::socket_with(family, kind, SocketFlags::CLOEXEC, None)
            .map_err(|e| NetError::io("a socket to hold a host port", e.into()))?;
        let addr = SocketAddr::new(ip, m.host_port);
        if let Err(e) = rustix::net::bind(&sock, &addr) {
            let reason = if e == rustix::io::Errno::ADDRINUSE {
                format!("host port {}/{} is already in use", m.host_port, m.protocol)
            } else if e == rustix::io::Errno::ADDRNOTAVAIL {
                format!("{ip} is not an address of this host")
            } else {
                format!("binding {addr}/{}: {e}", m.protocol)
            };
            return Err(NetError::Port {
                mapping: m.to_string(),
                reason,
            });
        }
        r.sockets.push(sock);
    }
    Ok(r)
}

/// The unspecified address of a family (for messages and tests).
pub fn any(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, protocol: &str, port: u16, count: u16, app: &str) -> AppPort {
        AppPort {
            app: app.into(),
            name: name.into(),
            protocol: protocol.into(),
            port,
            count,
        }
    }

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            PortRequest::parse("http:8080").unwrap(),
            PortRequest::Named {
                name: "http".into(),
                host_ip: None,
                host_port: 8080
            }
        );
        assert_eq!(
            PortRequest::parse("http:127.0.0.1:8080").unwrap(),
            PortRequest::Named {
                name: "http".into(),
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 8080
            }
        );
        assert_eq!(
            PortRequest::parse("UDP:53::5353").unwrap(),
            PortRequest::Explicit(PortMapping {
                host_port: 5353,
                container_port: 53,
                protocol: "udp".into(),
                host_ip: None
            })
        );
        match PortRequest::parse("tcp:80:[::1]:8080").unwrap() {
            PortRequest::Explicit(m) => assert_eq!(m.host_ip, Some("::1".parse().unwrap())),
            other => panic!("{other:?}"),
        }
        for (bad, why) in [
            ("http", "expected"),
            ("http:0", "not a port"),
            ("http:65536", "not a port"),
            ("http:+80", "not a port"),
            ("icmp:1::2", "protocol"),
            ("tcp:80:nope:81", "not an IP"),
            ("ht tp:80", "not a port name"),
            ("a:b:c:d:e", "expected"),
        ] {
            let e = PortRequest::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.starts_with(&format!("--port {bad}: ")), "{e}");
        }
    }

    #[test]
    fn resolves_names_ranges_and_aliases() {
        let apps = [
            app("http", "tcp", 80, 1, "web"),
            app("8080-tcp", "tcp", 8080, 1, "oci"),
            app("range", "udp", 6000, 3, "web"),
        ];
        let reqs = [
            PortRequest::parse("http:9080").unwrap(),
            PortRequest::parse("tcp-8080:9081").unwrap(),
            PortRequest::parse("range:7000").unwrap(),
        ];
        let m = resolve(&reqs, &apps).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!((m[0].host_port, m[0].container_port), (9080, 80));
        assert_eq!((m[1].host_port, m[1].container_port), (9081, 8080));
        assert_eq!(
            (m[4].host_port, m[4].container_port, m[4].protocol.as_str()),
            (7002, 6002, "udp")
        );
    }

    #[test]
    fn refuses_unknown_ambiguous_and_conflicting() {
        let apps = [
            app("http", "tcp", 80, 1, "a"),
            app("http", "tcp", 81, 1, "b"),
        ];
        let e = resolve(&[PortRequest::parse("nope:1").unwrap()], &apps[..1])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no app of the pod declares") && e.contains("http (80/tcp of app a)"),
            "{e}"
        );
        let e = resolve(&[PortRequest::parse("http:1").unwrap()], &apps)
            .unwrap_err()
            .to_string();
        assert!(e.contains("apps a, b"), "{e}");
        let e = resolve(
            &[
                PortRequest::parse("tcp:80::9000").unwrap(),
                PortRequest::parse("tcp:81:127.0.0.1:9000").unwrap(),
            ],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("host port 9000 is already mapped"), "{e}");
        // The same port on other protocols or distinct addresses is fine.
        resolve(
            &[
                PortRequest::parse("tcp:80:127.0.0.1:9000").unwrap(),
                PortRequest::parse("tcp:81:127.0.0.2:9000").unwrap(),
                PortRequest::parse("udp:80::9000").unwrap(),
            ],
            &[],
        )
        .unwrap();
    }

    #[test]
    fn a_port_in_use_is_refused_and_a_reservation_holds_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = l.local_addr().unwrap().port();
        let m = PortMapping {
            host_port: taken,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: None,
        };
        let e = reserve(&[m]).unwrap_err().to_string();
        assert!(
            e.contains(&format!("host port {taken}/tcp is already in use")),
            "{e}"
        );
        drop(l);
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let m = PortMapping {
            host_port: port,
            container_port: 53,
            protocol: "udp".into(),
            host_ip: Some("127.0.0.1".parse().unwrap()),
        };
        let held = reserve(std::slice::from_ref(&m)).unwrap();
        assert!(reserve(&[m]).is_err(), "a held port must look taken");
        drop(held);
    }
}
