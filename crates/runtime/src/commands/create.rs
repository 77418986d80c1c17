//! `create` and `run`: the bundle checked, the container's cgroup and directory made, its
//! process spawned on the executor (exec::container) and recorded once it is ready.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use exec::container::plan::{namespaces, ContainerPlan, Failure, FdRole, Report};
use rustix::fs::{Mode, OFlags};

use crate::cli::CreateArgs;
use crate::error::{Result, RuntimeError};
use crate::layout::Root;
use crate::state::{proc_stat, Record};
use crate::status::Status;

/// Where a container without `linux.cgroupsPath` gets its cgroup.
const DEFAULT_CGROUP_PARENT: &str = "vessel-runtime";

/// A created container's process.
pub struct Created {
    pub pid: i32,
    /// Where the terminal's master arrives when we relay it (`terminal::relay`).
    pub terminal: Option<OwnedFd>,
    /// Held while `run` waits (the pid cannot be reused meanwhile).
    pub _pidfd: OwnedFd,
    pub record: Record,
}

/// A container directory under construction: removed, with the cgroup, unless finished.
struct Staging {
    dir: PathBuf,
    cgroup: Option<exec::cgroups::Cgroup>,
    /// The systemd unit holding the cgroup (`--systemd-cgroup`).
    unit: Option<crate::systemd::Unit>,
    _lock: OwnedFd,
    done: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            if let Some(c) = &self.cgroup {
                let _ = c.remove();
            }
            if let Some(u) = &self.unit {
                let _ = u.bus.stop_unit(&u.path.unit);
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn exec_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Exec(e.to_string())
}

/// Makes `<root>/.<id>.creating`, locked; a stale one (its creator died) is replaced.
fn stage(root: &Root, id: &str) -> Result<Staging> {
    std::fs::create_dir_all(root.dir()).map_err(RuntimeError::io("creating", root.dir()))?;
    let _ = rustix::fs::chmod(root.dir(), Mode::from_raw_mode(0o700));
    if root.container(id).dir().exists() {
        return Err(RuntimeError::Exists(id.to_string()));
    }
    let dir = root.staging(id);
    for _ in 0..2 {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let lock_path = dir.join("lock");
                let lock = rustix::fs::open(
                    &lock_path,
                    OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| RuntimeError::io("creating", &lock_path)(e.into()))?;
                rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                    .map_err(|e| RuntimeError::io("locking", &lock_path)(e.into()))?;
                return Ok(Staging {
                    dir,
                    cgroup: None,
                    unit: None,
                    _lock: lock,
                    done: false,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another create of this id, or one that died: only the second may go.
                let held = rustix::fs::open(
                    dir.join("lock"),
                    OFlags::RDWR | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ok()
                .is_some_and(|l| {
                    rustix::fs::flock(&l, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                        .is_err()
                });
                if held {
                    return Err(RuntimeError::Exists(id.to_string()));
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e) => return Err(RuntimeError::io("creating", &dir)(e)),
        }
    }
    Err(RuntimeError::Exists(id.to_string()))
}

/// Connects to the client's console socket (a path that is not a socket is refused).
pub(super) fn console_socket(path: &Path) -> Result<OwnedFd> {
    match std::fs::metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {}
        Ok(_) => {
            return Err(RuntimeError::Usage(format!(
                "console socket {}: not a unix socket",
                path.display()
            )))
        }
        Err(e) => return Err(RuntimeError::io("console socket", path)(e)),
    }
    let s = std::os::unix::net::UnixStream::connect(path)
        .map_err(RuntimeError::io("connecting to console socket", path))?;
    Ok(s.into())
}

/// How the process goes on once recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Wait for `start` (create).
    Create,
    /// Run at once (run); `foreground`: not detached, so a terminal with no console
    /// socket is relayed by us.
    Run { foreground: bool },
}

pub fn create(root: &Root, a: &CreateArgs, mode: Start) -> Result<Created> {
    crate::layout::check_id(&a.id)?;
    let bundle = crate::bundle::load(&a.bundle)?;
    let mut staging = stage(root, &a.id)?;
    exec::trace::mark("bundle loaded, staged");
    let mut spec = bundle.spec.clone();
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut console = super::terminal::Console::choose(
        a.console_socket.as_deref(),
        terminal,
        mode == Start::Run { foreground: true },
        "process.terminal",
    )?;
    // The cgroup, with its limits, before the process exists.
    let linux = spec.linux().clone().unwrap_or_default();
    let cgroup_path = linux
        .cgroups_path()
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CGROUP_PARENT).join(&a.id));
    let mut limits = match linux.resources() {
        Some(r) => exec::cgroups::Limits::from_oci(r).map_err(exec_err)?,
        None => exec::cgroups::Limits::default(),
    };
    // As runc: the standard devices stay allowed after the spec's rules, and so does
    // every device the spec creates.
    let mut rules = limits.devices.take().unwrap_or_default();
    rules.extend(
        exec::cgroups::DeviceRule::container_defaults()
            .into_iter()
            .skip(1),
    );
    for d in linux.devices().iter().flatten() {
        let r = oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(d.typ())
            .major(d.major())
            .minor(d.minor())
            .access("rwm")
            .build()
            .map_err(exec_err)?;
        rules.push(exec::cgroups::DeviceRule::from_oci(&r).map_err(exec_err)?);
    }
    limits.devices = Some(rules);
    let cgroups = super::resources::container_cgroups(Some(&limits))?;
    // With systemd, the unit takes the process once it exists (in `spawn`'s callback).
    let (cgroup_rel, join) = if root.systemd_cgroup() {
        let unit = systemd_unit(linux.cgroups_path().as_deref(), &a.id, cgroups.layout())?;
        let rel = unit.path.cgroup.to_string_lossy().into_owned();
        staging.unit = Some(unit);
        (rel, exec::cgroups::JoinFds::default())
    } else {
        let cgroup = cgroups.create_at(&cgroup_path, &limits).map_err(exec_err)?;
        let join = cgroup.open_join_fds(false).map_err(exec_err)?;
        let rel = cgroup.relative_path().to_string_lossy().into_owned();
        staging.cgroup = Some(cgroup);
        exec::trace::mark("cgroup created");
        (rel, join)
    };
    let seccomp_bpf = take_seccomp(root, &a.id, &mut spec)?;
    cgroup_mounts(&mut spec, cgroups.layout());
    exec::trace::mark("seccomp compiled");
    ambient_within_inheritable(&mut spec);
    let ns = namespaces(&spec);
    let mut roles = vec![FdRole::Rootfs];
    let mut held: Vec<OwnedFd> = Vec::new();
    let fifo = match mode {
        Start::Create => {
            let path = staging.dir.join("exec.fifo");
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::Fifo,
                Mode::from_raw_mode(0o600),
                0,
            )
            .map_err(|e| RuntimeError::io("creating", &path)(e.into()))?;
            let fd = rustix::fs::open(
                &path,
                OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| RuntimeError::io("opening", &path)(e.into()))?;
            roles.push(FdRole::ExecFifo);
            Some(fd)
        }
        Start::Run { .. } => None,
    };
    held.extend(fifo);
    if let Some(c) = console.to_container.take() {
        roles.push(FdRole::ConsoleSocket);
        held.push(c);
    }
    for (t, path) in &ns.join {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| RuntimeError::io("opening namespace", path)(e.into()))?;
        roles.push(FdRole::Namespace(t.to_string()));
        held.push(fd);
    }
    pass_cgroup_join(join, &mut roles, &mut held);
    let tree = exec::mount::clone_tree(bundle.rootfs_fd.as_fd(), "", true)
        .map_err(|e| RuntimeError::Exec(format!("rootfs {}: {e}", bundle.rootfs.display())))?;
    let mut fds: Vec<BorrowedFd<'_>> = vec![tree.as_fd()];
    fds.extend(held.iter().map(|f| f.as_fd()));
    for n in 0..a.preserve_fds {
        roles.push(FdRole::Preserved);
        // SAFETY: --preserve-fds says these are open in this process, and they outlive
        // the hand-over.
        fds.push(unsafe { BorrowedFd::borrow_raw(3 + n as i32) });
    }
    let mut record = Record {
        id: a.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        paused: false,
        cgroup_path: cgroup_rel,
        systemd_unit: staging.unit.as_ref().map(|u| u.path.unit.clone()),
        config: bundle.spec.clone(),
    };
    let hooks = spec.hooks().clone().unwrap_or_default();
    let runtime_hooks = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
        || hooks
            .create_runtime()
            .as_ref()
            .is_some_and(|h| !h.is_empty());
    let plan = ContainerPlan {
        id: a.id.clone(),
        rootfs_path: bundle.rootfs.clone(),
        spec,
        fds: roles,
        unshare: ns.unshare,
        wait_for_start: mode == Start::Create,
        exec: false,
        runtime_hooks,
        hook_state: String::new(),
        seccomp_bpf,
        cpus: None,
    };
    let mut unit_cgroup = None;
    let spawned = exec::container::spawn::spawn(plan, &fds, &ns, |plan, pid| {
        let mut r = record.clone();
        r.pid = pid;
        plan.hook_state = r.hook_state(Status::Creating).to_string();
        let Some(unit) = &staging.unit else {
            return Ok(Vec::new());
        };
        let (cgroup, fds) = systemd_cgroup(unit, &cgroups, pid, &a.id, &limits, &mut plan.fds)
            .map_err(|e| Failure::msg("the container's systemd unit", e.to_string()))?;
        unit_cgroup = Some(cgroup);
        Ok(fds)
    });
    if unit_cgroup.is_some() {
        staging.cgroup = unit_cgroup;
    }
    let spawned = spawned.map_err(exec_err)?;
    record.pid = spawned.pid();
    exec::trace::mark("spawned");
    loop {
        match spawned.report().map_err(exec_err)? {
            Report::Hooks => {
                let state = record.hook_state(Status::Creating).to_string();
                for h in hooks.prestart().iter().flatten() {
                    exec::container::hooks::run("prestart", h, &state)
                        .map_err(RuntimeError::Exec)?;
                }
                for h in hooks.create_runtime().iter().flatten() {
                    exec::container::hooks::run("createRuntime", h, &state)
                        .map_err(RuntimeError::Exec)?;
                }
                spawned.go().map_err(exec_err)?;
            }
            Report::Ready => break,
            Report::Failed(f) => return Err(exec_err(f)),
        }
    }
    record.pid_start = proc_stat(record.pid).map(|(_, s)| s).unwrap_or(0);
    exec::trace::mark("ready");
    crate::state::save(&staging.dir, &record)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, record.pid)?;
    }
    let fin = root.container(&a.id);
    // rename(2) onto an existing non-empty directory fails: a racing create lost.
    std::fs::rename(&staging.dir, fin.dir()).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => RuntimeError::Exists(a.id.clone()),
        _ => RuntimeError::io("renaming into place", fin.dir())(e),
    })?;
    staging.done = true;
    exec::trace::mark("recorded");
    let (pid, pidfd) = spawned.commit().map_err(exec_err)?;
    drop(held);
    Ok(Created {
        pid,
        terminal: console.relayed,
        _pidfd: pidfd,
        record,
    })
}

