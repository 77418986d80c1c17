//! The standard streams of a process that `vessel enter` starts: never the operator's own
//! descriptors.
//!
//! A process in a pod that held the operator's terminal could push keystrokes into it
//! with ioctl(TIOCSTI), which the operator's shell would run once `enter` returns, and it
//! could outlive `enter` holding the host's descriptors. So the entered process leads a
//! session of its own and gets either
//! - a pty of the app's own devpts, when both our stdin and stdout are terminals (an
//!   interactive shell): we relay it to our terminal in raw mode, with its window size;
//! - or three pipes otherwise (scripts, `$(...)`, pipelines): we copy our stdin into one
//!   and the other two to our stdout and stderr, byte for byte.
//!
//! Either way it holds nothing of the host's: what it writes reaches the operator only
//! through our relay, and when `enter` ends, its ends of the pipes or the pty close.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::terminal::Relay;

/// f_type of a devpts file system (linux/magic.h).
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// The entered process's streams, made in the parent before it forks.
pub enum EnterStdio {
    Terminal {
        master: OwnedFd,
        slave: OwnedFd,
    },
    Pipes {
        child: [OwnedFd; 3],
        parent: [OwnedFd; 3],
    },
}

/// Whether `enter` gives a terminal: only when we sit at one for both input and output, so
/// that `$(vessel enter ...)` from an interactive shell still reads plain bytes.
pub fn wants_terminal() -> bool {
    rustix::termios::isatty(io::stdin()) && rustix::termios::isatty(io::stdout())
}

impl EnterStdio {
    /// Makes the streams. With `terminal`, call this inside the app's mount namespace:
    /// the pty comes from the devpts at its /dev/pts.
    pub fn open(terminal: bool) -> io::Result<EnterStdio> {
        if terminal {
            let (master, slave) = app_pty().map_err(|e| {
                io::Error::new(e.kind(), format!("a terminal in the app's /dev/pts: {e}"))
            })?;
            return Ok(EnterStdio::Terminal { master, slave });
        }
        let (in_r, in_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        Ok(EnterStdio::Pipes {
            child: [in_r, out_w, err_w],
            parent: [in_w, out_r, err_r],
        })
    }

    /// The descriptors the child takes as 0, 1 and 2, and whether they are a terminal it
    /// should make its controlling one.
    pub fn child_fds(&self) -> ([RawFd; 3], bool) {
        match self {
            EnterStdio::Terminal { slave, .. } => ([slave.as_raw_fd(); 3], true),
            EnterStdio::Pipes { child, .. } => (child.each_ref().map(AsRawFd::as_raw_fd), false),
        }
    }

    /// In the parent once the child is forked: drops the child's ends (so an end of
    /// input or output shows) and relays until the child `pid` exits; its wait status.
    pub fn relay(self, pid: i32) -> io::Result<i32> {
        relay_streams(pid, || match self {
            EnterStdio::Terminal { master, slave } => {
                drop(slave);
                terminal_streams(master)
            }
            EnterStdio::Pipes { child, parent } => {
                drop(child);
                let [to_stdin, from_stdout, from_stderr] = parent;
                set_nonblocking(to_stdin.as_fd())?;
                Ok(Streams::Pipes {
                    to_stdin: Some(to_stdin),
                    pending: Vec::new(),
                    stdin_open: true,
                    outputs: [Some(from_stdout), Some(from_stderr)],
                })
            }
        })
    }
}

/// Relays a terminal whose `master` another process sent (the OCI runtime's foreground
/// `run` and `exec`, when no console socket was given: runc's own relay) until our
/// child `pid` exits; its wait status.
pub fn relay_pty(master: OwnedFd, pid: i32) -> io::Result<i32> {
    relay_streams(pid, || terminal_streams(master))
}

fn terminal_streams(master: OwnedFd) -> io::Result<Streams> {
    set_nonblocking(master.as_fd())?;
    Ok(Streams::Terminal {
        relay: Relay::new(master),
        open: true,
    })
}

/// Blocks the signals we pass on (before the streams are set up, so none is lost), sets
/// up the streams, relays until `pid` exits.
fn relay_streams(pid: i32, setup: impl FnOnce() -> io::Result<Streams>) -> io::Result<i32> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::other("bad pid"))?,
        rustix::process::PidfdFlags::empty(),
    )?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
    ] {
        mask.add(s);
    }
    // Restored after, not unblocked: a caller that blocked them (the runtime's `run`)
    // keeps them blocked while it cleans up.
    let before = mask.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let result = setup().and_then(|streams| relay_until_exit(streams, pid, &pidfd, &signals));
    let _ = before.thread_set_mask();
    result
}

