//! The container's process, as the sealed binary (argv[0] `vessel-container-init`): it
//! joins its cgroup and namespaces, mounts its root, reports ready, waits for commit (and,
//! after `create`, for `start`), then becomes the container's program. Every failure
//! before commit is reported to the runtime with its step and errno; after commit there
//! is no one to tell but the container's stderr.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::plan::{ContainerPlan, Failure, FdRole, Report, COMMIT, GO};
use super::propagation;
use crate::app::{AppDescription, AppExec};
use crate::crossing::channel::PodEnd;
use crate::mount;
use crate::pid1::rootfs::{MountOp, RootContext};

/// The descriptors sent with the plan, by role.
#[derive(Default)]
struct Fds {
    rootfs: Option<OwnedFd>,
    fifo: Option<OwnedFd>,
    console: Option<OwnedFd>,
    preserved: Vec<OwnedFd>,
    namespaces: Vec<(String, OwnedFd)>,
    cgroup_tasks: Vec<OwnedFd>,
    cgroup_procs: Vec<OwnedFd>,
}

/// Entry point when the binary runs as `vessel-container-init`, its socket to the runtime
/// on fd 3.
pub fn main() -> ! {
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    // SAFETY: the embryo left this descriptor open for us alone.
    let channel = unsafe { PodEnd::from_carried(crate::crossing::sealed::CARRY_FD) };
    let _ = rustix::io::fcntl_setfd(channel.as_fd(), rustix::io::FdFlags::CLOEXEC);
    let failure = match run(&channel) {
        Err(f) => f,
        Ok(never) => match never {},
    };
    send(channel.as_fd(), &Report::Failed(failure));
    std::process::exit(1)
}

fn send(sock: BorrowedFd<'_>, report: &Report) {
    let bytes = serde_json::to_vec(report).expect("serialisable");
    let _ = rustix::net::send(sock, &bytes, rustix::net::SendFlags::empty());
}

/// Waits for one byte from the runtime; None when it went away.
fn wait_for(sock: BorrowedFd<'_>, want: u8) -> Option<()> {
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(sock, &mut byte) {
            Ok(1) if byte[0] == want => return Some(()),
            Err(rustix::io::Errno::INTR) => continue,
            _ => return None,
        }
    }
}

fn run(channel: &PodEnd) -> Result<std::convert::Infallible, Failure> {
    let sock = channel.as_fd();
    let (plan, mut fds) = receive(channel)?;
    if let Some(cpus) = &plan.cpus {
        let _ = crate::crossing::embryo::set_cpus(0, cpus);
    }
    // The cgroup first (v1: a single-threaded process writes itself to tasks), then the
    // namespaces: a new cgroup namespace is rooted at the cgroup joined, and a process
    // joining a container (`exec`) is in its cgroup before anything of it runs.
    let tasks: Vec<i32> = fds.cgroup_tasks.iter().map(|f| f.as_raw_fd()).collect();
    crate::cgroups::join_with_fds(&tasks)
        .map_err(|e| Failure::msg("joining the container's cgroup", e.to_string()))?;
    let procs: Vec<i32> = fds.cgroup_procs.iter().map(|f| f.as_raw_fd()).collect();
    if !procs.is_empty() {
        crate::cgroups::move_with_fds(&procs, b"0")
            .map_err(|e| Failure::msg("joining the container's cgroup", e.to_string()))?;
    }
    fds.cgroup_tasks.clear();
    fds.cgroup_procs.clear();
    // The host's, opened before the container's root is ours (see below).
    let null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Failure::io("/dev/null", e))?;
    join_namespaces(&plan, &mut fds)?;
    let terminal = if plan.exec {
        enter_container(&mut fds)?
    } else {
        make_container(sock, &plan, &mut fds)?
    };
    if terminal.is_some() {
        // The terminal replaces the runtime's stdio: let go of it now, as runc does (a
        // client reading create's output until its end would wait for us).
        for n in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), n) };
        }
    }
    drop(null);
    become_containers_process(sock, &plan, fds, terminal)
}

