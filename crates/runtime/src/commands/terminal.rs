//! Where a container process's terminal (`process.terminal`, `exec -t`) goes: to the
//! client's console socket (containerd's shim, conmon), or, for a foreground `run` or
//! `exec` given none, to our own stdin and stdout, as runc does for a user at a shell
//! (`runc spec` writes `terminal: true`). A socket pair then stands in for the console
//! socket: the container's process sends the master down one end as it would to a
//! client, and we take it from the other and relay it (exec's `relay_pty`: raw mode,
//! window size, signals passed on) until the process exits.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::create::console_socket;
use crate::error::{Result, RuntimeError};

/// The two ends of a terminal's hand-over.
#[derive(Default)]
pub struct Console {
    /// Given to the container's process, which sends the master down it: the client's
    /// console socket, or one end of our pair.
    pub to_container: Option<OwnedFd>,
    /// The other end of our pair, when we relay the terminal ourselves.
    pub relayed: Option<OwnedFd>,
}

impl Console {
    /// `what`: how the terminal was asked for, for the errors.
    pub fn choose(
        socket: Option<&Path>,
        terminal: bool,
        foreground: bool,
        what: &str,
    ) -> Result<Console> {
        match (socket, terminal) {
            (Some(p), true) => Ok(Console {
                to_container: Some(console_socket(p)?),
                relayed: None,
            }),
            (Some(_), false) => Err(RuntimeError::Usage(format!(
                "--console-socket given but {what} is false"
            ))),
            (None, true) if foreground => {
                let (ours, theirs) = rustix::net::socketpair(
                    rustix::net::AddressFamily::UNIX,
                    rustix::net::SocketType::STREAM,
                    rustix::net::SocketFlags::CLOEXEC,
                    None,
                )
                .map_err(|e| RuntimeError::Exec(format!("a socket pair for the terminal: {e}")))?;
                Ok(Console {
                    to_container: Some(theirs),
                    relayed: Some(ours),
                })
            }
            (None, true) => Err(RuntimeError::Usage(format!(
                "{what} is true: pass --console-socket (only a foreground run or exec relays the terminal itself)"
            ))),
            (None, false) => Ok(Console::default()),
        }
    }
}

/// Takes the master from `ours` and relays it to our stdio until our child `pid` exits;
/// its status as a shell gives it.
pub fn relay(ours: OwnedFd, pid: i32) -> Result<i32> {
    let master = exec::container::console::receive_master(ours.as_fd())
        .map_err(|e| RuntimeError::Exec(format!("the container's terminal: {e}")))?;
    drop(ours);
    let raw = exec::crossing::enter_io::relay_pty(master, pid)
        .map_err(|e| RuntimeError::Exec(format!("relaying the container's terminal: {e}")))?;
    Ok(if libc::WIFSIGNALED(raw) {
        128 + libc::WTERMSIG(raw)
    } else {
        libc::WEXITSTATUS(raw)
    })
}
