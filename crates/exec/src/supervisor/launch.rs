//! The supervisor's side of starting a pod: cgroups, compiled seccomp filters, pipes, and
//! the clone into new namespaces. The supervisor is the process that keeps waiting on the
//! pod (`vessel run`, or its detached copy); it holds the pod's lock and reads the init's
//! reports and the apps' output.

use std::io::{Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::cgroups::{Cgroups, Limits};
use crate::crossing::channel::SupervisorEnd;
use crate::crossing::embryo::Embryo;
use crate::error::{Context, Error};
use crate::plan::{AppHandover, Flavour, Handover, NetMode, PodPlan};
use crate::seccomp::{compile, SeccompProgram};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cgroups: {0}")]
    Cgroups(#[from] crate::cgroups::CgroupError),
    #[error("app {app}: its seccomp filter: {source}")]
    Seccomp {
        app: String,
        source: crate::seccomp::SeccompError,
    },
    /// The pod's first process failed before it was handed the pod: its own report.
    #[error("the pod's first process: {0}")]
    FirstProcess(Error),
    #[error(transparent)]
    Step(#[from] Error),
}

pub struct LaunchOptions {
    /// Where compiled seccomp filters are cached (compiling the default profile costs
    /// milliseconds; loading a cached one, microseconds).
    pub seccomp_cache: Option<PathBuf>,
    /// What the apps read as stdin; /dev/null when None.
    pub stdin: Option<OwnedFd>,
    /// Per app (by index; missing: none), the sockets a service manager passed for it
    /// and their names: it gets them at 3, 4, ... (socket activation).
    pub listen_fds: Vec<Vec<(OwnedFd, String)>>,
    /// A kvm pod: the virtual machine its init starts.
    pub kvm: Option<crate::plan::KvmPlan>,
}

/// The namespaces a pod's first process is cloned into.
pub fn namespace_flags(plan: &PodPlan) -> libc::c_int {
    namespace_flags_for(
        plan.flavour,
        plan.net,
        plan.ipc_private,
        plan.userns.is_some(),
    )
}

/// The one place the flavour chooses namespaces: fly gets a mount namespace only (its
/// init and app live in the host's pid, network, ipc and uts namespaces); the default
/// flavour its own pid, mount and uts namespaces, and ipc, network and user ones as asked.
pub fn namespace_flags_for(
    flavour: Flavour,
    net: NetMode,
    ipc_private: bool,
    userns: bool,
) -> libc::c_int {
    if flavour == Flavour::Fly {
        return libc::CLONE_NEWNS;
    }
    // A kvm pod's init runs QEMU: it needs no network, and all it mounts is its own.
    if flavour == Flavour::Kvm {
        return libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET;
    }
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
    /// The channel: the init's reports (and a terminal's master) come on it.
    pub channel: SupervisorEnd,
    /// How many apps the pod has.
    pub apps: usize,
    /// Each app's stdout and stderr, in app order.
    pub outputs: Vec<(usize, [OwnedFd; 2])>,
    /// The app with a terminal, whose pty master comes on the channel.
    pub terminal_app: Option<usize>,
    pub cgroups: Cgroups,
    /// Datagram sockets the apps send `sd_notify` messages to, by app index (bound by the
    /// caller, which sets them after launch; the supervisor's loop reads them).
    pub notify: Vec<(usize, OwnedFd)>,
    /// The pod's flavour (a kvm pod's reports come from its guest: see `supervise`).
    pub flavour: Flavour,
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
        _ => Embryo::spawn(namespace_flags(&plan)).ctx("starting the pod's first process")?,
    };
    // Rootless: in the cgroup v2 subtree delegated to the user, if there is one; else the
    // pod runs in none (pod::prepare refused limits).
    let cgroups = if plan.rootless {
        match crate::rootless::delegated_cgroups() {
            Ok(d) => d.cgroups()?,
            Err(_) => Cgroups::detect()?.without_hierarchies(),
        }
    } else {
        Cgroups::detect()?
    };
    // Any failure from here on takes the pod's cgroups away again.
    let mut cgroup_guard = RemoveOnFailure {
        cgroups: cgroups.clone(),
        uuid: plan.uuid.clone(),
        armed: true,
    };
    // Every process of the pod may use only the standard devices: with CAP_MKNOD (in the
    // default set) an app could otherwise create and open any device node of the host.
    // Rootless, there is no devices cgroup, nor any need: no mknod in a user namespace,
    // and the only nodes in the pod are the standard ones bound from the host.
    // A kvm pod's processes on the host are its init and QEMU (the apps run in the
    // machine): QEMU opens /dev/kvm, the init makes taps with /dev/net/tun.
    let pod_limits = Limits {
        devices: (!plan.rootless).then(|| {
            let mut rules = crate::cgroups::DeviceRule::container_defaults();
            if plan.flavour == Flavour::Kvm {
                let rw = crate::cgroups::DeviceAccess::READ | crate::cgroups::DeviceAccess::WRITE;
                rules.push(crate::cgroups::DeviceRule::char_dev(10, Some(232), rw)); // /dev/kvm
                rules.push(crate::cgroups::DeviceRule::char_dev(10, Some(200), rw));
                // /dev/net/tun
            }
            rules
        }),
        ..Limits::default()
    };
    let pod_cg = cgroups.create_pod(&plan.uuid, &pod_limits)?;
    // Apps are cloned into their v2 cgroups, unless the init is not root on the host.
    let clone_into = plan.userns.is_none();
    let init_join = pod_cg.init.open_join_fds(clone_into)?;
    crate::trace::mark("pod cgroup created");

    let mut listen_fds = opts.listen_fds;
    let stdin = match opts.stdin {
        Some(fd) => fd,
        None => rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx("/dev/null")?,
    };
    // Descriptors that must reach the init (kept alive here until the clone).
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut outputs = Vec::new();
    let mut apps = Vec::new();
    for (index, app) in plan.apps.iter_mut().enumerate() {
        let mut ours = AppHandover::default();
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
                    .ctx("dup")?,
                v2_dir: init_join.v2_dir.as_ref().map(dup).transpose().ctx("dup")?,
                v2_procs: init_join
                    .v2_procs
                    .as_ref()
                    .map(dup)
                    .transpose()
                    .ctx("dup")?,
            }
        } else {
            cgroups
                .create_app(&plan.uuid, &app.name, &limits)?
                .open_join_fds(clone_into)?
        };
        ours.cgroup_fds = join.tasks.iter().map(|f| f.as_raw_fd()).collect();
        ours.cgroup_v2_dir = join.v2_dir.as_ref().map(|f| f.as_raw_fd());
        ours.cgroup_v2_procs = join.v2_procs.as_ref().map(|f| f.as_raw_fd());
        held.extend(join.tasks);
        held.extend(join.v2_dir);
        held.extend(join.v2_procs);

        if let Some(profile) = app.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            let program = compiled(profile, opts.seccomp_cache.as_deref()).map_err(|source| {
                LaunchError::Seccomp {
                    app: app.name.clone(),
                    source,
                }
            })?;
            ours.seccomp_bpf = Some(program.to_bytes());
        }
        // The init needs only the compiled filter, not the (large) profile.
        if let Some(linux) = app.spec.linux_mut() {
            linux.set_seccomp(None);
        }
        // Its stdio is a pty the pod's first process opens (see stage1), or pipes.
        if !app.terminal {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdin_dup = rustix::io::fcntl_dupfd_cloexec(&stdin, 3).ctx("dup")?;
            ours.stdio = Some([stdin_dup.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()]);
            held.extend([stdin_dup, out_w, err_w]);
            outputs.push((index, [out_r, err_r]));
        }
        for (fd, name) in listen_fds
            .get_mut(index)
            .map(std::mem::take)
            .unwrap_or_default()
        {
            ours.listen_fds.push(fd.as_raw_fd());
            ours.listen_names.push(name);
            held.push(fd);
        }
        apps.push(ours);
    }
    let terminal_app = plan.apps.iter().position(|a| a.terminal);
    crate::trace::mark("apps' cgroups, seccomp and pipes ready");
    let handover = Handover {
        plan,
        apps,
        init_cgroup_fds: init_join.tasks.iter().map(|f| f.as_raw_fd()).collect(),
        trace_origin: crate::trace::origin(),
        cpus: embryo.cpus.clone(),
        kvm: opts.kvm,
    };
    let plan = &handover.plan;
    let plan_fd = rustix::fs::memfd_create("vessel-pod-plan", rustix::fs::MemfdFlags::CLOEXEC)
        .ctx("memfd")?;
    {
        let mut f = std::fs::File::from(plan_fd.try_clone().ctx("memfd")?);
        f.write_all(&serde_json::to_vec(&handover).expect("serialisable"))
            .ctx("writing the hand-over")?;
        f.rewind().ctx("writing the hand-over")?;
    }
    let named: Vec<BorrowedFd<'_>> = held
        .iter()
        .chain(init_join.tasks.iter())
        .map(|f| f.as_fd())
        .collect();
    if let Some(u) = plan.userns {
        // The pod's root may move its processes between its cgroups (only those files:
        // nothing else the init gets changes owner).
        let cgroup_fds: Vec<RawFd> = handover
            .apps
            .iter()
            .flat_map(|a| a.cgroup_fds.iter().chain(&a.cgroup_v2_procs).copied())
            .chain(handover.init_cgroup_fds.iter().copied())
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
            .map_err(|e| match embryo.failure() {
                Some(reason) => LaunchError::FirstProcess(reason),
                None => LaunchError::Step(e.wrap("setting up the user namespace")),
            })?;
    }
    // A first process that died on the way left its reason on the socket.
    let gone = |e: Error| match embryo.failure() {
        Some(reason) => LaunchError::FirstProcess(reason),
        None => LaunchError::Step(e),
    };
    embryo
        .channel
        .send_handover(plan_fd.as_fd(), &named)
        .ctx("handing the pod to its first process")
        .map_err(gone)?;
    drop(named);
    if plan.userns.is_some() {
        crate::supervisor::userns::send_idmapped_layers(embryo.pid, plan, &embryo.channel)
            .ctx("setting up the user namespace")?;
    }
    let apps = plan.apps.len();
    let flavour = plan.flavour;
    drop(held);
    drop(init_join);
    drop(plan_fd);
    let (init_pid, pidfd, channel) = embryo.disarm();
    cgroup_guard.armed = false;
    Ok(Launched {
        init_pid,
        pidfd,
        channel,
        apps,
        outputs,
        terminal_app,
        cgroups,
        notify: Vec::new(),
        flavour,
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

fn pipe() -> crate::error::Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx("pipe")
}

/// Compiles app `app`'s seccomp profile, through an on-disk cache keyed by the profile's
/// content.
pub fn compiled_filter(
    app: &str,
    profile: &oci_spec::runtime::LinuxSeccomp,
    cache: Option<&Path>,
) -> Result<SeccompProgram, LaunchError> {
    compiled(profile, cache).map_err(|source| LaunchError::Seccomp {
        app: app.to_string(),
        source,
    })
}

fn compiled(
    profile: &oci_spec::runtime::LinuxSeccomp,
    cache: Option<&Path>,
) -> Result<SeccompProgram, crate::seccomp::SeccompError> {
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
    let program = compile(profile)?;
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
        "vessel {} libseccomp {lib} tree arch {}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}
