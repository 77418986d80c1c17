//! The supervisor's side of starting a pod: cgroups, compiled seccomp filters, pipes, and
//! the clone into new namespaces. The supervisor is the process that keeps waiting on the
//! pod (`vessel run`, or its detached copy); it holds the pod's lock and reads the init's
//! reports and the apps' output.

use std::io::{Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::cgroups::{Cgroups, Limits};
use crate::crossing::embryo::Embryo;
use crate::plan::{NetMode, PodPlan};
use crate::seccomp::{compile, SeccompProgram};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cgroups: {0}")]
    Cgroups(#[from] crate::cgroups::CgroupError),
    #[error("app {app}: {reason}")]
    App { app: String, reason: String },
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |err| LaunchError::Io { what, err }
}

pub struct LaunchOptions {
    /// Parent of pod cgroups in every hierarchy (default "vessel").
    pub cgroup_parent: String,
    /// Where compiled seccomp filters are cached (compiling the default profile costs
    /// milliseconds; loading a cached one, microseconds).
    pub seccomp_cache: Option<PathBuf>,
    /// What the apps read as stdin; /dev/null when None.
    pub stdin: Option<OwnedFd>,
}

/// The namespaces a pod's first process is cloned into.
pub fn namespace_flags(plan: &PodPlan) -> libc::c_int {
    namespace_flags_for(plan.net, plan.ipc_private, plan.userns.is_some())
}

pub fn namespace_flags_for(net: NetMode, ipc_private: bool, userns: bool) -> libc::c_int {
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS;
    if ipc_private {
        flags |= libc::CLONE_NEWIPC;
    }
    if net == NetMode::None {
        flags |= libc::CLONE_NEWNET;
    }
    if userns {
        flags |= libc::CLONE_NEWUSER;
    }
    flags
}

/// A started pod, seen from the supervisor.
pub struct Launched {
    pub init_pid: i32,
    pub pidfd: OwnedFd,
    /// The init's reports (proto::Event lines).
    pub status: std::fs::File,
    /// Each app's stdout and stderr, in app order.
    pub outputs: Vec<(usize, [OwnedFd; 2])>,
    /// The pty master of the app with a terminal, and that app's index.
    pub terminal: Option<(usize, OwnedFd)>,
    pub cgroups: Cgroups,
    /// The socket to the init, kept while it waits for the pod's network settings
    /// (`PodPlan::network_gate`, `crossing::network::send`).
    pub sock: Option<OwnedFd>,
}

/// Starts the pod described by `plan`. Returns once the init process exists; its first
/// reports say whether the apps started.
pub fn launch(plan: PodPlan, opts: LaunchOptions) -> Result<Launched, LaunchError> {
    launch_with(plan, opts, None)
}

/// `launch`, with a first process cloned ahead of time (`Embryo::spawn` with
/// `namespace_flags`) so that its exec overlaps the caller's own work; without one (or
/// with one made for other namespaces), one is cloned here first thing.
pub fn launch_with(
    mut plan: PodPlan,
    opts: LaunchOptions,
    embryo: Option<Embryo>,
) -> Result<Launched, LaunchError> {
    // The first process starts its exec now, while we prepare the rest.
    let embryo = match embryo {
        Some(e) if e.flags == namespace_flags(&plan) => e,
        _ => Embryo::spawn(namespace_flags(&plan))
            .map_err(io_err("starting the pod's first process"))?,
    };
    let cgroups = Cgroups::detect()?.with_parent(opts.cgroup_parent.as_str())?;
    // Any failure from here on takes the pod's cgroups away again.
    let mut cgroup_guard = RemoveOnFailure {
        cgroups: cgroups.clone(),
        uuid: plan.uuid.clone(),
        armed: true,
    };
    // Every process of the pod may use only the standard devices: with CAP_MKNOD (in the
    // default set) an app could otherwise create and open any device node of the host.
    let pod_limits = Limits {
        devices: Some(crate::cgroups::DeviceRule::container_defaults()),
        ..Limits::default()
    };
    let pod_cg = cgroups.create_pod(&plan.uuid, &pod_limits)?;
    // Apps are cloned into their v2 cgroups, unless the init is not root on the host.
    let clone_into = plan.userns.is_none();
    let init_join = pod_cg.init.open_join_fds(clone_into)?;
    plan.init_cgroup_fds = init_join.tasks.iter().map(|f| f.as_raw_fd()).collect();
    crate::trace::mark("pod cgroup created");

    let stdin = match opts.stdin {
        Some(fd) => fd,
        None => rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| LaunchError::Io {
            what: "/dev/null".into(),
            err: e.into(),
        })?,
    };
    // Descriptors that must reach the init (kept alive here until the clone).
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut outputs = Vec::new();
    for (index, app) in plan.apps.iter_mut().enumerate() {
        let limits = match app
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
        {
            Some(r) => Limits::from_oci(r)?,
            None => Limits::default(),
        };
        // An app without limits of its own shares the init's leaf: one cgroup fewer to
        // create, join and remove in every hierarchy.
        let join = if limits.memory_bytes.is_none()
            && limits.cpu_quota.is_none()
            && limits.cpu_shares.is_none()
            && limits.pids.is_none()
        {
            let dup = |f: &OwnedFd| f.try_clone();
            crate::cgroups::JoinFds {
                tasks: init_join
                    .tasks
                    .iter()
                    .map(dup)
                    .collect::<std::io::Result<Vec<_>>>()
                    .map_err(io_err("dup"))?,
                v2_dir: init_join
                    .v2_dir
                    .as_ref()
                    .map(dup)
                    .transpose()
                    .map_err(io_err("dup"))?,
                v2_procs: init_join
                    .v2_procs
                    .as_ref()
                    .map(dup)
                    .transpose()
                    .map_err(io_err("dup"))?,
            }
        } else {
            cgroups
                .create_app(&plan.uuid, &app.name, &limits)?
                .open_join_fds(clone_into)?
        };
        app.cgroup_fds = join.tasks.iter().map(|f| f.as_raw_fd()).collect();
        app.cgroup_v2_dir = join.v2_dir.as_ref().map(|f| f.as_raw_fd());
        app.cgroup_v2_procs = join.v2_procs.as_ref().map(|f| f.as_raw_fd());
        held.extend(join.tasks);
        held.extend(join.v2_dir);
        held.extend(join.v2_procs);

        if let Some(profile) = app.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            let program = compiled(profile, opts.seccomp_cache.as_deref()).map_err(|reason| {
                LaunchError::App {
                    app: app.name.clone(),
                    reason,
                }
            })?;
            app.seccomp_bpf = Some(program.to_bytes());
        }
        // The init needs only the compiled filter, not the (large) profile.
        if let Some(linux) = app.spec.linux_mut() {
            linux.set_seccomp(None);
        }
        if app.terminal {
            // Its stdio is a pty the pod's first process opens (see stage1).
            continue;
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin_dup =
            rustix::io::fcntl_dupfd_cloexec(&stdin, 3).map_err(|e| LaunchError::Io {
                what: "dup".into(),
                err: e.into(),
            })?;
        app.stdio = [stdin_dup.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
        held.extend([stdin_dup, out_w, err_w]);
        outputs.push((index, [out_r, err_r]));
    }
    let terminal_app = plan.apps.iter().position(|a| a.terminal);
    crate::trace::mark("apps' cgroups, seccomp and pipes ready");
    plan.trace_origin = crate::trace::origin();
    plan.cpus = embryo.cpus.clone();
    let plan_fd = rustix::fs::memfd_create("vessel-pod-plan", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| LaunchError::Io {
            what: "memfd".into(),
            err: e.into(),
        })?;
    {
        let mut f = std::fs::File::from(plan_fd.try_clone().map_err(io_err("memfd"))?);
        f.write_all(&serde_json::to_vec(&plan).expect("serialisable"))
            .map_err(io_err("writing the plan"))?;
        f.rewind().map_err(io_err("writing the plan"))?;
    }
    let (status_r, status_w) = pipe()?;
    let named: Vec<BorrowedFd<'_>> = held
        .iter()
        .chain(init_join.tasks.iter())
        .map(|f| f.as_fd())
        .collect();
    if let Some(u) = plan.userns {
        // The pod's root may move its processes between its cgroups (only those files:
        // nothing else the init gets changes owner).
        let cgroup_fds: Vec<RawFd> = plan
            .apps
            .iter()
            .flat_map(|a| a.cgroup_fds.iter().chain(&a.cgroup_v2_procs).copied())
            .chain(init_join.tasks.iter().map(|f| f.as_raw_fd()))
            .collect();
        for fd in named.iter().filter(|f| cgroup_fds.contains(&f.as_raw_fd())) {
            if rustix::fs::fstat(fd)
                .map(|st| {
                    st.st_uid == 0
                        && rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::RegularFile
                })
                .unwrap_or(false)
            {
                let _ = rustix::fs::fchown(
                    fd,
                    Some(rustix::fs::Uid::from_raw_unchecked(u.base)),
                    Some(rustix::fs::Gid::from_raw_unchecked(u.base)),
                );
            }
        }
        crate::supervisor::userns::write_maps(embryo.pid, u)
            .and_then(|()| embryo.user_namespace_ready())
            .map_err(io_err("setting up the user namespace"))?;
    }
    // A first process that died on the way (it reports nothing yet) shows here.
    let gone = |e: std::io::Error| LaunchError::Io {
        what: "handing the pod to its first process".into(),
        err: e,
    };
    crate::crossing::handover::send(
        embryo.sock.as_fd(),
        plan_fd.as_fd(),
        status_w.as_fd(),
        &named,
    )
    .map_err(gone)?;
    drop(named);
    if plan.userns.is_some() {
        crate::supervisor::userns::send_idmapped_layers(embryo.pid, &plan, embryo.sock.as_fd())
            .map_err(io_err("setting up the user namespace"))?;
    }
    let terminal = match terminal_app {
        Some(i) => crate::terminal::recv_fd(embryo.sock.as_fd())
            .ok()
            .flatten()
            .map(|m| (i, m)),
        None => None,
    };
    drop(held);
    drop(status_w);
    drop(init_join);
    drop(plan_fd);
    let network_gate = plan.network_gate;
    let (init_pid, pidfd, sock) = embryo.disarm();
    cgroup_guard.armed = false;
    Ok(Launched {
        init_pid,
        pidfd,
        status: std::fs::File::from(status_r),
        outputs,
        terminal,
        cgroups,
        sock: network_gate.then_some(sock),
    })
}

/// Removes a pod's cgroups when dropped while armed: start-up failed before the pod ran.
struct RemoveOnFailure {
    cgroups: Cgroups,
    uuid: String,
    armed: bool,
}

impl Drop for RemoveOnFailure {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.cgroups.remove_pod(&self.uuid);
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| LaunchError::Io {
        what: "pipe".into(),
        err: e.into(),
    })
}

