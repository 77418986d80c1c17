//! An app's root filesystem, prepared by the pod's first process before it pivots into
//! the stage1 root: the overlay mount, then the spec's mounts (/proc, /dev, /sys, ...),
//! masked and read-only paths, /etc/hostname, /etc/hosts and /etc/resolv.conf. Everything
//! is mounted by file descriptor (see mount.rs).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, FsMountFlags,
    FsOpenFlags, MountAttrFlags,
};

use crate::error::{Context, Error, Result};
use crate::mount::{self, Target};
use crate::plan::{PodPlan, RootfsPlan};

/// overlayfs escapes: ':' separates lower dirs in the legacy option, ',' separates options.
fn escape_overlay_path(p: &str) -> String {
    p.replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

/// Mounts the app's overlay and returns a detached mount fd. `userxattr`: the layers
/// mark opaque directories with `user.overlay.*` (written rootless, store::userns).
pub fn overlay(plan: &RootfsPlan, userxattr: bool) -> Result<OwnedFd> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ctx("fsopen overlay")?;
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
        let fs2 = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ctx("fsopen overlay")?;
        let joined: Vec<String> = lowers.iter().map(|l| escape_overlay_path(l)).collect();
        fsconfig_set_string(&fs2, "lowerdir", joined.join(":").as_str()).ctx("overlay lowerdir")?;
        return finish_overlay(fs2, plan, userxattr);
    }
    finish_overlay(fs, plan, userxattr)
}

fn finish_overlay(fs: OwnedFd, plan: &RootfsPlan, userxattr: bool) -> Result<OwnedFd> {
    if userxattr {
        fsconfig_set_flag(&fs, "userxattr").ctx("overlay userxattr")?;
    }
    fsconfig_set_string(&fs, "upperdir", plan.upper.as_os_str())
        .with_ctx(|| format!("overlay upperdir {}", plan.upper.display()))?;
    fsconfig_set_string(&fs, "workdir", plan.work.as_os_str())
        .with_ctx(|| format!("overlay workdir {}", plan.work.display()))?;
    // A pod's writable layer is scratch: skipping its syncs makes writes and the final
    // unmount cheap. A crash leaves the upper dir unmountable, and nothing remounts it.
    let _ = fsconfig_set_flag(&fs, "volatile");
    fsconfig_create(&fs).with_ctx(|| format!("mounting the overlay (lower {:?})", plan.lower))?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).ctx("fsmount overlay")
}

/// One step of preparing an app's root: computed from its spec before anything is
/// mounted ([`mount_plan`], pure), then applied in order by [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// A bind mount of a host path (or of the pod's directory) onto `target` in the root.
    Bind {
        source: String,
        target: String,
        recursive: bool,
        attrs: MountAttrFlags,
        /// A volume's host source: opened refusing symlinks on the way, so one swapped in
        /// since the pod was prepared is refused rather than followed.
        no_symlinks: bool,
        /// The spec's propagation for this mount (none: it stays as the namespace's).
        propagation: Option<mount::Propagation>,
    },
    /// A new filesystem instance (proc, tmpfs, devpts, sysfs, mqueue...).
    New {
        fstype: String,
        source: Option<String>,
        target: String,
        options: mount::Options,
    },
    /// The standard devices in the /dev just mounted.
    PopulateDev,
    /// The pod's /etc/hostname, /etc/hosts and /etc/resolv.conf over the image's.
    BindPodEtc,
    /// Hidden: /dev/null over a file, an empty read-only tmpfs over a directory.
    Mask(String),
    /// Made read-only in place.
    ReadOnly(String),
}

/// The steps that prepare an app's root, in order: the spec's mounts (a /dev gets its
/// devices), the pod's /etc files, then masked and read-only paths.
pub fn mount_plan(spec: &oci_spec::runtime::Spec) -> Result<Vec<MountOp>> {
    let mut ops = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let target = m.destination().to_string_lossy().into_owned();
        let options = mount::parse_options(m.options().as_deref().unwrap_or_default());
        let fstype = m.typ().clone().unwrap_or_default();
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned());
        if options.bind || fstype == "bind" {
            let source =
                source.ok_or_else(|| Error::msg(format!("bind mount {target}"), "no source"))?;
            ops.push(MountOp::Bind {
                source,
                no_symlinks: options.markers.iter().any(|m| m == mount::NO_SYMLINKS),
                target,
                recursive: options.recursive,
                attrs: options.attrs,
                propagation: options.propagation,
            });
            continue;
        }
        let dev = target == "/dev";
        ops.push(MountOp::New {
            fstype,
            source,
            target,
            options,
        });
        if dev {
            ops.push(MountOp::PopulateDev);
        }
    }
    ops.push(MountOp::BindPodEtc);
    if let Some(linux) = spec.linux() {
        ops.extend(
            linux
                .masked_paths()
                .iter()
                .flatten()
                .cloned()
                .map(MountOp::Mask),
        );
        ops.extend(
            linux
                .readonly_paths()
                .iter()
                .flatten()
                .cloned()
                .map(MountOp::ReadOnly),
        );
    }
    Ok(ops)
}

