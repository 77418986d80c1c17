//! The pod init: pid 1 of the pod (of a fly pod: a subreaper in the host's pid
//! namespace). It starts each app as its child, reports every start
//! and exit to the supervisor, forwards the signals it receives to the apps, reaps every
//! zombie (orphans re-parent to it), and exits when the last app has exited, which ends
//! the pod: the kernel kills whatever the apps left behind.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::crossing::channel::PodEnd;
use crate::error::{Context, Error, Result};
use crate::plan::Handover;
use crate::proto::Event;

/// Signals the init takes from the supervisor (or `vessel stop`) and passes to the apps;
/// an app's post-stop shim (`app::hooks`) passes the same on to its app.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Entry point when the binary runs as `vessel-pod-init`, exec'd by the pod's first
/// process (see `embryo`) with its socket to the supervisor on fd 3.
pub fn main() -> ! {
    let entered = crate::trace::now();
    // Not dumpable: without CAP_SYS_PTRACE no app can open /proc/1/{exe,fd,root,mem}.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // SAFETY: the first process left the channel open on this number for us alone.
    let channel = unsafe { PodEnd::from_carried(crate::crossing::sealed::CARRY_FD) };
    let _ = rustix::io::fcntl_setfd(channel.as_fd(), rustix::io::FdFlags::CLOEXEC);
    serve(channel, entered)
}

/// The init's work once it holds its channel: on a host (`main`), or inside a kvm guest,
/// forked by the guest's PID 1 (`kvm::guest`). A kvm pod's init on the host starts the
/// virtual machine instead (`kvm::host`).
pub fn serve(channel: PodEnd, entered: u64) -> ! {
    let mut handover = match channel.receive_handover() {
        Ok(h) => h,
        Err(e) => {
            channel.fail(&e);
            std::process::exit(1)
        }
    };
    if handover.kvm.as_ref().is_some_and(|k| !k.in_guest) {
        crate::kvm::host::main(handover, channel);
    }
    crate::trace::set_origin(handover.trace_origin);
    if let Some(cpus) = &handover.cpus {
        let _ = crate::crossing::embryo::set_cpus(0, cpus);
    }
    crate::trace::mark_at("init: main entered", entered);
    crate::trace::mark("init: plan received");
    if handover.plan.rootless {
        crate::app::note_setgroups();
    }
    let started = crate::pid1::stage1::setup(&handover.plan, &channel)
        .ctx("starting the pod")
        .map(|terminal| {
            // An app with a terminal gets the pty slave as its stdio; open until the fork.
            if let Some(slave) = terminal {
                let fd = std::os::fd::IntoRawFd::into_raw_fd(slave);
                let apps = handover.plan.apps.iter().zip(handover.apps.iter_mut());
                for (_, ours) in apps.filter(|(a, _)| a.terminal) {
                    ours.stdio = Some([fd; 3]);
                }
            }
        })
        .and_then(|()| {
            if handover.plan.network_gate {
                await_network(&channel).map(|env| add_env(&mut handover.plan, &env))
            } else {
                Ok(())
            }
        });
    exit_reporting(&channel, started.and_then(|()| run(&handover, &channel)))
}

/// Ends the pod's first process (the init here, QEMU's parent in the kvm flavour): an
/// error goes to the supervisor as the pod's error, then exit 1; else exit 0.
pub(crate) fn exit_reporting(channel: &PodEnd, result: Result<()>) -> ! {
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            channel.report(
                &Event::Error {
                    message: e.to_string(),
                },
                None,
            );
            1
        }
    };
    std::process::exit(code)
}

/// No app starts before the supervisor says the pod's networks are up, and with what
/// /etc/hosts and /etc/resolv.conf (see `crossing::network`). Returns the variables the apps get from the networks (`AC_METADATA_URL`).
fn await_network(channel: &PodEnd) -> Result<Vec<(String, String)>> {
    let ready = channel
        .receive_network()
        .ctx("waiting for the pod's networks")?;
    crate::trace::mark("init: networks up");
    if let Some(message) =
        crate::crossing::network::apply(&ready).ctx("writing the pod's network settings")?
    {
        channel.report(&Event::Warning { message }, None);
    }
    Ok(ready.env)
}

/// Sets `env` in every app's environment (over a variable of the same name).
pub(crate) fn add_env(plan: &mut crate::plan::PodPlan, env: &[(String, String)]) {
    if env.is_empty() {
        return;
    }
    for app in plan.apps.iter_mut() {
        if let Some(process) = app.spec.process_mut() {
            let vars = process.env_mut().get_or_insert_with(Vec::new);
            for (k, v) in env {
                let prefix = format!("{k}=");
                vars.retain(|e| !e.starts_with(&prefix));
                vars.push(format!("{k}={v}"));
            }
        }
    }
}

/// A forked app: its pid, the read end of its error pipe, and a pidfd of it for the
/// supervisor (see `supervisor::witness`).
type Forked = (Pid, OwnedFd, Option<OwnedFd>);

