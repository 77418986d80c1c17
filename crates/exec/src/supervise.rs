//! The supervisor's loop: it relays the init's reports and the apps' output to an
//! observer, forwards SIGINT/SIGTERM/SIGHUP to the pod, and returns when the init exits.

use std::io::{BufRead, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::launch::Launched;
use crate::proto::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

pub trait Observer {
    fn event(&mut self, event: &Event);
    fn output(&mut self, app: usize, stream: Stream, data: &[u8]);
    /// A signal arrived for the pod; it is forwarded after this returns.
    fn signal(&mut self, _sig: Signal) {}
}

/// Blocks the signals the supervisor forwards, so they queue for its signalfd. Call before
/// launching, so that a Ctrl-C during start-up is not lost.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        mask.add(s);
    }
    mask.thread_block()?;
    Ok(mask)
}

/// Runs until the pod's init exits; returns its wait status.
pub fn supervise(
    pod: &mut Launched,
    observer: &mut dyn Observer,
    mask: &SigSet,
) -> std::io::Result<i32> {
    let sigfd = SignalFd::with_flags(mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let mut status = std::io::BufReader::new(pod.status.try_clone()?);
    let mut open: Vec<(usize, Stream, Option<OwnedFd>)> = Vec::new();
    for (i, [out, err]) in pod.outputs.drain(..).enumerate() {
        open.push((i, Stream::Stdout, Some(out)));
        open.push((i, Stream::Stderr, Some(err)));
    }
    let mut status_open = true;
    let mut init_done = false;
    let mut signals_seen = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut released = false;
    loop {
        let all_closed = !status_open && open.iter().all(|(_, _, fd)| fd.is_none());
        if init_done && all_closed {
            break;
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let mut which: Vec<isize> = Vec::new();
        if status_open {
            fds.push(PollFd::new(pod.status.as_fd(), PollFlags::POLLIN));
            which.push(-1);
        }
        for (k, (_, _, fd)) in open.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(k as isize);
            }
        }
        fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        which.push(-2);
        if !init_done {
            fds.push(PollFd::new(pod.pidfd.as_fd(), PollFlags::POLLIN));
            which.push(-3);
        }
        // Once the init is gone, the pipes close as the kernel kills the pod; don't wait
        // forever on a descriptor some escaped process might still hold.
        // A pod that runs a while gets a lean supervisor: after a quiet 200 ms, the pages
        // that starting it touched are given back (short pods never pay for that).
        let timeout = if init_done {
            PollTimeout::from(2000u16)
        } else if released {
            PollTimeout::NONE
        } else {
            PollTimeout::from(200u16)
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 && init_done {
            break;
        }
        if n == 0 && !released {
            crate::memory::release_binary_pages();
            released = true;
            continue;
        }
        let ready: Vec<(isize, bool)> = fds
            .iter()
            .zip(&which)
            .map(|(f, w)| (*w, f.revents().is_some_and(|r| !r.is_empty())))
            .collect();
        drop(fds);
        for (w, is_ready) in ready {
            if !is_ready {
                continue;
            }
            match w {
                -1 => {
                    let mut line = String::new();
                    match status.read_line(&mut line) {
                        Ok(0) | Err(_) => status_open = false,
                        Ok(_) => {
                            if let Some(e) = Event::parse(line.trim_end()) {
                                observer.event(&e);
                            }
                        }
                    }
                }
                -2 => {
                    while let Ok(Some(info)) = sigfd.read_signal() {
                        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                            continue;
                        };
                        observer.signal(sig);
                        signals_seen += 1;
                        // First signal: ask the apps to stop. Another: stop them now.
                        let forward = if signals_seen > 1 {
                            Signal::SIGKILL
                        } else {
                            Signal::SIGTERM
                        };
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pod.init_pid),
                            forward,
                        );
                    }
                }
                -3 => init_done = true,
                k => {
                    let (app, stream, slot) = &mut open[k as usize];
                    let fd = slot.as_ref().expect("polled fds are open");
                    let mut f = std::mem::ManuallyDrop::new(std::fs::File::from(fd.try_clone()?));
                    match f.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            std::mem::ManuallyDrop::into_inner(f);
                            *slot = None;
                        }
                        Ok(n) => {
                            observer.output(*app, *stream, &buf[..n]);
                            std::mem::ManuallyDrop::into_inner(f);
                        }
                    }
                }
            }
        }
    }
    let mut raw = 0;
    // SAFETY: waitpid on our own child with a valid out pointer.
    unsafe { libc::waitpid(pod.init_pid, &mut raw, 0) };
    let _ = pod.status.as_raw_fd();
    Ok(raw)
}
