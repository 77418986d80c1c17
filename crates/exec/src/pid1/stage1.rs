//! The pod's mounts, set up by the init itself (see `embryo`) before it becomes pid 1 of
//! the pod: it mounts every app's root under a private tmpfs (the stage1 root), pivots
//! into that tmpfs, and leaves the host's root behind. After this, pid 1's root, cwd and
//! mount namespace hold nothing of the host.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountAttrFlags;

use crate::mount::{self, Target};
use crate::pid1::rootfs;
use crate::plan::{NetMode, PodPlan};

use crate::crossing::channel::PodEnd;
use crate::error::{Context, Error, Result};

/// An app's root inside the stage1 root: `apps/<app>/rootfs` (the app pivots into
/// `/apps/<app>/rootfs` once the init has pivoted into stage1).
pub fn app_root(app: &str) -> String {
    format!("apps/{app}/rootfs")
}

/// Mounts the pod and pivots into its stage1 root. `channel` is the socket to the
/// supervisor (idmapped layers come in on it, a terminal's master and warnings go out).
/// Returns the pty slave of the app with a terminal, if one has (its stdio).
pub fn setup(plan: &PodPlan, channel: &PodEnd) -> Result<Option<OwnedFd>> {
    // In a user namespace the supervisor sends the layers we could not open ourselves.
    let layers = match plan.userns {
        Some(_) => channel.receive_layers()?,
        None => Vec::new(),
    };
    // No cgroup work here: the init moves itself and the apps in one go (see init.rs).
    let _ = rustix::process::setsid();
    // A fly pod shares the host's uts namespace: its hostname is the host's to keep.
    if plan.flavour.own_uts() {
        rustix::system::sethostname(plan.hostname.as_bytes()).ctx("sethostname")?;
    }
    if plan.net == NetMode::None && plan.flavour != crate::plan::Flavour::Fly {
        loopback_up().ctx("bringing up lo")?;
    }
    // Nothing mounted in the pod propagates to the host, nor back.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .ctx("making / private")?;
    crate::trace::mark("init: private");
    let dev_null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .ctx("/dev/null")?;

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
    .ctx(&stage1_path)?;
    crate::trace::mark("init: stage1 tmpfs");
    let mut warnings = Vec::new();
    let mut terminal_slave: Option<OwnedFd> = None;
    rootfs::write_pod_etc(stage1.as_fd(), plan).ctx("the pod's /etc files")?;
    let mut layers = layers.into_iter();
    for (i, app) in plan.apps.iter().enumerate() {
        let target = mount::open_target(stage1.as_fd(), &app_root(&app.name), Target::Dir)?;
        // With a user namespace, the overlay is made of the idmapped clones we were sent,
        // attached in the stage1 tmpfs (the pod's own mount namespace), in plan order.
        let rootfs = if plan.userns.is_some() {
            let mut attach_next = |k: String| -> Result<std::path::PathBuf> {
                let fd = layers.next().ok_or_else(|| {
                    Error::msg("the idmapped layers", "the supervisor sent too few")
                })?;
                let rel = format!(".layers/{i}/{k}");
                let t = mount::open_target(stage1.as_fd(), &rel, Target::Dir)?;
                mount::attach(&fd, t.as_fd())?;
                Ok(plan.stage1_dir.join(rel))
            };
            let lower = (0..app.rootfs.lower.len())
                .map(|k| attach_next(k.to_string()))
                .collect::<Result<Vec<_>>>()?;
            let appdir = attach_next("app".into())?;
            crate::plan::RootfsPlan {
                lower,
                upper: appdir.join("upper"),
                work: appdir.join("work"),
                bind: None,
            }
        } else {
            app.rootfs.clone()
        };
        // In a kvm guest the host composed the root; it comes over the 9p share.
        let overlay = match &rootfs.bind {
            Some(ready) => mount::clone_tree(rustix::fs::CWD, &ready.to_string_lossy(), false)
                .with_ctx(|| format!("app {}: its root from the host", app.name))?,
            None => {
                rootfs::overlay(&rootfs, plan.rootless).with_ctx(|| format!("app {}", app.name))?
            }
        };
        mount::attach(&overlay, target.as_fd())
            .with_ctx(|| format!("app {}: attaching its root", app.name))?;
        let root = rustix::fs::openat(
            &stage1,
            app_root(&app.name),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("app {}: opening its root", app.name))?;
        let ops = rootfs::mount_plan(&app.spec).with_ctx(|| format!("app {}", app.name))?;
        let cx = rootfs::RootContext {
            app: &app.name,
            root: root.as_fd(),
            stage1: stage1.as_fd(),
            dev_null: dev_null.as_fd(),
            userns: plan.userns.is_some() || plan.rootless,
        };
        rootfs::apply(&cx, &ops, &mut warnings).with_ctx(|| format!("app {}", app.name))?;
        if app.terminal {
            terminal_slave = Some(
                open_terminal(root.as_fd(), channel)
                    .with_ctx(|| format!("app {}: its terminal", app.name))?,
            );
        }
        if app
            .spec
            .root()
            .as_ref()
            .is_some_and(|r| r.readonly() == Some(true))
        {
            let root_mnt = mount::open_target(stage1.as_fd(), &app_root(&app.name), Target::Dir)?;
            mount::set_attrs(
                root_mnt.as_fd(),
                MountAttrFlags::MOUNT_ATTR_RDONLY,
                MountAttrFlags::empty(),
                false,
            )
            .with_ctx(|| format!("app {}: read-only root", app.name))?;
        }
    }

    crate::trace::mark("init: apps prepared");
    for w in warnings {
        channel.report(&crate::proto::Event::Warning { message: w }, None);
    }
    // Into the stage1 root; the host's root is detached and gone from this namespace.
    rustix::process::fchdir(&stage1).ctx("chdir to stage1")?;
    rustix::process::pivot_root(".", ".").ctx("pivot_root")?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .ctx("detaching the host's root")?;
    rustix::process::chdir("/").ctx("chdir /")?;
    crate::trace::mark("init: pivoted");

    // Standard streams: nothing of the supervisor's terminal stays with pid 1.
    // (stderr stays while tracing, so the init's phase timings show.)
    let keep_stderr = crate::trace::origin().is_some();
    for std_fd in 0..if keep_stderr { 2 } else { 3 } {
        // SAFETY: dup2 onto the standard descriptors.
        unsafe { libc::dup2(dev_null.as_raw_fd(), std_fd) };
    }
    Ok(terminal_slave)
}

/// Opens the app's pty in its own devpts and hands the master to the supervisor.
fn open_terminal(root: BorrowedFd<'_>, channel: &PodEnd) -> Result<OwnedFd> {
    let pts = rustix::fs::openat2(
        root,
        "dev/pts",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT,
    )
    .ctx("/dev/pts")?;
    let (master, slave) = crate::terminal::open_pair(pts.as_fd()).ctx("a pty")?;
    channel.send_terminal(master.as_fd())?;
    Ok(slave)
}

/// `ip link set lo up`, by ioctl: the only interface of a pod without a network.
fn loopback_up() -> Result<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(Error::last_os("socket"));
        }
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(Error::last_os("SIOCGIFFLAGS"));
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(Error::last_os("SIOCSIFFLAGS"));
        }
    }
    Ok(())
}