fn run(handover: &Handover, status: &PodEnd) -> Result<()> {
    let plan = &handover.plan;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(*s);
    }
    mask.thread_block().ctx("blocking signals")?;
    let sigfd = SignalFd::new(&mask).ctx("signalfd")?;

    // A fly pod's init is no pid 1: made a subreaper, it still adopts and reaps what its
    // apps leave behind. What outlives it is killed with the pod's cgroups.
    if plan.flavour == crate::plan::Flavour::Fly {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .ctx("PR_SET_CHILD_SUBREAPER")?;
    }
    let mut live: HashMap<Pid, usize> = HashMap::new();
    let mut failed = false;
    // The init's own v1 cgroups; it joins no v2 one (see cgroups::join).
    crate::cgroups::join_with_fds(&handover.init_cgroup_fds).ctx("joining the pod's cgroup")?;
    // Every app is forked first (into its v2 cgroup), joins its v1 cgroups itself, and
    // waits on `go`: under --private-users the init still has to move it in v2.
    let (go_r, go_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx("pipe")?;
    // An app that cannot be described (an unknown user, say) is not forked; it is reported
    // failed in its turn below, as one whose child failed.
    let mut forked: Vec<std::result::Result<Forked, Error>> = Vec::new();
    for (app, ours) in plan.apps.iter().zip(&handover.apps) {
        let child = match crate::pid1::app_child::prepare(app, ours) {
            Ok(c) => c,
            Err(e) => {
                for fd in ours.stdio.iter().flatten().chain(&ours.listen_fds) {
                    // SAFETY: closing inherited descriptors this process no longer needs.
                    unsafe { libc::close(*fd) };
                }
                forked.push(Err(e));
                continue;
            }
        };
        let (err_r, err_w) = crate::app::report_channel()?;
        // SAFETY: single-threaded; the child only runs app_child::run, which ends in exec
        // or _exit.
        match unsafe { crate::cgroups::fork_into(ours.cgroup_v2_dir) } {
            Err(e) => {
                return Err(Error::os(
                    format!("starting app {} in its cgroup (clone3)", app.name),
                    e as i32,
                ))
            }
            Ok(0) => {
                drop(err_r);
                drop(go_w);
                let go = go_r
                    .try_clone()
                    .unwrap_or_else(|_| unsafe { libc::_exit(126) });
                crate::pid1::app_child::run(&child, err_w, go)
            }
            Ok(child) => {
                drop(err_w);
                for fd in ours.stdio.iter().flatten().chain(&ours.listen_fds) {
                    // SAFETY: closing inherited descriptors this process no longer needs.
                    unsafe { libc::close(*fd) };
                }
                // Held until the app's start is reported: the supervisor checks exits
                // against it. Our child, not reaped yet: the pid cannot have been reused.
                let pidfd = rustix::process::Pid::from_raw(child).and_then(|p| {
                    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
                });
                forked.push(Ok((Pid::from_raw(child), err_r, pidfd)));
            }
        }
    }
    drop(go_r);
    crate::trace::mark("init: apps forked");
    for ((app, ours), (child, _, _)) in plan
        .apps
        .iter()
        .zip(&handover.apps)
        .zip(&forked)
        .filter_map(|(a, f)| Some((a, f.as_ref().ok()?)))
    {
        if let Some(procs) = ours.cgroup_v2_procs {
            let pid = child.as_raw().to_string();
            crate::cgroups::move_with_fds(&[procs], pid.as_bytes())
                .with_ctx(|| format!("moving app {} into its cgroup", app.name))?;
        }
    }
    for fd in handover.cgroup_descriptors() {
        // SAFETY: the cgroup descriptors are ours and no longer needed.
        unsafe { libc::close(*fd) };
    }
    crate::trace::mark("init: cgroups joined");
    let _ = unshare(rustix::thread::UnshareFlags::NEWCGROUP);
    // One byte per app says "go"; an app that sees the pipe close without one (we failed
    // before moving it) never runs.
    let _ = rustix::io::write(&go_w, &vec![b'g'; plan.apps.len()]);
    drop(go_w);
    for (idx, forked) in forked.into_iter().enumerate() {
        let (child, err_r, pidfd) = match forked {
            Ok(f) => f,
            Err(error) => {
                status.report(&Event::Failed { app: idx, error }, None);
                failed = true;
                continue;
            }
        };
        let mut msg = Vec::new();
        let _ = std::fs::File::from(err_r).read_to_end(&mut msg);
        if msg.is_empty() {
            live.insert(child, idx);
            status.report(
                &Event::Started {
                    app: idx,
                    pid: child.as_raw(),
                },
                pidfd.as_ref().map(|p| p.as_fd()),
            );
        } else {
            let _ = waitpid(child, None);
            let error = Error::decode(&msg)
                .unwrap_or_else(|| Error::msg("starting the app", "it ended without a word"));
            status.report(&Event::Failed { app: idx, error }, None);
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
            Err(e) => return Err(Error::os("reading signals", e as i32)),
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
    status.report(&Event::Done, None);
    Ok(())
}

fn reap(live: &mut HashMap<Pid, usize>, status: &PodEnd) {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if let Some(idx) = live.remove(&Pid::from_raw(pid)) {
            status.report(
                &Event::Exited {
                    app: idx,
                    status: raw,
                },
                None,
            );
        }
    }
}

/// unshare(2) for this single-threaded process.
fn unshare(flags: rustix::thread::UnshareFlags) -> rustix::io::Result<()> {
    // SAFETY: the init is single-threaded.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}