/// Opens a pty pair in the devpts mounted at /dev/pts of our (the app's) root, refusing
/// anything else the app may have put there: no symlink is followed and the directory
/// must be a devpts.
fn app_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let pts = rustix::fs::openat2(
        rustix::fs::CWD,
        "/dev/pts",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    if rustix::fs::fstatfs(&pts)?.f_type as i64 != DEVPTS_SUPER_MAGIC {
        return Err(io::Error::other("/dev/pts is not a devpts file system"));
    }
    crate::terminal::open_pair(pts.as_fd())
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}

enum Streams {
    Terminal {
        relay: Relay,
        /// Until every holder of the slave is gone (reads fail with EIO).
        open: bool,
    },
    Pipes {
        to_stdin: Option<OwnedFd>,
        pending: Vec<u8>,
        stdin_open: bool,
        /// The child's stdout and stderr, until each ends.
        outputs: [Option<OwnedFd>; 2],
    },
}

#[derive(Clone, Copy)]
enum Source {
    Child,
    Signals,
    Stdin,
    /// The pty master (input to it, output from it) or the child's stdin pipe.
    Input,
    /// The pty master's output, or the child's stdout (0) or stderr (1) pipe.
    Output(usize),
}

/// Copies between our stdio and the child's until the child exits, then takes what it
/// left in the pipes or the pty (not waiting for processes it left behind); reaps it.
fn relay_until_exit(
    mut streams: Streams,
    pid: i32,
    pidfd: &OwnedFd,
    signals: &SignalFd,
) -> io::Result<i32> {
    let stdin = io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    let mut exited = false;
    loop {
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        let mut which: Vec<Source> = Vec::new();
        let mut watch = |fd: BorrowedFd<'_>, flags: PollFlags, s: Source| {
            // SAFETY: every fd polled here outlives this iteration of the loop.
            fds.push(PollFd::new(
                unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) },
                flags,
            ));
            which.push(s);
        };
        let mut open_outputs = 0;
        if !exited {
            watch(pidfd.as_fd(), PollFlags::POLLIN, Source::Child);
            watch(signals.as_fd(), PollFlags::POLLIN, Source::Signals);
        }
        match &streams {
            Streams::Terminal { relay: r, open } => {
                let mut flags = PollFlags::POLLIN;
                if !r.pending.is_empty() && !exited {
                    flags |= PollFlags::POLLOUT;
                }
                if *open {
                    watch(r.master_fd(), flags, Source::Output(0));
                    open_outputs += 1;
                }
                if r.stdin_open && r.pending.is_empty() && !exited {
                    watch(stdin.as_fd(), PollFlags::POLLIN, Source::Stdin);
                }
            }
            Streams::Pipes {
                to_stdin,
                pending,
                stdin_open,
                outputs,
            } => {
                if let (Some(w), false) = (to_stdin, exited) {
                    if pending.is_empty() && *stdin_open {
                        watch(stdin.as_fd(), PollFlags::POLLIN, Source::Stdin);
                    } else if !pending.is_empty() {
                        watch(w.as_fd(), PollFlags::POLLOUT, Source::Input);
                    }
                }
                for (k, o) in outputs.iter().enumerate() {
                    if let Some(fd) = o {
                        watch(fd.as_fd(), PollFlags::POLLIN, Source::Output(k));
                        open_outputs += 1;
                    }
                }
            }
        }
        if exited && open_outputs == 0 {
            break;
        }
        // Once the child is gone, take what is already there; whatever it left running
        // may hold the other ends for ever.
        let timeout = if exited {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 && exited {
            break;
        }
        let ready: Vec<(Source, PollFlags)> = fds
            .iter()
            .zip(&which)
            .filter_map(|(f, w)| f.revents().filter(|r| !r.is_empty()).map(|r| (*w, r)))
            .collect();
        drop(fds);
        for (source, revents) in ready {
            match source {
                Source::Child => exited = true,
                Source::Signals => forward_signals(signals, pid, &streams),
                Source::Stdin => {
                    let got = match rustix::io::read(&stdin, &mut buf) {
                        Ok(n) => Some(n),
                        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => None,
                        Err(_) => Some(0),
                    };
                    if let Some(n) = got {
                        streams.take_input(&buf[..n]);
                    }
                }
                Source::Input => streams.flush_input(),
                Source::Output(k) => {
                    if let Streams::Terminal { relay, .. } = &mut streams {
                        if revents.contains(PollFlags::POLLOUT) {
                            relay.flush();
                        }
                        if !revents
                            .intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                        {
                            continue;
                        }
                    }
                    streams.copy_output(k, &mut buf);
                }
            }
        }
    }
    drop(streams);
    let mut raw = 0;
    loop {
        // SAFETY: waitpid on our child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut raw, 0) };
        if r == pid {
            return Ok(raw);
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(io::Error::last_os_error());
        }
    }
}

