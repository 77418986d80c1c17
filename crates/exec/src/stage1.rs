//! The pod's first process, cloned by the supervisor into new pid, mount, uts, ipc (and
//! network) namespaces. It joins the pod's cgroup, mounts every app's root under a private
//! tmpfs (the stage1 root), pivots into that tmpfs, and then execs the pod init from a
//! read-only, detached bind mount of the vessel binary.
//!
//! Why the exec: pid 1 stays visible to the apps for the pod's whole life. Were it a mere
//! fork of the host's vessel, /proc/1/exe and /proc/1/map_files would lead an app holding
//! every capability to the host's binary (CVE-2019-5736). Executed from a detached mount
//! marked read-only, the binary cannot be written through pid 1 (EROFS, even after every
//! vessel process ends), and the binary is static, so no host library is mapped either.
//! After the pivot, pid 1's root, cwd and mount namespace hold nothing of the host.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;

use crate::mount::{self, Target};
use crate::plan::{NetMode, PodPlan};

/// The argv[0] under which the vessel binary runs as a pod init.
pub const INIT_ARGV0: &str = "vessel-pod-init";

pub struct Stage1Fds {
    /// A memfd holding the plan as JSON.
    pub plan: RawFd,
    /// Write end of the status pipe to the supervisor.
    pub status: RawFd,
    /// Every other fd the init needs (apps' stdio and cgroup.procs).
    pub keep: Vec<RawFd>,
    /// Where the pty master of an app with a terminal goes (to the supervisor).
    pub terminal_sock: Option<RawFd>,
    /// A pidfd of the supervisor itself: readable once it has exited.
    pub supervisor: RawFd,
}

