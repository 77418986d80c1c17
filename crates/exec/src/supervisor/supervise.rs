//! The supervisor's loop: it relays the init's reports (checked by a [`Witness`]) and the
//! apps' output to an observer, forwards SIGINT/SIGTERM/SIGHUP to the pod, relays an
//! interactive app's terminal, and returns when the init says it is done and the kernel
//! agrees (or the init exits without saying so).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::crossing::channel::FromPod;
use crate::proto::Event;
use crate::supervisor::launch::Launched;
use crate::supervisor::witness::{Verdict, Witness};
use crate::terminal::Relay;

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
    /// An app sent an `sd_notify` datagram to its notify socket (`Launched::notify`).
    fn sd_notify(&mut self, _app: usize, _message: &[u8]) {}
}

/// Blocks the signals the supervisor handles, so they queue for its signalfd. Call before
/// launching, so that a Ctrl-C during start-up is not lost.
pub fn block_signals() -> nix::Result<SigSet> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGWINCH,
    ] {
        mask.add(s);
    }
    mask.thread_block()?;
    Ok(mask)
}

/// What the loop polls, by kind.
#[derive(Clone, Copy)]
enum Source {
    Channel,
    Output(usize),
    Signals,
    Init,
    Stdin,
    Master,
    Notify(usize),
}

struct Output {
    app: usize,
    stream: Stream,
    fd: Option<OwnedFd>,
}

/// How the supervisor saw the pod end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The init reported every app's end (`done`) and is exiting; it may not be reaped
    /// yet: see [`wait_for_exit`].
    Done,
    /// The init exited without its last report (killed, or it failed): its wait status.
    Exited(i32),
}

