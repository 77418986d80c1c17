//! `exec`: a new process in a running container, on the same path as its first one
//! (exec::container): the sealed binary cloned into the container's pid namespace joins
//! its cgroup, then its other namespaces, then becomes the process.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use exec::container::plan::{namespaces_of, ContainerPlan, FdRole, Report};
use oci_spec::runtime::{Capability, Process, Spec};
use rustix::fs::{Mode, OFlags};

use super::create::{ambient_within_inheritable, pass_cgroup_join, take_seccomp, write_pid_file};
use super::lifecycle::{block_forwarded_signals, wait_forwarding};
use crate::cli::ExecArgs;
use crate::error::{Result, RuntimeError};
use crate::layout::Root;
use crate::state::Container;
use crate::status::{check, Op, Status};

fn exec_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Exec(e.to_string())
}

pub fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    let c = Container::open(root, &a.id)?;
    let status = c.status();
    if !(status == Status::Paused && a.ignore_paused) {
        check(Op::Exec, status, &a.id)?;
    }
    let process = match &a.process {
        Some(path) => process_file(path)?,
        None => process_from_flags(c.record.config.process().as_ref(), a)?,
    };
    let mut spec: Spec = c.record.config.clone();
    spec.set_process(Some(process));
    // Hooks belong to the container's life, not to its other processes.
    spec.set_hooks(None);
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut roles = Vec::new();
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut console = super::terminal::Console::choose(
        a.console_socket.as_deref(),
        terminal,
        !a.detach,
        "the process's terminal (-t)",
    )?;
    if let Some(fd) = console.to_container.take() {
        roles.push(FdRole::ConsoleSocket);
        held.push(fd);
    }
    let seccomp_bpf = take_seccomp(root, &a.id, &mut spec)?;
    ambient_within_inheritable(&mut spec);
    // The container's process, held by a pidfd while its namespaces are opened: once they
    // are open and it is still that process, they are its own (not a recycled pid's).
    let pid = c.record.pid;
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
        .filter(|_| c.record.process_alive())
        .ok_or_else(|| exec_err("container not running"))?;
    let ns = namespaces_of(&spec, pid);
    for (t, path) in &ns.join {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| RuntimeError::io("opening namespace", path)(e.into()))?;
        roles.push(FdRole::Namespace(t.to_string()));
        held.push(fd);
    }
    if !c.record.process_alive() {
        return Err(exec_err("container not running"));
    }
    if let Some(cg) = super::lifecycle::cgroup_of(&c.record) {
        let join = cg.open_join_fds(false).map_err(exec_err)?;
        pass_cgroup_join(join, &mut roles, &mut held);
    }
    let mut fds: Vec<BorrowedFd<'_>> = held.iter().map(|f| f.as_fd()).collect();
    for n in 0..a.preserve_fds {
        roles.push(FdRole::Preserved);
        // SAFETY: --preserve-fds says these are open in this process, and they outlive
        // the hand-over.
        fds.push(unsafe { BorrowedFd::borrow_raw(3 + n as i32) });
    }
    let plan = ContainerPlan {
        id: a.id.clone(),
        rootfs_path: c.record.rootfs.clone(),
        spec,
        fds: roles,
        unshare: 0,
        wait_for_start: false,
        exec: true,
        runtime_hooks: false,
        hook_state: String::new(),
        seccomp_bpf,
        cpus: None,
    };
    if !a.detach {
        block_forwarded_signals();
    }
    let spawned =
        exec::container::spawn::spawn(plan, &fds, &ns, |_, _| Ok(Vec::new())).map_err(exec_err)?;
    match spawned.report().map_err(exec_err)? {
        Report::Ready => {}
        Report::Failed(f) => return Err(exec_err(f)),
        Report::Hooks => return Err(exec_err("the joining process asked for hooks")),
    }
    exec::trace::mark("exec ready");
    let child = spawned.pid();
    if let Some(p) = &a.pid_file {
        write_pid_file(p, child)?;
    }
    let (child, _child_pidfd) = spawned.commit_until_exec().map_err(exec_err)?;
    drop(held);
    drop(pidfd);
    // The container is free for other commands (kill, delete) while we wait.
    drop(c);
    if a.detach {
        return Ok(0);
    }
    match console.relayed {
        Some(ours) => super::terminal::relay(ours, child),
        None => Ok(wait_forwarding(child)),
    }
}