/// The container's systemd unit, named by its cgroupsPath (`slice:prefix:name`), on a
/// connection to systemd (a clear error where none answers). Nothing is started yet.
fn systemd_unit(
    cgroups_path: Option<&Path>,
    id: &str,
    layout: exec::cgroups::Layout,
) -> Result<crate::systemd::Unit> {
    let text = match cgroups_path {
        Some(p) => Some(p.to_str().ok_or_else(|| {
            RuntimeError::Usage(format!("cgroupsPath {}: not UTF-8", p.display()))
        })?),
        None => None,
    };
    let rootless = !rustix::process::geteuid().is_root();
    let path = crate::systemd::path::parse(text, id, rootless)?;
    let bus = crate::systemd::Systemd::connect()?;
    Ok(crate::systemd::Unit { bus, path, layout })
}

/// Puts the cloned process `pid` in its systemd unit (waiting for systemd's job), then
/// makes the unit's cgroup in the hierarchies systemd left alone and writes every limit
/// there through cgroupfs, as runc does; returns the cgroup and the descriptors the
/// process joins it by (their roles appended to `roles`).
fn systemd_cgroup(
    unit: &crate::systemd::Unit,
    cgroups: &exec::cgroups::Cgroups,
    pid: i32,
    id: &str,
    limits: &exec::cgroups::Limits,
    roles: &mut Vec<FdRole>,
) -> Result<(exec::cgroups::Cgroup, Vec<OwnedFd>)> {
    unit.start(pid, id, limits)?;
    exec::trace::mark("systemd unit started");
    let cgroup = cgroups
        .create_at(&unit.path.cgroup, limits)
        .map_err(exec_err)?;
    let join = cgroup.open_join_fds(false).map_err(exec_err)?;
    let mut fds = Vec::new();
    pass_cgroup_join(join, roles, &mut fds);
    Ok((cgroup, fds))
}