fn ctx(e: impl Into<io::Error>, what: impl std::fmt::Display) -> io::Error {
    let e: io::Error = e.into();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Runs in the cloned child; never returns.
pub fn run(plan: &PodPlan, fds: &Stage1Fds) -> ! {
    let err = setup_and_exec(plan, fds).unwrap_err();
    report_error(fds.status, &format!("starting the pod: {err}"));
    // SAFETY: leaving the child without running the parent's destructors.
    unsafe { libc::_exit(1) }
}

pub fn report_error(status_fd: RawFd, message: &str) {
    report(
        status_fd,
        &crate::proto::Event::Error {
            message: message.to_string(),
        },
    );
}

fn report(status_fd: RawFd, event: &crate::proto::Event) {
    let line = event.to_string();
    // SAFETY: status_fd is the pipe's write end, open in this process.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(status_fd) });
    let _ = f.write_all(line.as_bytes());
}

fn setup_and_exec(plan: &PodPlan, fds: &Stage1Fds) -> io::Result<std::convert::Infallible> {
    // Die with the supervisor: nobody else would reap or report this pod.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| ctx(e, "PR_SET_PDEATHSIG"))?;
    // Had the supervisor died between the clone and that request, nothing would kill us:
    // its pidfd says (getppid cannot, the parent is outside our pid namespace).
    let mut watch = [libc::pollfd {
        fd: fds.supervisor,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: poll on one valid pollfd, without waiting.
    if unsafe { libc::poll(watch.as_mut_ptr(), 1, 0) } != 0 {
        return Err(io::Error::other("the supervisor is gone"));
    }
    // In a user namespace, wait for the supervisor: it writes our id maps, then sends the
    // layers we could not open ourselves.
    let layers = match (plan.userns, fds.terminal_sock) {
        // SAFETY: the socket fd was given to us by the supervisor and stays open.
        (Some(_), Some(sock)) => {
            crate::userns::receive_layers(unsafe { BorrowedFd::borrow_raw(sock) })
                .map_err(|e| ctx(e, "receiving the layers"))?
        }
        _ => Vec::new(),
    };
    if plan.userns.is_some() {
        // We still hold the host's ids, which mean nothing in our namespace: become its
        // root (the host id the map gives it).
        // SAFETY: raw id syscalls in this single-threaded process.
        let ok = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(0, 0, 0) == 0
                && libc::setresuid(0, 0, 0) == 0
        };
        if !ok {
            return Err(ctx(
                io::Error::last_os_error(),
                "becoming root of the user namespace",
            ));
        }
    }
    // No cgroup work here: the init moves itself and the apps in one go (see init.rs).
    let _ = rustix::process::setsid();
    rustix::system::sethostname(plan.hostname.as_bytes()).map_err(|e| ctx(e, "sethostname"))?;
    if plan.net == NetMode::None {
        loopback_up().map_err(|e| ctx(e, "bringing up lo"))?;
    }
    // Nothing mounted in the pod propagates to the host, nor back.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| ctx(e, "making / private"))?;
    crate::trace::mark("C: private");
    let dev_null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ctx(e, "/dev/null"))?;

    // The stage1 root: a small tmpfs holding one mount point per app.
    let stage1_path = plan.stage1_dir.to_string_lossy().into_owned();
    let stage1_target = mount::open_host(&stage1_path)?;
    let tmpfs_opts = mount::parse_options(&[
        "mode=755".into(),
        "size=1m".into(),
        "nosuid".into(),
        "nodev".into(),
    ]);
    mount::mount_new(
        "tmpfs",
        Some("vessel-stage1"),
        &tmpfs_opts,
        stage1_target.as_fd(),
    )?;
    let stage1 = rustix::fs::open(
        &plan.stage1_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(e, &stage1_path))?;
    crate::trace::mark("C: stage1 tmpfs");
    let mut warnings = Vec::new();
    let mut terminal_slave: Option<OwnedFd> = None;
    crate::rootfs::write_pod_etc(stage1.as_fd(), plan)
        .map_err(|e| ctx(e, "the pod's /etc files"))?;
    let mut layers = layers.into_iter();
    for (i, app) in plan.apps.iter().enumerate() {
        let target = mount::open_target(
            stage1.as_fd(),
            &format!("apps/{}/rootfs", app.name),
            Target::Dir,
        )?;
        // With a user namespace, the overlay is made of the idmapped clones we were sent,
        // attached in the stage1 tmpfs (the pod's own mount namespace), in plan order.
        let rootfs = if plan.userns.is_some() {
            let mut attach_next = |k: String| -> io::Result<std::path::PathBuf> {
                let fd = layers
                    .next()
                    .ok_or_else(|| io::Error::other("the supervisor sent too few layers"))?;
                let rel = format!(".layers/{i}/{k}");
                let t = mount::open_target(stage1.as_fd(), &rel, Target::Dir)?;
                mount::attach(&fd, t.as_fd())?;
                Ok(plan.stage1_dir.join(rel))
            };
            let lower = (0..app.rootfs.lower.len())
                .map(|k| attach_next(k.to_string()))
                .collect::<io::Result<Vec<_>>>()?;
            let appdir = attach_next("app".into())?;
            crate::plan::RootfsPlan {
                lower,
                upper: appdir.join("upper"),
                work: appdir.join("work"),
            }
        } else {
            app.rootfs.clone()
        };
        let overlay =
            crate::rootfs::overlay(&rootfs).map_err(|e| ctx(e, format!("app {}", app.name)))?;
        mount::attach(&overlay, target.as_fd())
            .map_err(|e| ctx(e, format!("app {}: attaching its root", app.name)))?;
        let root = rustix::fs::openat(
            &stage1,
            format!("apps/{}/rootfs", app.name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ctx(e, format!("app {}: opening its root", app.name)))?;
        crate::rootfs::prepare(
            root.as_fd(),
            app,
            stage1.as_fd(),
            dev_null.as_fd(),
            &mut warnings,
            plan.userns.is_some(),
        )
        .map_err(|e| ctx(e, format!("app {}", app.name)))?;
        if app.terminal {
            terminal_slave = Some(
                open_terminal(root.as_fd(), fds)
                    .map_err(|e| ctx(e, format!("app {}: its terminal", app.name)))?,
            );
        }
        if app
            .spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly() == Some(true))
        {
            let root_mnt = mount::open_target(
                stage1.as_fd(),
                &format!("apps/{}/rootfs", app.name),
                Target::Dir,
            )?;
            mount::set_attrs(
                root_mnt.as_fd(),
                MountAttrFlags::MOUNT_ATTR_RDONLY,
                MountAttrFlags::empty(),
                false,
            )
            .map_err(|e| ctx(e, format!("app {}: read-only root", app.name)))?;
        }
    }

    crate::trace::mark("C: apps prepared");
    for w in warnings {
        report(fds.status, &crate::proto::Event::Warning { message: w });
    }
    // The binary, as a detached read-only mount, taken before the host's root goes away.
    let exe = mount::read_only_self()?;

    // Into the stage1 root; the host's root is detached and gone from this namespace.
    rustix::process::fchdir(&stage1).map_err(|e| ctx(e, "chdir to stage1"))?;
    rustix::process::pivot_root(".", ".").map_err(|e| ctx(e, "pivot_root"))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| ctx(e, "detaching the host's root"))?;
    rustix::process::chdir("/").map_err(|e| ctx(e, "chdir /"))?;
    crate::trace::mark("C: pivoted");

    // Standard streams: nothing of the supervisor's terminal reaches pid 1.
    // (stderr stays while tracing, so the init's phase timings show.)
    let keep_stderr = crate::trace::origin().is_some();
    for std_fd in 0..if keep_stderr { 2 } else { 3 } {
        // SAFETY: dup2 onto the standard descriptors.
        unsafe { libc::dup2(dev_null.as_raw_fd(), std_fd) };
    }
    // Every other fd closes at exec but the ones the init needs.
    // SAFETY: close_range with the CLOEXEC flag only marks descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    // An app with a terminal gets the pty slave as its stdio: the plan says so to the
    // init, in a copy of the plan of our own.
    let mut plan_fd = fds.plan;
    let _rewritten = match &terminal_slave {
        Some(slave) => {
            let mut p = plan.clone();
            for a in p.apps.iter_mut().filter(|a| a.terminal) {
                a.stdio = [slave.as_raw_fd(); 3];
            }
            let memfd =
                rustix::fs::memfd_create("vessel-pod-plan", rustix::fs::MemfdFlags::CLOEXEC)
                    .map_err(|e| ctx(e, "memfd"))?;
            let mut f = std::fs::File::from(memfd);
            std::io::Write::write_all(&mut f, &serde_json::to_vec(&p).expect("serialisable"))
                .map_err(|e| ctx(e, "writing the plan"))?;
            std::io::Seek::rewind(&mut f).map_err(|e| ctx(e, "writing the plan"))?;
            plan_fd = f.as_raw_fd();
            Some(f)
        }
        None => None,
    };
    let slave_fd = terminal_slave.as_ref().map(|s| s.as_raw_fd());
    for fd in fds
        .keep
        .iter()
        .chain([&plan_fd, &fds.status])
        .chain(slave_fd.as_ref())
    {
        // SAFETY: clearing FD_CLOEXEC on our own descriptors.
        unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) };
    }
    let argv0 = CString::new(INIT_ARGV0).expect("no NUL");
    let plan_arg = CString::new(plan_fd.to_string()).expect("digits");
    let status_arg = CString::new(fds.status.to_string()).expect("digits");
    let argv = [
        argv0.as_ptr(),
        plan_arg.as_ptr(),
        status_arg.as_ptr(),
        std::ptr::null(),
    ];
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
    Err(ctx(io::Error::last_os_error(), "executing the pod init"))
}

/// Opens the app's pty in its own devpts and hands the master to the supervisor.
fn open_terminal(root: BorrowedFd<'_>, fds: &Stage1Fds) -> io::Result<OwnedFd> {
    let pts = rustix::fs::openat2(
        root,
        "dev/pts",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT,
    )?;
    let (master, slave) = crate::terminal::open_pair(pts.as_fd())?;
    let sock = fds
        .terminal_sock
        .ok_or_else(|| io::Error::other("no socket for the terminal"))?;
    // SAFETY: the socket fd was given to us by the supervisor and stays open.
    crate::terminal::send_fd(unsafe { BorrowedFd::borrow_raw(sock) }, master.as_fd())?;
    Ok(slave)
}

/// `ip link set lo up`, by ioctl: the only interface of a pod without a network.
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