/// `--process FILE`: a whole OCI process object; runc takes it as it is.
fn process_file(path: &std::path::Path) -> Result<Process> {
    let text = std::fs::read(path).map_err(RuntimeError::io("reading process", path))?;
    let not_a_process = |e: serde_json::Error| {
        RuntimeError::Usage(format!(
            "process {}: not an OCI process: {e}",
            path.display()
        ))
    };
    let mut value: serde_json::Value = serde_json::from_slice(&text).map_err(not_a_process)?;
    crate::bundle::respell_scheduler_flags(&mut value);
    let p: Process = serde_json::from_value(value).map_err(not_a_process)?;
    check_process(&p)?;
    Ok(p)
}

fn check_process(p: &Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(RuntimeError::Usage("exec: args must not be empty".into()));
    }
    if !p.cwd().is_absolute() {
        return Err(RuntimeError::Usage(format!(
            "exec: cwd {} is not an absolute path",
            p.cwd().display()
        )));
    }
    Ok(())
}

/// The container's own process with the command line's changes, as runc makes it:
/// the command, --cwd, --env added, -t, --user, --additional-gids, --cap added to the
/// bounding, effective and permitted sets, --no-new-privs, labels.
fn process_from_flags(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    p.set_terminal(Some(a.tty));
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (u.as_str(), None),
        };
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| RuntimeError::Usage(format!("--user {u}: UID[:GID] must be numbers")))
        };
        user.set_uid(num(uid)?);
        user.set_gid(gid.map(num).transpose()?.unwrap_or(0));
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut bounding = caps.bounding().clone().unwrap_or_default();
        let mut effective = caps.effective().clone().unwrap_or_default();
        let mut permitted = caps.permitted().clone().unwrap_or_default();
        for name in &a.cap {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| {
                        RuntimeError::Usage(format!("--cap {name}: unknown capability"))
                    })?;
            bounding.insert(cap);
            effective.insert(cap);
            permitted.insert(cap);
        }
        caps.set_bounding(Some(bounding));
        caps.set_effective(Some(effective));
        caps.set_permitted(Some(permitted));
        p.set_capabilities(Some(caps));
    }
    if let Some(l) = &a.apparmor {
        p.set_apparmor_profile(Some(l.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    check_process(&p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &[&str]) -> ExecArgs {
        let cli = crate::cli::Cli::try_parse_from(
            std::iter::once("vessel-runtime")
                .chain(std::iter::once("exec"))
                .chain(line.iter().copied()),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Exec(e) => e,
            _ => unreachable!(),
        }
    }

    fn base() -> Process {
        serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        }))
        .unwrap()
    }

    #[test]
    fn flags_change_the_containers_process() {
        let a = args(&[
            "--cwd",
            "/tmp",
            "-e",
            "A=1",
            "--user",
            "1000:100",
            "--cap",
            "CAP_NET_ADMIN",
            "--no-new-privs",
            "c1",
            "echo",
            "-n",
            "x",
        ]);
        let p = process_from_flags(Some(&base()), &a).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["echo", "-n", "x"]);
        assert_eq!(p.cwd(), std::path::Path::new("/tmp"));
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=1"]);
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.terminal(), Some(false));
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::NetAdmin));
        assert!(caps
            .permitted()
            .as_ref()
            .unwrap()
            .contains(&Capability::Kill));
    }

    #[test]
    fn bad_flags_are_named() {
        let e = process_from_flags(Some(&base()), &args(&["--user", "bob", "c1", "true"]));
        assert!(e.unwrap_err().to_string().contains("--user bob"));
        let e = process_from_flags(Some(&base()), &args(&["--cap", "CAP_NOPE", "c1", "true"]));
        assert!(e.unwrap_err().to_string().contains("--cap CAP_NOPE"));
        let e = process_from_flags(Some(&base()), &args(&["c1"]));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("args must not be empty"));
        let e = process_from_flags(Some(&base()), &args(&["--cwd", "tmp", "c1", "true"]));
        assert!(e.unwrap_err().to_string().contains("not an absolute path"));
    }

    #[test]
    fn a_process_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"args":["ls"],"cwd":"/","user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        assert_eq!(
            process_file(&path).unwrap().args().as_ref().unwrap(),
            &["ls"]
        );
        std::fs::write(&path, "not json").unwrap();
        let e = process_file(&path).unwrap_err().to_string();
        assert!(e.contains("p.json: not an OCI process"), "{e}");
    }
}