/// A new container (`create`, `run`): its identity, the runtime's hooks, its root mounted
/// and pivoted into. Returns the terminal's slave when it has one.
fn make_container(
    sock: BorrowedFd<'_>,
    plan: &ContainerPlan,
    fds: &mut Fds,
) -> Result<Option<OwnedFd>, Failure> {
    let spec = &plan.spec;
    set_identity(spec)?;
    if plan.runtime_hooks {
        send(sock, &Report::Hooks);
        wait_for(sock, GO).ok_or_else(|| Failure::msg("hooks", "the runtime went away"))?;
    }
    let userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    let rootfs = fds
        .rootfs
        .take()
        .ok_or_else(|| Failure::msg("rootfs", "the runtime sent no root filesystem"))?;
    let root = mount_root(plan, rootfs.as_fd(), userns)?;
    for hook in spec
        .hooks()
        .iter()
        .flat_map(|h| h.create_container().iter().flatten())
    {
        super::hooks::run("createContainer", hook, &plan.hook_state)
            .map_err(|e| Failure::msg("createContainer hook", e))?;
    }
    let terminal = match fds.console.take() {
        Some(console) => Some(open_terminal(root.as_fd(), console.as_fd())?),
        None => None,
    };
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        mount::set_attrs(
            root.as_fd(),
            rustix::mount::MountAttrFlags::MOUNT_ATTR_RDONLY,
            rustix::mount::MountAttrFlags::empty(),
            false,
        )
        .map_err(|e| Failure::io("making the root read-only", e))?;
    }
    pivot(root.as_fd(), spec)?;
    Ok(terminal)
}

/// A process joining a running container (`exec`): joining its mount namespace put us
/// in its root; the terminal comes from its devpts.
fn enter_container(fds: &mut Fds) -> Result<Option<OwnedFd>, Failure> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Failure::io("the container's root", e))?;
    match fds.console.take() {
        Some(console) => Ok(Some(open_terminal(root.as_fd(), console.as_fd())?)),
        None => Ok(None),
    }
}

/// The common end: checks, ready, commit, (start), then the container's program.
fn become_containers_process(
    sock: BorrowedFd<'_>,
    plan: &ContainerPlan,
    mut fds: Fds,
    terminal: Option<OwnedFd>,
) -> Result<std::convert::Infallible, Failure> {
    let spec = &plan.spec;
    if spec.process().is_none() {
        return Err(Failure::msg("process", "the config has no process"));
    }
    let app = AppExec::prepare(&prepare_process(spec, plan.seccomp_bpf.clone())?)
        .map_err(|e| Failure::from_error("process", e))?;
    // From commit on the container lives on its own, whatever happens to the runtime; a
    // runtime that dies before it commits closes the socket, and we exit.
    let _ = rustix::process::set_parent_process_death_signal(None);
    send(sock, &Report::Ready);
    wait_for(sock, COMMIT).ok_or_else(|| Failure::msg("commit", "the runtime went away"))?;
    // The fifo's read end stays open, close-on-exec, until the exec itself: `start`
    // returns when it closes, so the program runs by then. Moved above the numbers the
    // preserved descriptors take.
    let fifo = fds
        .fifo
        .take()
        .map(|f| rustix::io::fcntl_dupfd_cloexec(&f, 1024).unwrap_or(f));
    if let Some(fifo) = &fifo {
        wait_for_start(fifo.as_fd());
    }
    let fail = |e: crate::error::Error| -> ! {
        eprintln!("vessel-runtime: {e}");
        // SAFETY: leaving without destructors.
        unsafe { libc::_exit(e.start_failure_code()) }
    };
    if !plan.exec {
        for hook in spec
            .hooks()
            .iter()
            .flat_map(|h| h.start_container().iter().flatten())
        {
            if let Err(e) = super::hooks::run("startContainer", hook, &plan.hook_state) {
                fail(crate::error::Error::msg("startContainer hook", e));
            }
        }
    }
    let _ = rustix::process::setsid();
    if let Some(slave) = terminal {
        for n in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(slave.as_raw_fd(), n) };
        }
        if let Err(e) = rustix::process::ioctl_tiocsctty(&slave) {
            fail(crate::error::Error::os(
                "taking the terminal",
                e.raw_os_error(),
            ));
        }
    }
    let preserved = fds.preserved.len() as u32;
    place_preserved(fds.preserved);
    let app = app.preserving(preserved);
    // `exec` learns that the program runs when our end of the socket closes at the exec:
    // kept open until then (close-on-exec, above the preserved descriptors' numbers).
    let held_sock = match plan.exec {
        true => sock
            .try_clone_to_owned()
            .ok()
            .map(|s| rustix::io::fcntl_dupfd_cloexec(&s, 1024).unwrap_or(s)),
        false => None,
    };
    let keep = fifo.as_ref().or(held_sock.as_ref()).map(|f| f.as_raw_fd());
    fail(app.exec(keep))
}