/// Signals sent to `enter` go to the entered process; a new window size goes to its pty.
fn forward_signals(signals: &SignalFd, pid: i32, streams: &Streams) {
    while let Ok(Some(info)) = signals.read_signal() {
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig == Signal::SIGWINCH {
            if let Streams::Terminal { relay, .. } = streams {
                relay.copy_window_size();
            }
            continue;
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

impl Streams {
    /// What our stdin gave (empty: its end).
    fn take_input(&mut self, data: &[u8]) {
        match self {
            Streams::Terminal { relay, .. } => relay.from_stdin(data),
            Streams::Pipes {
                to_stdin,
                pending,
                stdin_open,
                ..
            } => {
                if data.is_empty() {
                    *stdin_open = false;
                    // The child sees the end of its input once everything before it is in.
                    if pending.is_empty() {
                        *to_stdin = None;
                    }
                } else {
                    pending.extend_from_slice(data);
                    self.flush_input();
                }
            }
        }
    }

    fn flush_input(&mut self) {
        match self {
            Streams::Terminal { relay, .. } => relay.flush(),
            Streams::Pipes {
                to_stdin,
                pending,
                stdin_open,
                ..
            } => {
                let Some(w) = to_stdin else {
                    pending.clear();
                    return;
                };
                match rustix::io::write(&*w, pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                    // The child closed its stdin: drop what it will never read.
                    Err(_) => {
                        pending.clear();
                        *to_stdin = None;
                    }
                }
                if pending.is_empty() && !*stdin_open {
                    *to_stdin = None;
                }
            }
        }
    }

    /// Copies one read of output `k` to our stdout or stderr, or notes its end.
    fn copy_output(&mut self, k: usize, buf: &mut [u8]) {
        let fd = match self {
            Streams::Terminal { relay, .. } => relay.master_fd(),
            Streams::Pipes { outputs, .. } => match &outputs[k] {
                Some(fd) => fd.as_fd(),
                None => return,
            },
        };
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) if n > 0 => {
                let written = if k == 1 {
                    io::stderr().write_all(&buf[..n])
                } else {
                    let mut out = io::stdout().lock();
                    out.write_all(&buf[..n]).and_then(|_| out.flush())
                };
                // Our own output closed: keep draining, so the child is never blocked.
                let _ = written;
            }
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            // End of file, or EIO from a pty whose every slave is closed.
            _ => match self {
                Streams::Pipes { outputs, .. } => outputs[k] = None,
                Streams::Terminal { open, .. } => *open = false,
            },
        }
    }
}
