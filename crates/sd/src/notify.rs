//! `sd_notify`: one datagram of `KEY=VALUE` lines to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where notifications go, read once from the environment.
#[derive(Debug, Clone)]
pub struct NotifySocket {
    addr: String,
}

impl NotifySocket {
    /// `$NOTIFY_SOCKET`, if set to something usable.
    pub fn from_env() -> Option<NotifySocket> {
        let addr = std::env::var("NOTIFY_SOCKET").ok()?;
        Self::new(&addr)
    }

    pub fn new(addr: &str) -> Option<NotifySocket> {
        if addr.starts_with('/') || (addr.starts_with('@') && addr.len() > 1) {
            Some(NotifySocket {
                addr: addr.to_string(),
            })
        } else {
            None
        }
    }

    /// The value `$NOTIFY_SOCKET` had.
    pub fn address(&self) -> &str {
        &self.addr
    }

    fn socket_addr(&self) -> io::Result<SocketAddr> {
        match self.addr.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(&self.addr),
        }
    }

    /// Sends one notification (`READY=1`, `STATUS=...`, several lines at once).
    pub fn send(&self, state: &str) -> io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let n = sock.send_to_addr(state.as_bytes(), &self.socket_addr()?)?;
        if n != state.len() {
            return Err(io::Error::other("short write to the notify socket"));
        }
        Ok(())
    }
}

/// Sends `state` to `$NOTIFY_SOCKET`. `Ok(false)`: no socket was given (not under a
/// `Type=notify` unit), nothing sent.
pub fn notify(state: &str) -> io::Result<bool> {
    match NotifySocket::from_env() {
        Some(s) => s.send(state).map(|_| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_an_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        NotifySocket::new(path.to_str().unwrap())
            .unwrap()
            .send("READY=1\nSTATUS=up")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");

        let name = format!("vessel-sd-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        NotifySocket::new(&format!("@{name}"))
            .unwrap()
            .send("READY=1")
            .unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn refuses_relative_and_empty_addresses() {
        assert!(NotifySocket::new("").is_none());
        assert!(NotifySocket::new("@").is_none());
        assert!(NotifySocket::new("run/notify").is_none());
    }
}