fn receive(channel: &PodEnd) -> Result<(ContainerPlan, Fds), Failure> {
    let mut received = channel
        .receive_descriptors("receiving the plan")
        .map_err(|e| Failure::from_error("receiving the plan", e))?
        .into_iter();
    let (_, plan_fd) = received
        .next()
        .ok_or_else(|| Failure::msg("receiving the plan", "no plan"))?;
    let mut json = Vec::new();
    std::fs::File::from(plan_fd)
        .read_to_end(&mut json)
        .map_err(|e| Failure::io("reading the plan", e))?;
    let plan: ContainerPlan = serde_json::from_slice(&json)
        .map_err(|e| Failure::msg("parsing the plan", e.to_string()))?;
    let mut fds = Fds::default();
    for (role, (_, fd)) in plan.fds.iter().zip(received) {
        match role {
            FdRole::Rootfs => fds.rootfs = Some(fd),
            FdRole::ExecFifo => fds.fifo = Some(fd),
            FdRole::ConsoleSocket => fds.console = Some(fd),
            FdRole::Preserved => fds.preserved.push(fd),
            FdRole::Namespace(t) => fds.namespaces.push((t.clone(), fd)),
            FdRole::CgroupTasks => fds.cgroup_tasks.push(fd),
            FdRole::CgroupProcs => fds.cgroup_procs.push(fd),
        }
    }
    Ok((plan, fds))
}

fn join_namespaces(plan: &ContainerPlan, fds: &mut Fds) -> Result<(), Failure> {
    let setns = |t: &str, fd: &OwnedFd| -> Result<(), Failure> {
        // SAFETY: setns on a namespace descriptor in this single-threaded process.
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
            return Err(Failure::io(
                format!("joining the {t} namespace"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    };
    // The runtime sent them user first, mount last.
    let mut rest = Vec::new();
    for (t, fd) in fds.namespaces.drain(..) {
        if t == "user" {
            setns(&t, &fd)?;
            // SAFETY: raw id calls in this single-threaded process.
            unsafe {
                libc::setresgid(0, 0, 0);
                libc::setresuid(0, 0, 0);
            }
        } else {
            rest.push((t, fd));
        }
    }
    let unshare_now = plan.unshare & !libc::CLONE_NEWTIME;
    if unshare_now != 0 {
        // SAFETY: unshare in this single-threaded process.
        if unsafe { libc::unshare(unshare_now) } != 0 {
            return Err(Failure::io("unshare", std::io::Error::last_os_error()));
        }
    }
    for (t, fd) in &rest {
        setns(t, fd)?;
    }
    if plan.unshare & libc::CLONE_NEWTIME != 0 {
        enter_time_namespace(&plan.spec)?;
    }
    Ok(())
}

/// A time namespace applies to children: make one, set its offsets, and enter it.
fn enter_time_namespace(spec: &Spec) -> Result<(), Failure> {
    // SAFETY: unshare in this single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        return Err(Failure::io(
            "unshare(CLONE_NEWTIME)",
            std::io::Error::last_os_error(),
        ));
    }
    let mut offsets = String::new();
    for (clock, off) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default()
    {
        offsets.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !offsets.is_empty() {
        std::fs::write("/proc/self/timens_offsets", offsets)
            .map_err(|e| Failure::io("time namespace offsets", e))?;
    }
    let fd = rustix::fs::open(
        "/proc/self/ns/time_for_children",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Failure::io("the new time namespace", e))?;
    // SAFETY: setns on a namespace descriptor in this single-threaded process.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWTIME) } != 0 {
        return Err(Failure::io(
            "entering the time namespace",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Hostname, domain name and sysctls: each in the container's own namespace (bundle.rs
/// refused any other).
fn set_identity(spec: &Spec) -> Result<(), Failure> {
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes()).map_err(|e| Failure::io("sethostname", e))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(d.as_bytes()).map_err(|e| Failure::io("setdomainname", e))?;
    }
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
    {
        // /proc/sys resolves net and ipc keys in the writer's namespaces: ours.
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes())
            .map_err(|e| Failure::io(format!("sysctl {key}"), e))?;
    }
    Ok(())
}

/// Makes the root filesystem a mount of its own, mounts what the spec asks inside it, and
/// returns an fd of that mount.
fn mount_root(
    plan: &ContainerPlan,
    rootfs: BorrowedFd<'_>,
    userns: bool,
) -> Result<OwnedFd, Failure> {
    let spec = &plan.spec;
    // Private unless rootfsPropagation asks otherwise (see `propagation`).
    let propagation = propagation::asked(spec)?;
    propagation::prepare(propagation)?;
    let at = mount::open_host(&plan.rootfs_path.to_string_lossy())
        .map_err(|e| Failure::io("the root filesystem's mount point", e))?;
    propagation::isolate_mount_point(propagation, at.as_fd())?;
    let tree: OwnedFd = rootfs
        .try_clone_to_owned()
        .map_err(|e| Failure::io("the root filesystem", e))?;
    mount::attach(&tree, at.as_fd())
        .map_err(|e| Failure::io("attaching the root filesystem", e))?;
    let root = rustix::fs::openat(
        &tree,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Failure::io("opening the root filesystem", e))?;
    let dev_null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Failure::io("/dev/null", e))?;
    let mut warnings = Vec::new();
    // A pod's /etc files are a pod's: a container keeps its image's.
    let mut ops =
        crate::pid1::rootfs::mount_plan(spec).map_err(|e| Failure::from_error("mounts", e))?;
    ops.retain(|op| *op != MountOp::BindPodEtc);
    let cx = RootContext {
        app: &plan.id,
        root: root.as_fd(),
        stage1: root.as_fd(),
        dev_null: dev_null.as_fd(),
        userns,
    };
    crate::pid1::rootfs::apply(&cx, &ops, &mut warnings)
        .map_err(|e| Failure::from_error("mounts", e))?;
    make_devices(root.as_fd(), spec, userns)?;
    for w in warnings {
        eprintln!("vessel-runtime: warning: {w}");
    }
    Ok(root)
}

