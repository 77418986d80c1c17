//! `--interactive`: the app's terminal. The pod's first process opens a pty pair inside the
//! app's own devpts (so the app sees /dev/pts/N of its /dev) and hands the master to the
//! supervisor (`crossing::channel`), which relays it to our stdin and stdout: raw mode and window size follow
//! our terminal; from a pipe, input is passed on and its end becomes an end-of-file.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::fs::{Mode, OFlags};
use rustix::termios::{self, OptionalActions, Termios};

/// Opens a new pty in the devpts at `pts_dir` (an fd of the app's /dev/pts): (master, slave).
pub fn open_pair(pts_dir: BorrowedFd<'_>) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = rustix::fs::openat(
        pts_dir,
        "ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::pty::unlockpt(&master)?;
    // TIOCGPTPEER: the slave straight from the master, no path looked up.
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        rustix::pty::OpenptFlags::RDWR
            | rustix::pty::OpenptFlags::NOCTTY
            | rustix::pty::OpenptFlags::CLOEXEC,
    )?;
    Ok((master, slave))
}

/// The supervisor's side: our stdin into the master, and our terminal's state onto it.
pub struct Relay {
    pub master: OwnedFd,
    saved: Option<Termios>,
    pub stdin_open: bool,
    pub pending: Vec<u8>,
    last_byte: u8,
}

impl Relay {
    pub fn new(master: OwnedFd) -> Relay {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = termios::tcsetattr(&stdin, OptionalActions::Now, &raw);
        } else if let Ok(mut t) = termios::tcgetattr(&master) {
            // Fed from a pipe: no echo of what we pass on.
            t.local_modes.remove(termios::LocalModes::ECHO);
            let _ = termios::tcsetattr(&master, OptionalActions::Now, &t);
        }
        let relay = Relay {
            master,
            saved,
            stdin_open: true,
            pending: Vec::new(),
            last_byte: b'\n',
        };
        relay.copy_window_size();
        relay
    }

    /// Our terminal's size onto the app's (which then gets its SIGWINCH).
    pub fn copy_window_size(&self) {
        if let Ok(ws) =
            termios::tcgetwinsize(io::stdout()).or_else(|_| termios::tcgetwinsize(io::stdin()))
        {
            let _ = termios::tcsetwinsize(&self.master, ws);
        }
    }

    /// Takes what stdin gave (empty: its end).
    pub fn from_stdin(&mut self, data: &[u8]) {
        if data.is_empty() {
            self.stdin_open = false;
            // End of input for a reader in canonical mode: ^D at the start of a line (a
            // second one if the last line did not end).
            if self.saved.is_none() {
                if self.last_byte != b'\n' {
                    self.pending.push(4);
                }
                self.pending.push(4);
            }
            return;
        }
        self.last_byte = *data.last().expect("not empty");
        self.pending.extend_from_slice(data);
    }

    /// Writes what it can of the pending input.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        match rustix::io::write(&self.master, &self.pending) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => self.pending.clear(),
        }
    }

    pub fn master_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    pub fn raw(&self) -> RawFd {
        self.master.as_raw_fd()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(io::stdin(), OptionalActions::Now, t);
        }
    }
}