/// What [`apply`] works in and on.
pub struct RootContext<'a> {
    /// The app's name, for warnings.
    pub app: &'a str,
    /// The mounted overlay: the app's root.
    pub root: BorrowedFd<'a>,
    /// The stage1 root, holding the pod's /etc files.
    pub stage1: BorrowedFd<'a>,
    pub dev_null: BorrowedFd<'a>,
    /// The pod has a user namespace (no mknod; sysfs and mqueue may have to be borrowed).
    pub userns: bool,
}

/// Applies the steps of [`mount_plan`] to an app's root; what the user should know but
/// that does not stop the pod goes to `warnings`.
pub fn apply(cx: &RootContext<'_>, ops: &[MountOp], warnings: &mut Vec<String>) -> Result<()> {
    let root = cx.root;
    for op in ops {
        match op {
            MountOp::Bind {
                source,
                target,
                recursive,
                attrs,
                no_symlinks,
                propagation,
            } => {
                let src_fd = if *no_symlinks {
                    rustix::fs::openat2(
                        rustix::fs::CWD,
                        source.as_str(),
                        OFlags::PATH | OFlags::CLOEXEC,
                        Mode::empty(),
                        ResolveFlags::NO_SYMLINKS,
                    )
                    .map_err(|e| match e {
                        rustix::io::Errno::LOOP => Error::new(format!(
                            "volume source {source} is or passes through a symlink"
                        )),
                        e => Error::os(format!("volume source {source}"), e.raw_os_error()),
                    })?
                } else {
                    mount::open_host(source)?
                };
                let is_dir = rustix::fs::fstat(&src_fd)
                    .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
                    .unwrap_or(true);
                let kind = if is_dir { Target::Dir } else { Target::File };
                let t = mount::open_target(root, target, kind)?;
                refuse_root_itself(root, t.as_fd(), target)?;
                if is_dir && dir_has_entries(t.as_fd()) {
                    warnings.push(format!(
                        "app {}: the volume mounted at {target} hides files the image has there",
                        cx.app
                    ));
                }
                mount::bind_with(src_fd.as_fd(), t.as_fd(), *recursive, *attrs, *propagation)
                    .with_ctx(|| format!("bind {source} on {target}"))?;
            }
            MountOp::New {
                fstype,
                source,
                target,
                options,
            } => {
                let t = mount::open_target(root, target, Target::Dir)?;
                refuse_root_itself(root, t.as_fd(), target)?;
                match mount::mount_new(fstype, source.as_deref(), options, t.as_fd()) {
                    Ok(()) => {}
                    // A user namespace that does not map the spec's tty group (rootless
                    // with a single id): devpts gives its ptys the caller's group instead.
                    Err(e)
                        if cx.userns
                            && fstype == "devpts"
                            && e.errno() == Some(libc::EINVAL)
                            && options.params.iter().any(|(k, _)| k == "gid") =>
                    {
                        let mut without_gid = options.clone();
                        without_gid.params.retain(|(k, _)| k != "gid");
                        mount::mount_new(fstype, source.as_deref(), &without_gid, t.as_fd())
                            .map_err(|e| e.wrap(format!("mounting {fstype} on {target}")))?;
                    }
                    // In a user namespace that does not own the host's network or IPC
                    // namespace (--net=host, --ipc=parent), sysfs and mqueue cannot be made
                    // anew: the host's are bound, read-only.
                    Err(e)
                        if cx.userns
                            && e.errno() == Some(libc::EPERM)
                            && (fstype == "sysfs" || fstype == "mqueue") =>
                    {
                        let host = match mount::open_host(target) {
                            Ok(h) => h,
                            // The host has none to lend (no mqueue mounted): none for the app.
                            Err(h) if h.errno() == Some(libc::ENOENT) && fstype == "mqueue" => {
                                continue
                            }
                            Err(h) => return Err(h),
                        };
                        mount::bind(
                            host.as_fd(),
                            t.as_fd(),
                            true,
                            MountAttrFlags::MOUNT_ATTR_RDONLY
                                | MountAttrFlags::MOUNT_ATTR_NOSUID
                                | MountAttrFlags::MOUNT_ATTR_NODEV
                                | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                        )
                        .with_ctx(|| format!("binding the host's {target}"))?;
                    }
                    Err(e) => return Err(e.wrap(format!("mounting {fstype} on {target}"))),
                }
            }
            MountOp::PopulateDev => {
                let dev = rustix::fs::openat2(
                    root,
                    "dev",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT,
                )
                .ctx("/dev")?;
                crate::pid1::dev::populate(dev.as_fd(), cx.userns)?;
                crate::trace::mark("init: spec mounts");
            }
            MountOp::BindPodEtc => {
                bind_etc(root, cx.stage1);
                crate::trace::mark("init: etc bound");
            }
            MountOp::Mask(p) => {
                mask(root, p, cx.dev_null).with_ctx(|| format!("masking {p}"))?;
            }
            MountOp::ReadOnly(p) => {
                if let Some(fd) = open_existing(root, p)? {
                    mount::remount_readonly(fd.as_fd())
                        .with_ctx(|| format!("making {p} read-only"))?;
                }
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
fn refuse_root_itself(root: BorrowedFd<'_>, target: BorrowedFd<'_>, dest: &str) -> Result<()> {
    let a = rustix::fs::fstat(root).ctx("the app's root")?;
    let b = rustix::fs::fstat(target).with_ctx(|| format!("mount target {dest}"))?;
    if a.st_dev == b.st_dev && a.st_ino == b.st_ino {
        return Err(Error::new(format!(
            "mount target {dest} resolves to the root of the image (a symlink?)"
        )));
    }
    Ok(())
}

fn open_existing(root: BorrowedFd<'_>, path: &str) -> Result<Option<OwnedFd>> {
    match rustix::fs::openat2(
        root,
        path.trim_start_matches('/'),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e).ctx(path),
    }
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(root: BorrowedFd<'_>, path: &str, dev_null: BorrowedFd<'_>) -> Result<()> {
    let Some(fd) = open_existing(root, path)? else {
        return Ok(());
    };
    let is_dir = rustix::fs::fstat(&fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        .ctx(path)?;
    if is_dir {
        let opts = mount::Options {
            markers: Vec::new(),
            attrs: MountAttrFlags::MOUNT_ATTR_RDONLY,
            params: Vec::new(),
            bind: false,
            recursive: false,
            propagation: None,
        };
        mount::mount_new("tmpfs", Some("tmpfs"), &opts, fd.as_fd())
    } else {
        mount::bind(dev_null, fd.as_fd(), false, MountAttrFlags::empty())
    }
}

/// Writes a file inside the root, following symlinks only within it.
fn write_in_root(root: BorrowedFd<'_>, path: &str, content: &[u8]) -> Result<()> {
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
    .ctx(path)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(content).ctx(path)
}

/// Writes the pod's /etc/hostname, /etc/hosts (and /etc/resolv.conf when the pod has
/// one) into the stage1 tmpfs, once for all apps. With CNI networks, hosts and
/// resolv.conf get their final content later, in place (`crossing::network`).
pub fn write_pod_etc(stage1: BorrowedFd<'_>, pod: &PodPlan) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, MountBuilder, SpecBuilder};

    fn mount(
        dest: &str,
        typ: &str,
        source: Option<&str>,
        options: &[&str],
    ) -> oci_spec::runtime::Mount {
        let mut m = MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>());
        if let Some(s) = source {
            m = m.source(s);
        }
        m.build().unwrap()
    }

    fn spec(mounts: Vec<oci_spec::runtime::Mount>) -> oci_spec::runtime::Spec {
        SpecBuilder::default()
            .mounts(mounts)
            .linux(
                LinuxBuilder::default()
                    .masked_paths(vec!["/proc/kcore".to_string()])
                    .readonly_paths(vec!["/proc/sys".to_string()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn the_plan_mounts_then_binds_etc_then_masks() {
        let s = spec(vec![
            mount("/proc", "proc", Some("proc"), &["nosuid"]),
            mount("/dev", "tmpfs", Some("tmpfs"), &["mode=755"]),
            mount(
                "/data",
                "bind",
                Some("/srv/data"),
                &["rbind", "ro", mount::NO_SYMLINKS],
            ),
            mount("/cache", "none", Some("volumes/cache"), &["bind"]),
        ]);
        let ops = mount_plan(&s).unwrap();
        let kinds: Vec<String> = ops
            .iter()
            .map(|op| match op {
                MountOp::Bind { target, .. } => format!("bind {target}"),
                MountOp::New { fstype, target, .. } => format!("{fstype} {target}"),
                MountOp::PopulateDev => "devices".into(),
                MountOp::BindPodEtc => "etc".into(),
                MountOp::Mask(p) => format!("mask {p}"),
                MountOp::ReadOnly(p) => format!("ro {p}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "proc /proc",
                "tmpfs /dev",
                "devices",
                "bind /data",
                "bind /cache",
                "etc",
                "mask /proc/kcore",
                "ro /proc/sys"
            ]
        );
        // A volume's host source is opened refusing symlinks; a pod's own is not marked.
        let binds: Vec<(bool, bool, bool)> = ops
            .iter()
            .filter_map(|op| match op {
                MountOp::Bind {
                    recursive,
                    attrs,
                    no_symlinks,
                    ..
                } => Some((
                    *recursive,
                    attrs.contains(MountAttrFlags::MOUNT_ATTR_RDONLY),
                    *no_symlinks,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(binds, [(true, true, true), (false, false, false)]);
        let MountOp::New { options, .. } = &ops[0] else {
            panic!("proc first")
        };
        assert!(options.attrs.contains(MountAttrFlags::MOUNT_ATTR_NOSUID));
    }

    #[test]
    fn a_bind_mount_without_a_source_is_refused_naming_it() {
        let e = mount_plan(&spec(vec![mount("/x", "bind", None, &["bind"])])).unwrap_err();
        assert_eq!(e.to_string(), "bind mount /x: no source");
    }
}
