//! Socket activation: the descriptors a service manager passed, from 3 on, counted by
//! `$LISTEN_FDS` and meant for `$LISTEN_PID` only (a child that inherited the variables
//! must not take its parent's sockets), named by `$LISTEN_FDNAMES`.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use rustix::net::{AddressFamily, SocketType};

/// The first passed descriptor (SD_LISTEN_FDS_START).
pub const FIRST_FD: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("LISTEN_FDS={0:?} is not a count of descriptors")]
    BadCount(String),
    #[error("LISTEN_FDS names descriptor {fd}, which is not open: {source}")]
    NotOpen { fd: i32, source: rustix::io::Errno },
}

/// One passed socket.
#[derive(Debug)]
pub struct ListenFd {
    pub fd: OwnedFd,
    /// Its name in `$LISTEN_FDNAMES` (systemd's `FileDescriptorName=`), if given.
    pub name: Option<String>,
}

impl ListenFd {
    pub fn family(&self) -> Option<AddressFamily> {
        rustix::net::sockopt::socket_domain(&self.fd).ok()
    }

    pub fn socket_type(&self) -> Option<SocketType> {
        rustix::net::sockopt::socket_type(&self.fd).ok()
    }

    pub fn is_listening(&self) -> bool {
        rustix::net::sockopt::socket_acceptconn(&self.fd).unwrap_or(false)
    }
}

pub type ListenFds = Vec<ListenFd>;

/// Takes the sockets passed to this process, once: the variables are removed so neither a
/// second call nor a child sees them, and each descriptor is made close-on-exec. None
/// passed (or passed to another pid): an empty list.
pub fn take_listen_fds() -> Result<ListenFds, ListenError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| ListenError::BadCount(count.clone()))?;
    let mut names = names
        .map(|s| s.split(':').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter();
    let mut out = Vec::new();
    for fd in FIRST_FD..FIRST_FD + n {
        // SAFETY: only checked here; owned below once known open.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = rustix::io::fcntl_getfd(borrowed)
            .map_err(|source| ListenError::NotOpen { fd, source })?;
        rustix::io::fcntl_setfd(borrowed, flags | rustix::io::FdFlags::CLOEXEC)
            .map_err(|source| ListenError::NotOpen { fd, source })?;
        // SAFETY: the service manager handed this descriptor to this process, once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        out.push(ListenFd {
            fd: owned,
            name: names.next().filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}
