//! Socket activation: the sockets a service manager passed to `vessel run` (LISTEN_FDS)
//! go to the apps whose ports are `socketActivated` (appc), each app getting its own at
//! 3, 4, ... with `LISTEN_FDS`, `LISTEN_FDNAMES` (the ports' names) and its own
//! `LISTEN_PID`, as rkt's stage1 did through systemd socket units.
//!
//! A socket goes to the port named like it (systemd's `FileDescriptorName=`), else to the
//! port with its number and protocol (a stream socket is `tcp`, a datagram one `udp`).
//! A socket that fits no port is an error: connections to it would wait forever.

use std::os::fd::{AsFd, OwnedFd};

use rustix::net::SocketType;

use crate::error::{PodError, Result};

/// A port some app declared socket-activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivatedPort {
    pub app: usize,
    pub name: String,
    pub protocol: String,
    pub port: u16,
}

/// The socket-activated ports of a pod's apps, by the apps' order in `apps` (names).
pub fn activated_ports(manifest: &schema::PodManifest, apps: &[String]) -> Vec<ActivatedPort> {
    let mut out = Vec::new();
    for (index, name) in apps.iter().enumerate() {
        let Some(app) = manifest.apps.iter().find(|a| a.name.as_str() == name) else {
            continue;
        };
        for p in app.app.iter().flat_map(|a| a.ports.iter()) {
            if p.socket_activated {
                out.push(ActivatedPort {
                    app: index,
                    name: p.name.to_string(),
                    protocol: p.protocol.clone(),
                    port: p.port,
                });
            }
        }
    }
    out
}

/// What a passed socket is, as far as matching goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedSocket {
    pub name: Option<String>,
    /// `tcp` or `udp` for inet sockets; None for others (matched by name only).
    pub protocol: Option<&'static str>,
    pub port: Option<u16>,
    /// For messages: "fd 3 (127.0.0.1:8080/tcp)".
    pub shown: String,
}

impl PassedSocket {
    pub fn of(fd: &sd::ListenFd, number: i32) -> PassedSocket {
        let local = rustix::net::getsockname(fd.fd.as_fd())
            .ok()
            .and_then(|a| std::net::SocketAddr::try_from(a).ok());
        let protocol = match (local, fd.socket_type()) {
            (Some(_), Some(SocketType::STREAM)) => Some("tcp"),
            (Some(_), Some(SocketType::DGRAM)) => Some("udp"),
            _ => None,
        };
        let addr = match (local, protocol) {
            (Some(a), Some(p)) => format!("{a}/{p}"),
            _ => "not an inet stream or datagram socket".into(),
        };
        let shown = match &fd.name {
            Some(n) => format!("fd {number} named {n:?} ({addr})"),
            None => format!("fd {number} ({addr})"),
        };
        PassedSocket {
            name: fd.name.clone(),
            protocol,
            port: local.map(|a| a.port()),
            shown,
        }
    }
}

/// For each passed socket (in order), the port it goes to. Pure: the rules of the module.
pub fn assign(passed: &[PassedSocket], ports: &[ActivatedPort]) -> Result<Vec<ActivatedPort>> {
    passed
        .iter()
        .map(|s| {
            let by_name = ports
                .iter()
                .find(|p| s.name.as_deref() == Some(p.name.as_str()));
            let by_number = || {
                ports.iter().find(|p| {
                    Some(p.port) == s.port && Some(p.protocol.as_str()) == s.protocol
                })
            };
            by_name.or_else(by_number).cloned().ok_or_else(|| {
                PodError::Invalid(format!(
                    "socket activation: the socket passed as {} fits no socket-activated port of the pod's apps ({}): name it after the port (FileDescriptorName=) or listen on the port's number",
                    s.shown,
                    if ports.is_empty() {
                        "they declare none".to_string()
                    } else {
                        ports
                            .iter()
                            .map(|p| format!("{} {}/{}", p.name, p.port, p.protocol))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            })
        })
        .collect()
}

/// The passed sockets as the launch takes them: per app (by index, `apps` long), copies
/// of the sockets and the names the app sees.
pub fn per_app(
    passed: &[sd::ListenFd],
    manifest: &schema::PodManifest,
    apps: &[String],
) -> Result<Vec<Vec<(OwnedFd, String)>>> {
    let mut out: Vec<Vec<(OwnedFd, String)>> = apps.iter().map(|_| Vec::new()).collect();
    if passed.is_empty() {
        return Ok(out);
    }
    let sockets: Vec<PassedSocket> = passed
        .iter()
        .enumerate()
        .map(|(i, fd)| PassedSocket::of(fd, sd::listen::FIRST_FD + i as i32))
        .collect();
    let ports = activated_ports(manifest, apps);
    for ((fd, port), shown) in passed
        .iter()
        .zip(assign(&sockets, &ports)?)
        .zip(sockets.iter().map(|s| &s.shown))
    {
        let copy = fd
            .fd
            .try_clone()
            .map_err(|e| PodError::Invalid(format!("socket activation: copying {shown}: {e}")))?;
        out[port.app].push((copy, port.name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(app: usize, name: &str, protocol: &str, n: u16) -> ActivatedPort {
        ActivatedPort {
            app,
            name: name.into(),
            protocol: protocol.into(),
            port: n,
        }
    }

    fn socket(name: Option<&str>, protocol: Option<&'static str>, n: u16) -> PassedSocket {
        PassedSocket {
            name: name.map(str::to_string),
            protocol,
            port: Some(n),
            shown: format!("fd ({n})"),
        }
    }

    #[test]
    fn sockets_go_by_name_then_by_number_and_protocol() {
        let ports = [
            port(0, "http", "tcp", 80),
            port(1, "dns", "udp", 53),
            port(1, "dns-tcp", "tcp", 53),
        ];
        let got = assign(
            &[
                socket(Some("dns-tcp"), Some("tcp"), 5353),
                socket(Some("web.socket"), Some("tcp"), 80),
                socket(None, Some("udp"), 53),
            ],
            &ports,
        )
        .unwrap();
        let names: Vec<(usize, &str)> = got.iter().map(|p| (p.app, p.name.as_str())).collect();
        assert_eq!(names, [(1, "dns-tcp"), (0, "http"), (1, "dns")]);
    }

    #[test]
    fn a_socket_that_fits_no_port_is_refused_naming_both() {
        let e = assign(
            &[socket(None, Some("udp"), 80)],
            &[port(0, "http", "tcp", 80)],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("fd (80)"), "{e}");
        assert!(e.contains("http 80/tcp"), "{e}");
        let e = assign(&[socket(None, Some("tcp"), 80)], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("they declare none"), "{e}");
    }
}
