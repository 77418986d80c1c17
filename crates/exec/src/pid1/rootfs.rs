//! An app's root filesystem, prepared by the pod's first process before it pivots into
//! the stage1 root: the overlay mount, then the spec's mounts (/proc, /dev, /sys, ...),
//! masked and read-only paths, /etc/hostname, /etc/hosts and /etc/resolv.conf. Everything
//! is mounted by file descriptor (see mount.rs).

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, FsMountFlags,
    FsOpenFlags, MountAttrFlags,
};

use crate::mount::{self, Target};
use crate::plan::{AppPlan, PodPlan, RootfsPlan};

fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// overlayfs escapes: ':' separates lower dirs in the legacy option, ',' separates options.
fn escape_overlay_path(p: &str) -> String {
    p.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Mounts the app's overlay and returns a detached mount fd.
pub fn overlay(plan: &RootfsPlan) -> io::Result<OwnedFd> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| ctx(e.into(), "fsopen overlay"))?;
    let lowers: Vec<String> = plan
        .lower
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    // "lowerdir+" (Linux 6.8) takes one layer per call, with no length limit; older
    // kernels get the classic colon-joined list.
    let mut appended = true;
    for l in &lowers {
        if fsconfig_set_string(&fs, "lowerdir+", l.as_str()).is_err() {
            appended = false;
            break;
        }
    }
    if !appended {
        let fs2 = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|e| ctx(e.into(), "fsopen overlay"))?;
        let joined: Vec<String> = lowers.iter().map(|l| escape_overlay_path(l)).collect();
        fsconfig_set_string(&fs2, "lowerdir", joined.join(":").as_str())
            .map_err(|e| ctx(e.into(), "overlay lowerdir"))?;
        return finish_overlay(fs2, plan);
    }
    finish_overlay(fs, plan)
}

fn finish_overlay(fs: OwnedFd, plan: &RootfsPlan) -> io::Result<OwnedFd> {
    fsconfig_set_string(&fs, "upperdir", plan.upper.as_os_str()).map_err(|e| {
        ctx(
            e.into(),
            format!("overlay upperdir {}", plan.upper.display()),
        )
    })?;
    fsconfig_set_string(&fs, "workdir", plan.work.as_os_str())
        .map_err(|e| ctx(e.into(), format!("overlay workdir {}", plan.work.display())))?;
    // A pod's writable layer is scratch: skipping its syncs makes writes and the final
    // unmount cheap. A crash leaves the upper dir unmountable, and nothing remounts it.
    let _ = fsconfig_set_flag(&fs, "volatile");
    fsconfig_create(&fs).map_err(|e| {
        ctx(
            e.into(),
            format!("mounting the overlay (lower {:?})", plan.lower),
        )
    })?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| ctx(e.into(), "fsmount overlay"))
}

/// Prepares one app's root at `root` (an fd of the mounted overlay).
pub fn prepare(
    root: BorrowedFd<'_>,
    app: &AppPlan,
    stage1: BorrowedFd<'_>,
    dev_null: BorrowedFd<'_>,
    warnings: &mut Vec<String>,
    userns: bool,
) -> io::Result<()> {
    let spec = &app.spec;
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy().into_owned();
        let options: Vec<String> = m.options().clone().unwrap_or_default();
        let opts = mount::parse_options(&options);
        let fstype = m.typ().clone().unwrap_or_default();
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned());
        if opts.bind || fstype == "bind" {
            let src = source
                .ok_or_else(|| io::Error::other(format!("bind mount {dest} has no source")))?;
            let src_fd = if opts.markers.iter().any(|m| m == "x-vessel-nosymlinks") {
                // A volume's host source: checked at prepare time, and again here, by fd,
                // so a symlink swapped in meanwhile is refused rather than followed.
                rustix::fs::openat2(
                    rustix::fs::CWD,
                    src.as_str(),
                    OFlags::PATH | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::NO_SYMLINKS,
                )
                .map_err(|e| match e {
                    rustix::io::Errno::LOOP => io::Error::other(format!(
                        "volume source {src} is or passes through a symlink"
                    )),
                    e => ctx(e.into(), format!("volume source {src}")),
                })?
            } else {
                mount::open_host(&src)?
            };
            let is_dir = rustix::fs::fstat(&src_fd)
                .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
                .unwrap_or(true);
            let target =
                mount::open_target(root, &dest, if is_dir { Target::Dir } else { Target::File })?;
            refuse_root_itself(root, target.as_fd(), &dest)?;
            if is_dir && dir_has_entries(target.as_fd()) {
                warnings.push(format!(
                    "app {}: the volume mounted at {dest} hides files the image has there",
                    app.name
                ));
            }
            mount::bind(src_fd.as_fd(), target.as_fd(), opts.recursive, opts.attrs)
                .map_err(|e| ctx(e, format!("bind {src} on {dest}")))?;
            continue;
        }
        let target = mount::open_target(root, &dest, Target::Dir)?;
        refuse_root_itself(root, target.as_fd(), &dest)?;
        match mount::mount_new(&fstype, source.as_deref(), &opts, target.as_fd()) {
            Ok(()) => {}
            // In a user namespace that does not own the host's network or IPC namespace
            // (--net=host, --ipc=parent), sysfs and mqueue cannot be made anew: the host's
            // are bound, read-only.
            Err(e)
                if userns
                    && e.kind() == io::ErrorKind::PermissionDenied
                    && (fstype == "sysfs" || fstype == "mqueue") =>
            {
                let host = match mount::open_host(&dest) {
                    Ok(h) => h,
                    // The host has none to lend (no mqueue mounted): the app goes without.
                    Err(h) if h.kind() == io::ErrorKind::NotFound && fstype == "mqueue" => continue,
                    Err(h) => return Err(h),
                };
                mount::bind(
                    host.as_fd(),
                    target.as_fd(),
                    true,
                    MountAttrFlags::MOUNT_ATTR_RDONLY
                        | MountAttrFlags::MOUNT_ATTR_NOSUID
                        | MountAttrFlags::MOUNT_ATTR_NODEV
                        | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                )
                .map_err(|e| ctx(e, format!("binding the host's {dest}")))?;
            }
            Err(e) => return Err(ctx(e, format!("mounting {fstype} on {dest}"))),
        }
        if dest == "/dev" {
            let dev = rustix::fs::openat2(
                root,
                "dev",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            )
            .map_err(|e| ctx(e.into(), "/dev"))?;
            crate::pid1::dev::populate(dev.as_fd(), userns)?;
        }
    }
    crate::trace::mark("init: spec mounts");
    bind_etc(root, stage1);
    crate::trace::mark("init: etc bound");
    if let Some(linux) = spec.linux() {
        for p in linux.masked_paths().iter().flatten() {
            mask(root, p, dev_null).map_err(|e| ctx(e, format!("masking {p}")))?;
        }
        for p in linux.readonly_paths().iter().flatten() {
            match open_existing(root, p)? {
                Some(fd) => mount::remount_readonly(fd.as_fd())
                    .map_err(|e| ctx(e, format!("making {p} read-only")))?,
                None => continue,
            }
        }
    }
    Ok(())
}