/// Hands the descriptors that join a cgroup to the container's process, each with its role
/// (create's and exec's processes join the same way).
pub(super) fn pass_cgroup_join(
    join: exec::cgroups::JoinFds,
    roles: &mut Vec<FdRole>,
    fds: &mut Vec<OwnedFd>,
) {
    for fd in join.tasks {
        roles.push(FdRole::CgroupTasks);
        fds.push(fd);
    }
    if let Some(fd) = join.v2_procs {
        roles.push(FdRole::CgroupProcs);
        fds.push(fd);
    }
}

/// The config's seccomp profile, compiled here on the host through a cache (podman's
/// profile takes milliseconds to compile) and taken out of the spec.
pub(super) fn take_seccomp(
    root: &Root,
    id: &str,
    spec: &mut oci_spec::runtime::Spec,
) -> Result<Option<Vec<u8>>> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return Ok(None);
    };
    let bpf = exec::supervisor::launch::compiled_filter(
        id,
        &profile,
        Some(&root.dir().join(".seccomp-cache")),
    )
    .map_err(exec_err)?
    .to_bytes();
    if let Some(l) = spec.linux_mut() {
        l.set_seccomp(None);
    }
    Ok(Some(bpf))
}

/// Writes the pid file whole (containerd and conmon read it as soon as we exit).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("vessel-tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(RuntimeError::io("writing pid file", path))
}

