//! `vessel enter`: a process inside a running app with exactly that app's isolation.
//!
//! Most of it is read off the app process itself (/proc/PID): its cgroups, its user and
//! groups, its five capability sets and no_new_privs, so the new process can never hold
//! more than the app does. Its namespaces are joined through a pidfd in one setns call.
//! The environment, working directory, rlimits and seccomp filter come from the app's
//! spec, as the app got them at start.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;

use crate::caps::{CapSets, CapabilitySet, Credentials};
use crate::seccomp::SeccompProgram;

pub struct EnterRequest<'a> {
    /// The app's process, as the host sees it.
    pub app_pid: i32,
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

/// Runs the command inside the app and returns its wait status. Our stdio is the command's.
pub fn enter(req: EnterRequest<'_>) -> io::Result<i32> {
    let mut state = read_status(req.app_pid)?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(req.app_pid).ok_or_else(|| io::Error::other("bad pid"))?,
        rustix::process::PidfdFlags::empty(),
    )?;
    let process = req
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| io::Error::other("the app's spec has no process"))?;
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let cwd = process.cwd().to_string_lossy().into_owned();
    let c_args: Vec<CString> = req
        .command
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let c_env: Vec<CString> = env
        .iter()
        .map(|e| CString::new(e.as_str()).unwrap_or_default())
        .collect();
    let program = req
        .command
        .first()
        .cloned()
        .ok_or_else(|| io::Error::other("no command"))?;
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let candidates: Vec<CString> = if program.contains('/') {
        vec![CString::new(program.as_str()).unwrap_or_default()]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| {
                CString::new(format!("{}/{program}", d.trim_end_matches('/'))).unwrap_or_default()
            })
            .collect()
    };

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
    // SAFETY: single-threaded; the child execs or _exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        let msg = become_app_and_exec(
            &state,
            process,
            &cwd,
            req.seccomp.as_ref(),
            &candidates,
            &c_args,
            &c_env,
        );
        eprintln!("vessel: enter: {msg}");
        // SAFETY: leave the child without the parent's destructors.
        unsafe {
            libc::_exit(if msg.contains("No such file") {
                127
            } else {
                126
            })
        };
    }
    // Pass on terminal signals to the command while we wait.
    let mut raw = 0;
    loop {
        // SAFETY: waitpid on our child with a valid out pointer.
        let r = unsafe { libc::waitpid(child, &mut raw, 0) };
        if r == child {
            return Ok(raw);
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(io::Error::last_os_error());
        }
    }
}

/// In the forked child, now inside the app's namespaces: its limits, ids, capabilities,
/// filter, then the command. Returns only on failure, with the reason.
fn become_app_and_exec(
    state: &ProcessState,
    process: &oci_spec::runtime::Process,
    cwd: &str,
    seccomp: Option<&SeccompProgram>,
    candidates: &[CString],
    args: &[CString],
    env: &[CString],
) -> String {
    for rl in process.rlimits().iter().flatten() {
        if let Some(res) = crate::app::rlimit_resource(&format!("{:?}", rl.typ())) {
            let lim = libc::rlimit {
                rlim_cur: rl.soft(),
                rlim_max: rl.hard(),
            };
            // SAFETY: setrlimit with a valid struct.
            unsafe { libc::setrlimit(res, &lim) };
        }
    }
    let creds = Credentials {
        uid: state.uid,
        gid: state.gid,
        supplementary_groups: state.groups.clone(),
    };
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load before dropping it.
    if let (Some(p), false) = (seccomp, state.no_new_privs) {
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
    if let Err(e) = rustix::process::chdir(cwd) {
        return format!("working directory {cwd}: {e}");
    }
    // SAFETY: closing every descriptor but stdio.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if let (Some(p), true) = (seccomp, state.no_new_privs) {
        if let Err(e) = p.load() {
            return format!("loading the seccomp filter: {e}");
        }
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut reason = io::Error::from_raw_os_error(libc::ENOENT);
    for c in candidates {
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = io::Error::last_os_error();
        if reason.raw_os_error() == Some(libc::ENOENT) {
            reason = e;
        }
    }
    format!(
        "exec {}: {reason}",
        args.first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}