/// Whether a directory (opened O_PATH) holds anything.
fn dir_has_entries(dir: BorrowedFd<'_>) -> bool {
    let Ok(fd) = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let Ok(mut d) = rustix::fs::Dir::read_from(&fd) else {
        return false;
    };
    d.any(|e| {
        e.map(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
            .unwrap_or(false)
    })
}

/// A mount target that resolves to the root itself (an image whose /proc is a symlink to
/// "/", say) would bury the whole root: refuse it.
fn refuse_root_itself(root: BorrowedFd<'_>, target: BorrowedFd<'_>, dest: &str) -> io::Result<()> {
    let (a, b) = (rustix::fs::fstat(root)?, rustix::fs::fstat(target)?);
    if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
        return Err(io::Error::other(format!(
            "mount target {dest} resolves to the root of the image (a symlink?)"
        )));
    }
    Ok(())
}

fn open_existing(root: BorrowedFd<'_>, path: &str) -> io::Result<Option<OwnedFd>> {
    match rustix::fs::openat2(
        root,
        path.trim_start_matches('/'),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(ctx(e.into(), path)),
    }
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(root: BorrowedFd<'_>, path: &str, dev_null: BorrowedFd<'_>) -> io::Result<()> {
    let Some(fd) = open_existing(root, path)? else {
        return Ok(());
    };
    let is_dir = rustix::fs::fstat(&fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())?;
    if is_dir {
        let opts = mount::Options {
            markers: Vec::new(),
            attrs: MountAttrFlags::MOUNT_ATTR_RDONLY,
            params: Vec::new(),
            bind: false,
            recursive: false,
        };
        mount::mount_new("tmpfs", Some("tmpfs"), &opts, fd.as_fd())
    } else {
        mount::bind(dev_null, fd.as_fd(), false, MountAttrFlags::empty())
    }
}

/// Writes a file inside the root, following symlinks only within it.
fn write_in_root(root: BorrowedFd<'_>, path: &str, content: &[u8]) -> io::Result<()> {
    let rel = path.trim_start_matches('/');
    if let Some(i) = rel.rfind('/') {
        mount::open_target(root, &rel[..i], Target::Dir)?;
    }
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| ctx(e.into(), path))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(content).map_err(|e| ctx(e, path))
}

/// Writes the pod's /etc/hostname, /etc/hosts (and /etc/resolv.conf when the pod has
/// one) into the stage1 tmpfs, once for all apps. With CNI networks, hosts and
/// resolv.conf get their final content later, in place (`crossing::network`).
pub fn write_pod_etc(stage1: BorrowedFd<'_>, pod: &PodPlan) -> io::Result<()> {
    let host = pod.hostname.as_str();
    write_in_root(stage1, "/etc/hostname", format!("{host}\n").as_bytes())?;
    let hosts = match &pod.hosts {
        Some(h) => h.clone(),
        None => format!(
            "127.0.0.1\tlocalhost {host}\n::1\tlocalhost ip6-localhost ip6-loopback {host}\n"
        ),
    };
    write_in_root(stage1, "/etc/hosts", hosts.as_bytes())?;
    if let Some(resolv) = &pod.resolv_conf {
        write_in_root(stage1, "/etc/resolv.conf", resolv.as_bytes())?;
    }
    Ok(())
}

/// Binds the pod's /etc files over the app's (as Docker does), so nothing is written
/// into the app's layer. Conveniences only: an image whose /etc/hosts is a dangling
/// symlink just keeps it.
fn bind_etc(root: BorrowedFd<'_>, stage1: BorrowedFd<'_>) {
    for name in crate::supervisor::base::ETC_FILES {
        let Ok(src) = rustix::fs::openat(
            stage1,
            format!("etc/{name}"),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        if let Ok(target) = mount::open_target(root, &format!("/etc/{name}"), Target::File) {
            let _ = mount::bind(src.as_fd(), target.as_fd(), false, MountAttrFlags::empty());
        }
    }
}
