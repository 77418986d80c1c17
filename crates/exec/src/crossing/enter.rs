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

use std::ffi::CString;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::caps::{CapSets, CapabilitySet, Credentials};
use crate::seccomp::SeccompProgram;

/// argv[0] of the process that crosses into the pod (see `exec_main`).
pub const ENTER_ARGV0: &str = "vessel-enter-exec";
/// The descriptor that carries the [`Crossing`] over the exec.
const CROSSING_FD: i32 = 3;

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
#[derive(Serialize, Deserialize)]
struct ProcessState {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    #[serde(with = "cap_sets")]
    caps: CapSets,
    no_new_privs: bool,
    oom_score_adj: Option<i32>,
}

/// The capability sets as five masks (bounding, effective, permitted, inheritable,
/// ambient).
mod cap_sets {
    use super::{CapSets, CapabilitySet};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(c: &CapSets, s: S) -> Result<S::Ok, S::Error> {
        [
            c.bounding,
            c.effective,
            c.permitted,
            c.inheritable,
            c.ambient,
        ]
        .map(CapabilitySet::bits)
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CapSets, D::Error> {
        let [bounding, effective, permitted, inheritable, ambient] =
            <[u64; 5]>::deserialize(d)?.map(CapabilitySet::from_bits);
        Ok(CapSets {
            bounding,
            effective,
            permitted,
            inheritable,
            ambient,
        })
    }
}

/// Everything the crossing process needs, handed over the exec on [`CROSSING_FD`].
#[derive(Serialize, Deserialize)]
struct Crossing {
    state: ProcessState,
    /// (resource, soft, hard)
    rlimits: Vec<(u32, u64, u64)>,
    cwd: String,
    /// The compiled filter (SeccompProgram::to_bytes).
    seccomp: Option<Vec<u8>>,
    /// Paths to try for the command, in order (its PATH search, done on the host side).
    candidates: Vec<String>,
    args: Vec<String>,
    env: Vec<String>,
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
fn start_time(pid: i32) -> Option<u64> {
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
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let program = req
        .command
        .first()
        .cloned()
        .ok_or_else(|| io::Error::other("no command"))?;
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.clone()]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
            .collect()
    };
    let rlimits = process
        .rlimits()
        .iter()
        .flatten()
        .filter_map(|rl| {
            crate::pid1::app::rlimit_resource(&format!("{:?}", rl.typ()))
                .map(|res| (res, rl.soft(), rl.hard()))
        })
        .collect();

    // A terminal only for an operator at one; decided before we leave the host's view.
    let terminal = crate::crossing::enter_io::wants_terminal();
    // The binary to cross with, taken while the host's mounts are still ours.
    let exe = crate::mount::read_only_self()?;
    join_cgroups_of(req.app_pid)?;
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
    for (flag, name) in [(libc::CLONE_NEWNET, "net"), (libc::CLONE_NEWIPC, "ipc")] {
        if std::fs::read_link(format!("/proc/{}/ns/{name}", req.app_pid))?
            == std::fs::read_link(format!("/proc/self/ns/{name}"))?
        {
            flags &= !flag;
        }
    }
    let crossing = Crossing {
        state,
        rlimits,
        cwd: process.cwd().to_string_lossy().into_owned(),
        seccomp: req.seccomp.as_ref().map(SeccompProgram::to_bytes),
        candidates,
        args: req.command.clone(),
        env,
    };
    let carrier = rustix::fs::memfd_create("vessel-enter", rustix::fs::MemfdFlags::CLOEXEC)?;
    {
        let mut f = std::fs::File::from(carrier.try_clone()?);
        f.write_all(&serde_json::to_vec(&crossing).map_err(io::Error::other)?)?;
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
        eprintln!("vessel: enter: executing the crossing process: {e}");
        // SAFETY: leave the child without the parent's destructors.
        unsafe { libc::_exit(126) };
    }
    drop(carrier);
    drop(exe);
    stdio.relay(child)
}

