//! `vessel enter`: a process inside a running app with exactly that app's isolation.
//!
//! Most of it is read off the app process itself (/proc/PID): its cgroups, its user and
//! groups, its five capability sets and no_new_privs, so the new process can never hold
//! more than the app does. Its namespaces are joined through a pidfd in one setns call.
//! The environment, working directory, rlimits and seccomp filter come from the app's
//! spec, as the app got them at start.
//!
//! The process that crosses into the pod never runs the host's binary there: a fork of
//! `vessel enter` execs at once, as [`ENTER_ARGV0`], a detached read-only mount of the
//! binary (as the pod's init does), and only that process becomes the app's and runs the
//! command. A pod that swaps the command for a `#!/proc/self/exe` script then finds
//! only a read-only file behind /proc/PID/exe, never the host's binary to overwrite
//! (runc's CVE-2019-5736).

use std::ffi::CStr;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::app::{AppDescription, AppExec, OomScoreAdj};
use crate::caps::{CapSets, CapabilitySet};
use crate::crossing::sealed::{exec_sealed, CARRY_FD};
use crate::error::{Context, Error};
use crate::seccomp::SeccompProgram;

/// argv[0] of the process that crosses into the pod (see `exec_main`).
pub const ENTER_ARGV0: &CStr = c"vessel-enter-exec";

pub struct EnterRequest<'a> {
    /// The app's process, as the host sees it.
    pub app_pid: i32,
    /// The pod's init and its start time (from the pod's state), to prove that `app_pid`
    /// still belongs to the pod.
    pub init_pid: i32,
    pub init_start: Option<u64>,
    /// The app's spec (from the pod's plan).
    pub spec: &'a oci_spec::runtime::Spec,
    /// Its compiled seccomp filter, if it has one.
    pub seccomp: Option<SeccompProgram>,
    pub command: Vec<String>,
}

/// What /proc says of a process.
struct ProcessState {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    caps: CapSets,
    no_new_privs: bool,
    oom_score_adj: Option<i32>,
}

/// Translates a host id into the id namespace of `pid` (its uid_map or gid_map), for a
/// process about to enter its user namespace.
fn to_namespace(pid: i32, map: &str, id: u32) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{map}"))?;
    for line in text.lines() {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, count] = f[..] {
            if (id as u64) >= outside && (id as u64) < outside + count {
                return Ok((inside + (id as u64 - outside)) as u32);
            }
        }
    }
    Err(io::Error::other(format!(
        "id {id} is not mapped in the app's user namespace"
    )))
}

fn read_status(pid: i32) -> io::Result<ProcessState> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let bad = |what: &str| io::Error::other(format!("cannot read {what} of process {pid}"));
    let first_num = |name: &str| -> io::Result<u32> {
        field(name)
            .and_then(|v| v.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(name))
    };
    let mask = |name: &str| -> io::Result<CapabilitySet> {
        field(name)
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .map(CapabilitySet::from_bits)
            .ok_or_else(|| bad(name))
    };
    Ok(ProcessState {
        // Effective ids: what the app acts as.
        uid: first_num("Uid:")?,
        gid: first_num("Gid:")?,
        groups: field("Groups:")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|g| g.parse().ok())
            .collect(),
        caps: CapSets {
            bounding: mask("CapBnd:")?,
            effective: mask("CapEff:")?,
            permitted: mask("CapPrm:")?,
            inheritable: mask("CapInh:")?,
            ambient: mask("CapAmb:")?,
        },
        no_new_privs: field("NoNewPrivs:") == Some("1"),
        // Entering must not keep a more protected OOM score than the app has.
        oom_score_adj: std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

/// Moves the calling process into the cgroups of `pid` (every hierarchy it is in).
fn join_cgroups_of(pid: i32) -> io::Result<()> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mounts =
        crate::cgroups::CgroupMounts::read().map_err(|e| io::Error::other(e.to_string()))?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let base = if controllers.is_empty() {
            mounts.unified.clone()
        } else {
            controllers
                .split(',')
                .find_map(|c| mounts.v1_with(c))
                .map(|m| m.mount_point.clone())
        };
        let Some(base) = base else { continue };
        let procs = base.join(path.trim_start_matches('/')).join("cgroup.procs");
        if procs.exists() {
            std::fs::write(&procs, b"0").map_err(|e| {
                io::Error::new(e.kind(), format!("joining {}: {e}", procs.display()))
            })?;
        }
    }
    Ok(())
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Proves that `app_pid` is still a process of the pod: the init is the one the pod
/// started (same start time) and the process lives in its pid namespace. A recycled pid
/// could otherwise hand the operator's terminal to any process on the host.
fn check_in_pod(req: &EnterRequest<'_>) -> io::Result<()> {
    let gone = || io::Error::other("the pod's init is gone");
    let init_is_the_pods =
        || start_time(req.init_pid).is_some() && start_time(req.init_pid) == req.init_start;
    if !init_is_the_pods() {
        return Err(gone());
    }
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid"));
    let same = ns(req.init_pid)? == ns(req.app_pid)?;
    // An app is a child of the init. A fly pod's pid namespace is the host's, where the
    // namespace alone proves nothing: the parent does (read while the pidfd holds the pid).
    let parent = std::fs::read_to_string(format!("/proc/{}/status", req.app_pid))?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse::<i32>().ok());
    let same = same && parent == Some(req.init_pid);
    if !init_is_the_pods() {
        return Err(gone());
    }
    if !same {
        return Err(io::Error::other(format!(
            "process {} is no longer one of the pod's",
            req.app_pid
        )));
    }
    Ok(())
}