/// The spec's extra devices (`linux.devices`), made in the container's /dev (bound from
/// the host's in a user namespace, where mknod is not allowed).
fn make_devices(root: BorrowedFd<'_>, spec: &Spec, userns: bool) -> Result<(), Failure> {
    use oci_spec::runtime::LinuxDeviceType;
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        let path = d.path().to_string_lossy().into_owned();
        let step = format!("device {path}");
        let rel = path.trim_start_matches('/');
        let (parent, name) = match rel.rfind('/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => ("", rel),
        };
        let dir = mount::open_target(root, parent, mount::Target::Dir)
            .map_err(|e| Failure::io(&step, e))?;
        if userns {
            let host = mount::open_host(&path).map_err(|e| Failure::io(&step, e))?;
            let target = mount::open_target(root, &path, mount::Target::File)
                .map_err(|e| Failure::io(&step, e))?;
            mount::bind(
                host.as_fd(),
                target.as_fd(),
                false,
                rustix::mount::MountAttrFlags::empty(),
            )
            .map_err(|e| Failure::io(&step, e))?;
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => rustix::fs::FileType::CharacterDevice,
            LinuxDeviceType::B => rustix::fs::FileType::BlockDevice,
            LinuxDeviceType::P => rustix::fs::FileType::Fifo,
            LinuxDeviceType::A => {
                return Err(Failure::msg(
                    &step,
                    "type a is for cgroup rules, not a node",
                ))
            }
        };
        let mode = Mode::from_raw_mode(d.file_mode().unwrap_or(0o666));
        match rustix::fs::mknodat(
            &dir,
            name,
            kind,
            mode,
            rustix::fs::makedev(d.major() as u32, d.minor() as u32),
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(Failure::io(&step, e)),
        }
        let node = rustix::fs::openat2(
            &dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH,
        )
        .map_err(|e| Failure::io(&step, e))?;
        let proc_path = format!("/proc/self/fd/{}", node.as_raw_fd());
        let _ = rustix::fs::chmod(proc_path.as_str(), mode);
        let _ = rustix::fs::chown(
            proc_path.as_str(),
            Some(rustix::fs::Uid::from_raw(d.uid().unwrap_or(0))),
            Some(rustix::fs::Gid::from_raw(d.gid().unwrap_or(0))),
        );
    }
    Ok(())
}

/// A pty in the container's own devpts; the master goes to the client's console socket.
fn open_terminal(root: BorrowedFd<'_>, console: BorrowedFd<'_>) -> Result<OwnedFd, Failure> {
    let pts = rustix::fs::openat2(
        root,
        "dev/pts",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| Failure::io("the terminal: /dev/pts", e))?;
    let (master, slave) =
        crate::terminal::open_pair(pts.as_fd()).map_err(|e| Failure::io("the terminal", e))?;
    super::console::send_master(console, master.as_fd())
        .map_err(|e| Failure::io("sending the terminal to the console socket", e))?;
    Ok(slave)
}