/// In the forked child: a session of its own whose stdio is `stdio` (the pod's pty, made
/// its controlling terminal, or pipes: never the operator's descriptors), the carrier on
/// fd 3, every other descriptor closed at exec, then the read-only binary. Returns only
/// on failure.
fn cross_over(
    exe: std::os::fd::BorrowedFd<'_>,
    carrier: std::os::fd::BorrowedFd<'_>,
    in_user_namespace: bool,
    stdio: [i32; 3],
    is_terminal: bool,
) -> io::Error {
    // SAFETY: setsid, ioctl and dup2 on descriptors we hold, in this single-threaded child.
    unsafe {
        // Out of the operator's session: its terminal can never be ours again.
        if libc::setsid() < 0 {
            return io::Error::last_os_error();
        }
        if is_terminal && libc::ioctl(stdio[0], libc::TIOCSCTTY, 0) < 0 {
            return io::Error::last_os_error();
        }
        for (target, fd) in stdio.into_iter().enumerate() {
            if libc::dup2(fd, target as i32) < 0 {
                return io::Error::last_os_error();
            }
        }
    }
    // The binary's descriptor must survive the carrier taking fd 3.
    let moved_exe;
    let exe = if exe.as_raw_fd() == CROSSING_FD {
        match rustix::io::fcntl_dupfd_cloexec(exe, CROSSING_FD + 1) {
            Ok(fd) => {
                moved_exe = fd;
                moved_exe.as_fd()
            }
            Err(e) => return e.into(),
        }
    } else {
        exe
    };
    // Our host ids mean nothing in the pod's user namespace, and exec would take every
    // capability from a process that is not its root: become its root first.
    // SAFETY: raw id syscalls in this single-threaded child.
    if in_user_namespace
        && unsafe {
            libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(0, 0, 0) != 0
                || libc::setresuid(0, 0, 0) != 0
        }
    {
        return io::Error::last_os_error();
    }
    // SAFETY: dup2 and fcntl on descriptors we hold; close_range only marks descriptors.
    unsafe {
        if libc::dup2(carrier.as_raw_fd(), CROSSING_FD) < 0
            || libc::fcntl(CROSSING_FD, libc::F_SETFD, 0) < 0
        {
            return io::Error::last_os_error();
        }
        libc::syscall(
            libc::SYS_close_range,
            (CROSSING_FD + 1) as u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let argv0 = CString::new(ENTER_ARGV0).expect("no NUL");
    let argv = [argv0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated argv and envp arrays of valid C strings.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// The crossing process (argv[0] [`ENTER_ARGV0`]), inside the app's namespaces and
/// cgroups: takes the app's limits, ids, capabilities and filter, then runs the command.
pub fn exec_main() -> ! {
    // Not dumpable again (exec reset it): nothing in the pod may look into us.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let mut json = Vec::new();
    // SAFETY: the descriptor was left open for us by `cross_over`; we own it from here.
    let read = unsafe { std::fs::File::from_raw_fd(CROSSING_FD) }.read_to_end(&mut json);
    let crossing: Crossing = match read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&json).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vessel: enter: reading what to run: {e}");
            // SAFETY: plain exit.
            unsafe { libc::_exit(126) }
        }
    };
    let msg = become_app_and_exec(&crossing);
    eprintln!("vessel: enter: {msg}");
    // SAFETY: plain exit.
    unsafe {
        libc::_exit(if msg.contains("No such file") {
            127
        } else {
            126
        })
    }
}

/// Inside the app's namespaces: its limits, ids, capabilities, filter, then the command.
/// Returns only on failure, with the reason.
fn become_app_and_exec(c: &Crossing) -> String {
    let state = &c.state;
    for &(res, soft, hard) in &c.rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit with a valid struct.
        unsafe { libc::setrlimit(res, &lim) };
    }
    if let Some(adj) = state.oom_score_adj {
        // Raising it needs no privilege; lowering below ours would, and is not wanted.
        let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
    }
    let seccomp = match c.seccomp.as_deref().map(SeccompProgram::from_bytes) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return format!("the seccomp filter: {e}"),
        None => None,
    };
    let creds = Credentials {
        uid: state.uid,
        gid: state.gid,
        supplementary_groups: state.groups.clone(),
    };
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load before dropping it.
    if let (Some(p), false) = (&seccomp, state.no_new_privs) {
        if let Err(e) = p.load() {
            return format!("loading the seccomp filter: {e}");
        }
    }
    if let Err(e) = state.caps.apply(Some(&creds)) {
        return format!("capabilities: {e}");
    }
    if state.no_new_privs {
        if let Err(e) = crate::caps::set_no_new_privs() {
            return format!("no_new_privs: {e}");
        }
    }
    if let Err(e) = rustix::process::chdir(c.cwd.as_str()) {
        return format!("working directory {}: {e}", c.cwd);
    }
    let cstrings = |v: &[String]| -> Vec<CString> {
        v.iter()
            .map(|s| CString::new(s.as_str()).unwrap_or_default())
            .collect()
    };
    let (candidates, args, env) = (cstrings(&c.candidates), cstrings(&c.args), cstrings(&c.env));
    // SAFETY: closing every descriptor but stdio.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if let (Some(p), true) = (&seccomp, state.no_new_privs) {
        if let Err(e) = p.load() {
            return format!("loading the seccomp filter: {e}");
        }
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut reason = io::Error::from_raw_os_error(libc::ENOENT);
    for cand in &candidates {
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(cand.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = io::Error::last_os_error();
        if reason.raw_os_error() == Some(libc::ENOENT) {
            reason = e;
        }
    }
    format!(
        "exec {}: {reason}",
        c.args.first().cloned().unwrap_or_default()
    )
}