/// True once the process behind `pidfd` has exited.
fn exited(pidfd: &OwnedFd) -> bool {
    let mut p = [libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: poll on one valid pollfd, without waiting.
    unsafe { libc::poll(p.as_mut_ptr(), 1, 0) != 0 }
}

/// Runs the command inside the app and returns its wait status. Its stdio is a pty of the
/// app's devpts or pipes, relayed to ours (`enter_io`).
pub fn enter(req: EnterRequest<'_>) -> io::Result<i32> {
    // Hold the process first, then check it is the pod's: whatever /proc said about the pid
    // is about this process as long as it has not exited since.
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(req.app_pid).ok_or_else(|| io::Error::other("bad pid"))?,
        rustix::process::PidfdFlags::empty(),
    )?;
    check_in_pod(&req)?;
    let mut state = read_status(req.app_pid)?;
    if exited(&pidfd) {
        return Err(io::Error::other(format!(
            "app process {} has exited",
            req.app_pid
        )));
    }
    let process = req
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| io::Error::other("the app's spec has no process"))?;
    if req.command.is_empty() {
        return Err(io::Error::other("no command"));
    }

    // A terminal only for an operator at one; decided before we leave the host's view.
    let terminal = crate::crossing::enter_io::wants_terminal();
    // The binary to cross with, taken while the host's mounts are still ours.
    let exe = crate::mount::read_only_self()?;
    // Rootless, the pod has no cgroups of its own and the user may move into none.
    if !crate::rootless::active() {
        join_cgroups_of(req.app_pid)?;
    }
    // No other process may look into us while we cross over (the app cannot open our
    // /proc/PID/exe without CAP_SYS_PTRACE); the flag carries over the fork.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let mut flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWCGROUP;
    if std::fs::read_link(format!("/proc/{}/ns/user", req.app_pid))?
        != std::fs::read_link("/proc/self/ns/user")?
    {
        flags |= libc::CLONE_NEWUSER;
        // /proc showed us host ids; inside, the app's are its namespace's.
        state.uid = to_namespace(req.app_pid, "uid_map", state.uid)?;
        state.gid = to_namespace(req.app_pid, "gid_map", state.gid)?;
        state.groups = state
            .groups
            .iter()
            .map(|g| to_namespace(req.app_pid, "gid_map", *g))
            .collect::<io::Result<_>>()?;
    }
    // Namespaces we already share (a pod on the host's network) are skipped: setns refuses
    // to "join" the namespace one is in only for the user namespace, but be exact anyway.
    // A fly pod shares all but its mount (and the app's cgroup) namespace with the host.
    for (flag, name) in [
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWPID, "pid"),
    ] {
        if std::fs::read_link(format!("/proc/{}/ns/{name}", req.app_pid))?
            == std::fs::read_link(format!("/proc/self/ns/{name}"))?
        {
            flags &= !flag;
        }
    }
    // The app as the app is: its ids, capabilities and no_new_privs from /proc, never
    // more; its limits, working directory and environment from its spec, as at its start.
    let description = AppDescription {
        uid: state.uid,
        gid: state.gid,
        groups: state.groups,
        caps: state.caps,
        no_new_privs: state.no_new_privs,
        oom_score_adj: state.oom_score_adj.map(|value| OomScoreAdj {
            value,
            raise_only: true,
        }),
        seccomp: req.seccomp.as_ref().map(SeccompProgram::to_bytes),
        args: req.command.clone(),
        ..AppDescription::from_process(process)
    };
    let carrier = rustix::fs::memfd_create("vessel-enter", rustix::fs::MemfdFlags::CLOEXEC)?;
    {
        let mut f = std::fs::File::from(carrier.try_clone()?);
        f.write_all(&serde_json::to_vec(&description).map_err(io::Error::other)?)?;
        f.rewind()?;
    }
    // SAFETY: setns with a pidfd we own and a set of namespace flags.
    if unsafe { libc::setns(pidfd.as_raw_fd(), flags) } < 0 {
        return Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!(
                "joining the app's namespaces: {}",
                io::Error::last_os_error()
            ),
        ));
    }
    // Now in the app's mount namespace: its devpts gives the terminal.
    let stdio = crate::crossing::enter_io::EnterStdio::open(terminal)?;
    let (stdio_fds, is_terminal) = stdio.child_fds();
    // SAFETY: single-threaded; the child execs or _exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        let e = cross_over(
            exe.as_fd(),
            carrier.as_fd(),
            flags & libc::CLONE_NEWUSER != 0,
            stdio_fds,
            is_terminal,
        );
        eprintln!("vessel: enter: crossing into the app: {e}");
        // SAFETY: leave the child without the parent's destructors.
        unsafe { libc::_exit(126) };
    }
    drop(carrier);
    drop(exe);
    stdio.relay(child)
}