/// Into the root; the host's root is detached and gone from this mount namespace.
fn pivot(root: BorrowedFd<'_>, spec: &Spec) -> Result<(), Failure> {
    let asked = propagation::asked(spec)?;
    let old_root = propagation::old_root(asked)?;
    rustix::process::fchdir(root).map_err(|e| Failure::io("chdir to the root", e))?;
    rustix::process::pivot_root(".", ".").map_err(|e| Failure::io("pivot_root", e))?;
    propagation::before_detaching_host(old_root)?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| Failure::io("detaching the host's root", e))?;
    rustix::process::chdir("/").map_err(|e| Failure::io("chdir /", e))?;
    propagation::finish(asked)
}

/// What can be checked before the runtime reports the container created: the program
/// exists (runc's "executable file not found in $PATH"), the ids, the labels.
fn prepare_process(spec: &Spec, seccomp: Option<Vec<u8>>) -> Result<AppDescription, Failure> {
    let process = spec.process().as_ref().expect("validated by the runtime");
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let user = process.user();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            home_of(user.uid()).unwrap_or_else(|| "/".into())
        ));
    }
    let args = process.args().clone().unwrap_or_default();
    let program = args.first().cloned().unwrap_or_default();
    let found = crate::app::candidates(&program, &env).into_iter().any(|c| {
        rustix::fs::stat(c.as_str())
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
    });
    if !found {
        let message = if program.contains('/') {
            format!("exec: {program:?}: no such file or directory")
        } else {
            format!("exec: {program:?}: executable file not found in $PATH")
        };
        return Err(Failure {
            step: "exec".into(),
            errno: Some(libc::ENOENT),
            message,
        });
    }
    if args.is_empty() {
        return Err(Failure::msg("process.args", "empty"));
    }
    let mut app = AppDescription::from_process(process);
    app.env = env;
    app.seccomp = seccomp;
    app.caps = match process.capabilities() {
        Some(c) => {
            let mut sets = crate::caps::CapSets::from_oci(c)
                .map_err(|e| Failure::msg("process.capabilities", e.to_string()))?;
            // As runc: what this kernel does not know is left out, not an error.
            sets.restrict_to(crate::caps::available_capabilities());
            sets
        }
        None => crate::caps::CapSets::default(),
    };
    if let Some(mask) = user.umask() {
        rustix::process::umask(Mode::from_raw_mode(mask));
    }
    if let Some(p) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        set_label(
            "apparmor",
            "/sys/kernel/security/apparmor",
            "/proc/self/attr/apparmor/exec",
            &format!("exec {p}"),
        )?;
    }
    if let Some(l) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        set_label(
            "selinux",
            "/sys/fs/selinux/enforce",
            "/proc/self/attr/exec",
            l,
        )?;
    }
    super::attributes::apply(process, spec)?;
    Ok(app)
}

/// A security label for the exec, where the host has that module; a clear error where not.
fn set_label(module: &str, present: &str, attr: &str, value: &str) -> Result<(), Failure> {
    if !std::path::Path::new(present).exists() {
        return Err(Failure::msg(
            module,
            format!("the config asks for a {module} label ({value}) but {module} is not enabled on this host"),
        ));
    }
    std::fs::write(attr, value).map_err(|e| Failure::io(format!("{module} label {value}"), e))
}

/// The home directory of `uid` in the container's /etc/passwd.
fn home_of(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 5 && f[2] == uid.to_string()).then(|| f[5].to_string())
    })
}

/// Waits for `start`'s byte on the exec fifo. Its read end closes at our exec, which
/// tells `start` the program runs.
fn wait_for_start(fifo: BorrowedFd<'_>) {
    let mut pfd = [libc::pollfd {
        fd: fifo.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    loop {
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(pfd.as_mut_ptr(), 1, -1) };
        if n > 0 {
            break;
        }
    }
    let mut byte = [0u8; 1];
    let _ = rustix::io::read(fifo, &mut byte);
}

/// `--preserve-fds`: the descriptors become 3, 4, ... in order, open across the exec.
fn place_preserved(fds: Vec<OwnedFd>) {
    // Out of the way first, so no descriptor lands on one not yet moved.
    let high: Vec<i32> = fds
        .into_iter()
        .map(|f| {
            let raw = f.into_raw_fd();
            // SAFETY: fcntl on our descriptor; the copy is above every target number.
            let moved = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 1024) };
            unsafe { libc::close(raw) };
            moved
        })
        .collect();
    for (i, fd) in high.into_iter().enumerate() {
        // SAFETY: dup2 onto 3 + i (clearing close-on-exec), then closing the copy.
        unsafe {
            libc::dup2(fd, 3 + i as i32);
            libc::close(fd);
        }
    }
}