/// A `cgroup` mount: cgroup2 itself on a v2 host; on v1 and hybrid hosts, where a new
/// v1 mount would take every controller at once, an empty read-only tmpfs (see
/// docs/oci-runtime-cli.md: the container does not see its v1 hierarchies).
fn cgroup_mounts(spec: &mut oci_spec::runtime::Spec, layout: exec::cgroups::Layout) {
    let Some(mounts) = spec.mounts().clone() else {
        return;
    };
    let changed = mounts
        .into_iter()
        .map(|mut m| {
            if m.typ().as_deref() == Some("cgroup") {
                if layout == exec::cgroups::Layout::V2 {
                    m.set_typ(Some("cgroup2".into()));
                } else {
                    let mut opts: Vec<String> = m
                        .options()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|o| matches!(o.as_str(), "ro" | "nosuid" | "nodev" | "noexec"))
                        .collect();
                    opts.push("mode=755".into());
                    m.set_typ(Some("tmpfs".into()));
                    m.set_source(Some("cgroup".into()));
                    m.set_options(Some(opts));
                }
            }
            m
        })
        .collect();
    spec.set_mounts(Some(changed));
}

/// runc raises an ambient capability only where the kernel allows (also inheritable and
/// permitted) and warns about the rest; its default spec relies on that.
pub(super) fn ambient_within_inheritable(spec: &mut oci_spec::runtime::Spec) {
    let Some(process) = spec.process_mut() else {
        return;
    };
    let Some(caps) = process.capabilities().clone() else {
        return;
    };
    let Some(ambient) = caps.ambient().clone() else {
        return;
    };
    let inheritable = caps.inheritable().clone().unwrap_or_default();
    let permitted = caps.permitted().clone().unwrap_or_default();
    let allowed =
        |c: &oci_spec::runtime::Capability| inheritable.contains(c) && permitted.contains(c);
    let dropped: Vec<_> = ambient.iter().filter(|c| !allowed(c)).copied().collect();
    let kept: std::collections::HashSet<_> = ambient.into_iter().filter(allowed).collect();
    if !dropped.is_empty() {
        let names: Vec<String> = dropped.iter().map(|c| format!("CAP_{c}")).collect();
        crate::log::debug(&format!(
            "ambient capabilities not also inheritable and permitted are not raised: {}",
            names.join(", ")
        ));
        let mut caps = caps.clone();
        caps.set_ambient(Some(kept));
        process.set_capabilities(Some(caps));
    }
}