/// In the forked child: a session of its own whose stdio is `stdio` (the pod's pty, made
/// its controlling terminal, or pipes: never the operator's descriptors), then the sealed
/// binary with the carrier. Returns only on failure.
fn cross_over(
    exe: std::os::fd::BorrowedFd<'_>,
    carrier: std::os::fd::BorrowedFd<'_>,
    in_user_namespace: bool,
    stdio: [i32; 3],
    is_terminal: bool,
) -> Error {
    // SAFETY: setsid, ioctl and dup2 on descriptors we hold, in this single-threaded child.
    unsafe {
        // Out of the operator's session: its terminal can never be ours again.
        if libc::setsid() < 0 {
            return Error::last_os("setsid");
        }
        if is_terminal && libc::ioctl(stdio[0], libc::TIOCSCTTY, 0) < 0 {
            return Error::last_os("taking the terminal");
        }
        for (target, fd) in stdio.into_iter().enumerate() {
            if libc::dup2(fd, target as i32) < 0 {
                return Error::last_os("setting up stdio");
            }
        }
    }
    exec_sealed(exe, carrier, ENTER_ARGV0, in_user_namespace)
}

/// The crossing process (argv[0] [`ENTER_ARGV0`]), inside the app's namespaces and
/// cgroups: becomes the app (`crate::app`: its limits, ids, capabilities and filter) and
/// runs the command. Exits 127 or 126 when the command cannot be run, 125 on any other
/// failure to start.
pub fn exec_main() -> ! {
    // Not dumpable again (exec reset it): nothing in the pod may look into us.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    crate::app::note_setgroups();
    let mut json = Vec::new();
    // SAFETY: the carrier was left open for us by `cross_over`; we own it from here.
    let description = unsafe { std::fs::File::from_raw_fd(CARRY_FD) }
        .read_to_end(&mut json)
        .ctx("reading what to run")
        .and_then(|_| {
            serde_json::from_slice::<AppDescription>(&json)
                .map_err(|e| Error::msg("reading what to run", e.to_string()))
        });
    let e = match description.and_then(|d| AppExec::prepare(&d)) {
        Ok(app) => app.exec(None),
        Err(e) => e,
    };
    eprintln!("vessel: enter: {e}");
    // SAFETY: plain exit.
    unsafe { libc::_exit(e.start_failure_code()) }
}