/// Compiles a seccomp profile, through an on-disk cache keyed by the profile's content.
pub fn compiled_filter(
    profile: &oci_spec::runtime::LinuxSeccomp,
    cache: Option<&Path>,
) -> Result<SeccompProgram, LaunchError> {
    compiled(profile, cache).map_err(|reason| LaunchError::App {
        app: "?".into(),
        reason,
    })
}

fn compiled(
    profile: &oci_spec::runtime::LinuxSeccomp,
    cache: Option<&Path>,
) -> Result<SeccompProgram, String> {
    let json = serde_json::to_vec(profile).expect("serialisable");
    let key = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(&json);
        h.update(cache_salt().as_bytes());
        hex::encode(h.finalize())
    };
    if let Some(dir) = cache {
        if let Ok(bytes) = std::fs::read(dir.join(&key)) {
            if let Ok(p) = SeccompProgram::from_bytes(&bytes) {
                return Ok(p);
            }
        }
    }
    let program = compile(profile).map_err(|e| e.to_string())?;
    if let Some(dir) = cache {
        let _ = std::fs::create_dir_all(dir);
        let tmp = dir.join(format!(".{key}.{}", std::process::id()));
        if std::fs::write(&tmp, program.to_bytes()).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(&key));
        }
    }
    Ok(program)
}

/// A cached filter is only valid for the vessel and libseccomp that compiled it.
fn cache_salt() -> String {
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    format!(
        "vessel {} libseccomp {lib} arch {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}