/// Runs until the pod's init reports it is done, or exits; the apps' output is relayed to
/// its end.
pub fn supervise(
    pod: &mut Launched,
    observer: &mut dyn Observer,
    mask: &SigSet,
) -> std::io::Result<Finish> {
    let sigfd = SignalFd::with_flags(mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    // A kvm pod's apps run in its virtual machine, out of this kernel's sight: the guest's
    // PID 1 checked its init's reports against the guest's kernel (`kvm::guest`).
    let mut witness = if pod.flavour == crate::plan::Flavour::Kvm {
        Witness::relayed(pod.init_pid, pod.apps)
    } else {
        Witness::new(pod.init_pid, pod.apps)
    };
    let mut outputs: Vec<Output> = Vec::new();
    for (app, [out, err]) in pod.outputs.drain(..) {
        outputs.push(Output {
            app,
            stream: Stream::Stdout,
            fd: Some(out),
        });
        outputs.push(Output {
            app,
            stream: Stream::Stderr,
            fd: Some(err),
        });
    }
    let terminal_app = pod.terminal_app;
    // The app's pty master comes over the channel once the init has opened it.
    let mut relay: Option<Relay> = None;
    let mut master_open = false;
    let stdin = std::io::stdin();
    let mut channel_open = true;
    let mut init_done = false;
    let mut reported_done = false;
    let mut signals_seen = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut released = false;
    let (mut warned_refused, mut warned_forged) = (false, false);
    loop {
        let all_closed = !channel_open && !master_open && outputs.iter().all(|o| o.fd.is_none());
        if init_done && all_closed {
            break;
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let mut which: Vec<Source> = Vec::new();
        let mut watch =
            |fd: BorrowedFd<'_>, flags: PollFlags, s: Source, fds: &mut Vec<PollFd<'_>>| {
                // SAFETY: every fd polled here outlives this iteration of the loop.
                fds.push(PollFd::new(
                    unsafe { BorrowedFd::borrow_raw(std::os::fd::AsRawFd::as_raw_fd(&fd)) },
                    flags,
                ));
                which.push(s);
            };
        if channel_open {
            watch(
                pod.channel.as_fd(),
                PollFlags::POLLIN,
                Source::Channel,
                &mut fds,
            );
        }
        for (k, o) in outputs.iter().enumerate() {
            if let Some(fd) = &o.fd {
                watch(fd.as_fd(), PollFlags::POLLIN, Source::Output(k), &mut fds);
            }
        }
        for (k, (_, fd)) in pod.notify.iter().enumerate() {
            watch(fd.as_fd(), PollFlags::POLLIN, Source::Notify(k), &mut fds);
        }
        watch(sigfd.as_fd(), PollFlags::POLLIN, Source::Signals, &mut fds);
        if !init_done {
            watch(pod.pidfd.as_fd(), PollFlags::POLLIN, Source::Init, &mut fds);
        }
        if let (Some(r), true) = (&relay, master_open) {
            let mut flags = PollFlags::POLLIN;
            if !r.pending.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            watch(r.master_fd(), flags, Source::Master, &mut fds);
            // Read more input only once what we have is passed on.
            if r.stdin_open && r.pending.is_empty() {
                watch(stdin.as_fd(), PollFlags::POLLIN, Source::Stdin, &mut fds);
            }
        }
        // Once the init is gone, the pipes close as the kernel kills the pod; don't wait
        // forever on a descriptor some escaped process might still hold. A pod that runs
        // a while gets a lean supervisor: after a quiet 200 ms, the pages that starting it
        // touched are given back (short pods never pay for that).
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
            crate::supervisor::memory::release_binary_pages();
            released = true;
            continue;
        }
        let ready: Vec<(Source, PollFlags)> = fds
            .iter()
            .zip(&which)
            .filter_map(|(f, w)| f.revents().filter(|r| !r.is_empty()).map(|r| (*w, r)))
            .collect();
        drop(fds);
        for (source, revents) in ready {
            match source {
                Source::Channel => loop {
                    let message = match pod.channel.recv() {
                        Ok(Some(m)) => m,
                        Ok(None) => break,
                        Err(_) => FromPod::Closed,
                    };
                    match message {
                        FromPod::Event(e, pidfd) => match witness.check(e, pidfd) {
                            // Its last word: the channel only closes once it has
                            // exited, which is not worth waiting for.
                            Verdict::Believe(Event::Done) => {
                                reported_done = true;
                                init_done = true;
                                channel_open = false;
                                break;
                            }
                            Verdict::Believe(e) => observer.event(&e),
                            // Said once: a hostile app must not fill the pod's log.
                            Verdict::Refuse(why) if !warned_refused => {
                                warned_refused = true;
                                observer.event(&Event::Warning {
                                    message: format!("ignored a report of the pod's init: {why}"),
                                })
                            }
                            Verdict::Refuse(_) => {}
                        },
                        FromPod::Terminal(master) => {
                            if relay.is_none() && terminal_app.is_some() {
                                relay = Some(Relay::new(master));
                                master_open = true;
                            }
                        }
                        FromPod::Failure(e) => observer.event(&Event::Error {
                            message: e.to_string(),
                        }),
                        FromPod::Forged { sender } if !warned_forged => {
                            warned_forged = true;
                            observer.event(&Event::Warning {
                                message: format!(
                                    "ignored a message on the pod's channel from {}, not its init",
                                    sender.map_or("an unknown process".into(), |p| format!(
                                        "process {p}"
                                    ))
                                ),
                            })
                        }
                        FromPod::Forged { .. } => {}
                        FromPod::Garbled => {}
                        FromPod::Closed => {
                            channel_open = false;
                            break;
                        }
                    }
                },
                Source::Signals => {
                    while let Ok(Some(info)) = sigfd.read_signal() {
                        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                            continue;
                        };
                        if sig == Signal::SIGWINCH {
                            if let Some(r) = &relay {
                                r.copy_window_size();
                            }
                            continue;
                        }
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
                Source::Init => init_done = true,
                // Drained whether or not anyone listens: an app's blocking send must
                // never wait on a full queue.
                Source::Notify(k) => {
                    let (app, fd) = &pod.notify[k];
                    while let Ok((n, _)) =
                        rustix::net::recv(fd, &mut buf[..], rustix::net::RecvFlags::DONTWAIT)
                    {
                        observer.sd_notify(*app, &buf[..n.min(buf.len())]);
                    }
                }
                Source::Output(k) => {
                    let o = &mut outputs[k];
                    let fd = o.fd.as_ref().expect("polled fds are open");
                    match rustix::io::read(fd, &mut buf) {
                        Ok(0) | Err(_) => o.fd = None,
                        Ok(n) => observer.output(o.app, o.stream, &buf[..n]),
                    }
                }
                Source::Stdin => {
                    if let Some(r) = relay.as_mut() {
                        match rustix::io::read(&stdin, &mut buf) {
                            Ok(n) => r.from_stdin(&buf[..n]),
                            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                            Err(_) => r.from_stdin(&[]),
                        }
                    }
                }
                Source::Master => {
                    let Some(r) = relay.as_mut() else { continue };
                    if revents.contains(PollFlags::POLLOUT) {
                        r.flush();
                    }
                    if revents
                        .intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                    {
                        match rustix::io::read(&r.master, &mut buf) {
                            Ok(n) if n > 0 => observer.output(
                                terminal_app.unwrap_or(0),
                                Stream::Stdout,
                                &buf[..n],
                            ),
                            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                            // EIO: every process holding the slave is gone.
                            _ => master_open = false,
                        }
                    }
                }
            }
        }
    }
    drop(relay);
    if reported_done {
        return Ok(Finish::Done);
    }
    Ok(Finish::Exited(wait_for_exit(pod)))
}

/// Waits for the init to exit and reaps it; its wait status.
pub fn wait_for_exit(pod: &Launched) -> i32 {
    let mut raw = 0;
    // SAFETY: waitpid on our own child with a valid out pointer.
    while unsafe { libc::waitpid(pod.init_pid, &mut raw, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    raw
}
