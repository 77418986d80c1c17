//! The pod init: pid 1 of the pod. It starts each app as its child, reports every start
//! and exit to the supervisor, forwards the signals it receives to the apps, reaps every
//! zombie (orphans re-parent to it), and exits when the last app has exited, which ends
//! the pod: the kernel kills whatever the apps left behind.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::plan::PodPlan;
use crate::proto::Event;

/// Signals the init takes from the supervisor (or `vessel stop`) and passes to the apps.
const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

struct Status(std::fs::File);

impl Status {
    fn send(&mut self, e: &Event) {
        // The supervisor is our parent: if it is gone, so are we (PDEATHSIG).
        let _ = self.0.write_all(e.to_string().as_bytes());
    }
}

/// Entry point when the binary runs as `vessel-pod-init`, exec'd by the pod's first
/// process (see `embryo`) with its socket to the supervisor on fd 3.
pub fn main() -> ! {
    let entered = crate::trace::now();
    // Not dumpable: without CAP_SYS_PTRACE no app can open /proc/1/{exe,fd,root,mem}.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // SAFETY: the embryo left this descriptor open for us alone.
    let sock = unsafe { OwnedFd::from_raw_fd(crate::crossing::embryo::INIT_SOCKET_FD) };
    let _ = rustix::io::fcntl_setfd(&sock, rustix::io::FdFlags::CLOEXEC);
    let handed = match crate::crossing::handover::receive(sock.as_fd()) {
        Ok(h) => h,
        // Nobody to tell: the supervisor sees us die before its hand-over ends.
        Err(_) => std::process::exit(1),
    };
    let mut plan = handed.plan;
    let mut status = Status(std::fs::File::from(handed.status));
    crate::trace::set_origin(plan.trace_origin);
    if let Some(cpus) = &plan.cpus {
        let _ = crate::crossing::embryo::set_cpus(0, cpus);
    }
    crate::trace::mark_at("init: main entered", entered);
    crate::trace::mark("init: plan received");
    let started = crate::pid1::stage1::setup(&mut plan, sock.as_fd(), status.0.as_raw_fd())
        .map_err(|e| format!("starting the pod: {e}"))
        .and_then(|()| {
            if plan.network_gate {
                await_network(sock.as_fd(), &mut status)
            } else {
                Ok(())
            }
        });
    drop(sock);
    let code = match started.and_then(|()| run(&plan, &mut status)) {
        Ok(()) => 0,
        Err(message) => {
            status.send(&Event::Error { message });
            1
        }
    };
    std::process::exit(code)
}

/// No app starts before the supervisor says the pod's networks are up, and with what
/// /etc/hosts and /etc/resolv.conf (see `crossing::network`).
fn await_network(sock: BorrowedFd<'_>, status: &mut Status) -> Result<(), String> {
    let ready = crate::crossing::network::receive(sock)
        .map_err(|e| format!("waiting for the pod's networks: {e}"))?;
    crate::trace::mark("init: networks up");
    match crate::crossing::network::apply(&ready) {
        Ok(None) => Ok(()),
        Ok(Some(message)) => {
            status.send(&Event::Warning { message });
            Ok(())
        }
        Err(e) => Err(format!("writing the pod's network settings: {e}")),
    }
}

fn run(plan: &PodPlan, status: &mut Status) -> Result<(), String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(*s);
    }
    mask.thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;
    let sigfd = SignalFd::new(&mask).map_err(|e| format!("signalfd: {e}"))?;

    let mut live: HashMap<Pid, usize> = HashMap::new();
    let mut failed = false;
    // The init's own v1 cgroups; it joins no v2 one (see cgroups::join).
    crate::cgroups::join_with_fds(&plan.init_cgroup_fds)
        .map_err(|e| format!("joining the pod's cgroup: {e}"))?;
    // Every app is forked first (into its v2 cgroup), joins its v1 cgroups itself, and
    // waits on `go`: under --private-users the init still has to move it in v2.
    let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    let mut forked = Vec::new();
    for app in plan.apps.iter() {
        let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("pipe: {e}"))?;
        // SAFETY: single-threaded; the child only runs app::run, which ends in exec or _exit.
        match unsafe { crate::cgroups::fork_into(app.cgroup_v2_dir) } {
            Err(e) => {
                return Err(format!(
                    "starting app {} in its cgroup (clone3): {e}",
                    app.name
                ))
            }
            Ok(0) => {
                drop(err_r);
                drop(go_w);
                let go = go_r
                    .try_clone()
                    .unwrap_or_else(|_| unsafe { libc::_exit(126) });
                crate::pid1::app::run(app, err_w, go)
            }
            Ok(child) => {
                drop(err_w);
                for fd in app.stdio.iter() {
                    // SAFETY: closing inherited descriptors this process no longer needs.
                    unsafe { libc::close(*fd) };
                }
                forked.push((Pid::from_raw(child), err_r));
            }
        }
    }
    drop(go_r);
    crate::trace::mark("init: apps forked");
    for (app, (child, _)) in plan.apps.iter().zip(&forked) {
        if let Some(procs) = app.cgroup_v2_procs {
            let pid = child.as_raw().to_string();
            crate::cgroups::move_with_fds(&[procs], pid.as_bytes())
                .map_err(|e| format!("moving app {} into its cgroup: {e}", app.name))?;
        }
    }
    for fd in plan
        .apps
        .iter()
        .flat_map(|a| {
            a.cgroup_fds
                .iter()
                .chain(&a.cgroup_v2_dir)
                .chain(&a.cgroup_v2_procs)
        })
        .chain(plan.init_cgroup_fds.iter())
    {
        // SAFETY: the cgroup descriptors are ours and no longer needed.
        unsafe { libc::close(*fd) };
    }
    crate::trace::mark("init: cgroups joined");
    let _ = unshare(rustix::thread::UnshareFlags::NEWCGROUP);
    // One byte per app says "go"; an app that sees the pipe close without one (we failed
    // before moving it) never runs.
    let _ = rustix::io::write(&go_w, &vec![b'g'; plan.apps.len()]);
    drop(go_w);
    for (idx, (child, err_r)) in forked.into_iter().enumerate() {
        let mut msg = String::new();
        let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
        if msg.is_empty() {
            live.insert(child, idx);
            status.send(&Event::Started {
                app: idx,
                pid: child.as_raw(),
            });
        } else {
            let _ = waitpid(child, None);
            status.send(&Event::Failed {
                app: idx,
                message: msg,
            });
            failed = true;
        }
    }
    if failed {
        for pid in live.keys() {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
        }
    }
    while !live.is_empty() {
        let info = match sigfd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("reading signals: {e}")),
        };
        let sig = Signal::try_from(info.ssi_signo as i32).ok();
        if sig == Some(Signal::SIGCHLD) {
            reap(&mut live, status);
        } else if let Some(s) = sig {
            for pid in live.keys() {
                let _ = nix::sys::signal::kill(*pid, s);
            }
        }
    }
    // Reap what is left without blocking; the kernel kills the rest when we exit.
    while let Ok(s) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
    status.send(&Event::Done);
    Ok(())
}

fn reap(live: &mut HashMap<Pid, usize>, status: &mut Status) {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if let Some(idx) = live.remove(&Pid::from_raw(pid)) {
            status.send(&Event::Exited {
                app: idx,
                status: raw,
            });
        }
    }
}

/// unshare(2) for this single-threaded process.
fn unshare(flags: rustix::thread::UnshareFlags) -> rustix::io::Result<()> {
    // SAFETY: the init is single-threaded.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}
