//! Mounting by file descriptor. Every target inside an app's root is opened with
//! openat2(RESOLVE_IN_ROOT) and the mount is attached to that open file with the new mount
//! API (fsopen/fsmount/open_tree/move_mount), so no path is looked up twice: a target
//! swapped for a symlink between the check and the mount cannot redirect it outside the
//! root (CVE-2021-30465).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags,
};

use crate::error::{Context, Error, Result};

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// What a missing mount target should be created as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Dir,
    File,
}

/// Opens `path` inside `root` as an O_PATH fd, creating it (and missing parents, as
/// directories 0755) if absent. Symlinks on the way resolve inside the root.
pub fn open_target(root: BorrowedFd<'_>, path: &str, kind: Target) -> Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return rustix::fs::openat(root, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .ctx("/");
    }
    match rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    ) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e).ctx(path),
    }
    let (parent, name) = match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    };
    let pfd = if parent.is_empty() {
        rustix::fs::openat(
            root,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx("")
    } else {
        open_target(root, parent, Target::Dir).and_then(|_| {
            rustix::fs::openat2(
                root,
                parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                IN_ROOT,
            )
            .ctx("")
        })
    }
    .with_ctx(|| format!("parent of {path}"))?;
    if let Ok(target) = rustix::fs::readlinkat(&pfd, name, Vec::new()) {
        // A dangling symlink: following it would mean creating directories wherever it
        // points (inside the root, but still a surprise); refuse and say why.
        return Err(Error::new(format!(
            "{path} is a symlink to {:?}, which does not exist in the image",
            target.to_string_lossy()
        )));
    }
    match kind {
        Target::Dir => match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("creating {path}")),
        },
        Target::File => {
            match rustix::fs::openat(
                &pfd,
                name,
                OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(_) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e).with_ctx(|| format!("creating {path}")),
            }
        }
    }
    rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        IN_ROOT,
    )
    .ctx(path)
}

/// The mount option that marks a volume's host source: opened refusing symlinks on the
/// way (checked when the pod is prepared, and again by fd when it is mounted).
pub const NO_SYMLINKS: &str = "x-vessel-nosymlinks";

/// Splits OCI mount options into mount attributes, filesystem parameters, and whether it
/// is a (recursive) bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `x-vessel-*` options: instructions to the executor.
    pub markers: Vec<String>,
    pub attrs: MountAttrFlags,
    pub params: Vec<(String, Option<String>)>,
    pub bind: bool,
    pub recursive: bool,
    /// `private`, `rslave`, `shared`... (the last one given wins, as with mount(8)).
    pub propagation: Option<Propagation>,
}

/// A mount's propagation type, for the mount alone or its whole subtree (`r` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    /// One of MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE.
    kind: u64,
    pub recursive: bool,
}

impl Propagation {
    /// `private`, `rprivate`, `slave`, `rslave`, `shared`, `rshared`, `unbindable`,
    /// `runbindable`; anything else is not a propagation option.
    pub fn parse(option: &str) -> Option<Self> {
        let (recursive, name) = match option.strip_prefix('r') {
            Some(rest) => (true, rest),
            None => (false, option),
        };
        let kind = match name {
            "private" => libc::MS_PRIVATE,
            "slave" => libc::MS_SLAVE,
            "shared" => libc::MS_SHARED,
            "unbindable" => libc::MS_UNBINDABLE,
            _ => return None,
        };
        Some(Propagation { kind, recursive })
    }

    pub fn is_private(self) -> bool {
        self.kind == libc::MS_PRIVATE
    }

    /// As mount(2)'s flags (for a path: `mount_change`).
    pub fn flags(self) -> MountPropagationFlags {
        let kind = match self.kind {
            libc::MS_SLAVE => MountPropagationFlags::DOWNSTREAM,
            libc::MS_SHARED => MountPropagationFlags::SHARED,
            libc::MS_UNBINDABLE => MountPropagationFlags::UNBINDABLE,
            _ => MountPropagationFlags::PRIVATE,
        };
        if self.recursive {
            kind | MountPropagationFlags::REC
        } else {
            kind
        }
    }
}

pub fn parse_options(options: &[String]) -> Options {
    let mut o = Options {
        markers: Vec::new(),
        attrs: MountAttrFlags::empty(),
        params: Vec::new(),
        bind: false,
        recursive: false,
        propagation: None,
    };
    for opt in options {
        match opt.as_str() {
            "ro" => o.attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY,
            "rw" => o.attrs.remove(MountAttrFlags::MOUNT_ATTR_RDONLY),
            "nosuid" => o.attrs |= MountAttrFlags::MOUNT_ATTR_NOSUID,
            "nodev" => o.attrs |= MountAttrFlags::MOUNT_ATTR_NODEV,
            "noexec" => o.attrs |= MountAttrFlags::MOUNT_ATTR_NOEXEC,
            "noatime" => o.attrs |= MountAttrFlags::MOUNT_ATTR_NOATIME,
            "strictatime" => o.attrs |= MountAttrFlags::MOUNT_ATTR_STRICTATIME,
            "relatime" => o.attrs |= MountAttrFlags::MOUNT_ATTR_RELATIME,
            "nodiratime" => o.attrs |= MountAttrFlags::MOUNT_ATTR_NODIRATIME,
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true;
            }
            p if Propagation::parse(p).is_some() => o.propagation = Propagation::parse(p),
            // Defaults.
            "suid" | "dev" | "exec" | "async" | "defaults" => {}
            // Vessel's own markers, for the executor, not the filesystem.
            x if x.starts_with("x-vessel-") => o.markers.push(x.to_string()),
            other => match other.split_once('=') {
                Some((k, v)) => o.params.push((k.to_string(), Some(v.to_string()))),
                None => o.params.push((other.to_string(), None)),
            },
        }
    }
    o
}

/// Creates a new filesystem instance and attaches it at `target` (an fd from open_target).
pub fn mount_new(
    fstype: &str,
    source: Option<&str>,
    opts: &Options,
    target: BorrowedFd<'_>,
) -> Result<()> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).with_ctx(|| format!("fsopen {fstype}"))?;
    if let Some(src) = source {
        // Some filesystems (proc, sysfs) reject a "source" they have no use for.
        let _ = fsconfig_set_string(&fs, "source", src);
    }
    for (k, v) in &opts.params {
        let r = match v {
            Some(v) => fsconfig_set_string(&fs, k.as_str(), v.as_str()),
            None => fsconfig_set_flag(&fs, k.as_str()),
        };
        r.with_ctx(|| format!("{fstype} option {k}"))?;
    }
    fsconfig_create(&fs).with_ctx(|| format!("creating {fstype}"))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, opts.attrs)
        .with_ctx(|| format!("fsmount {fstype}"))?;
    attach(&mnt, target)?;
    match opts.propagation {
        Some(p) => set_propagation(mnt.as_fd(), p),
        None => Ok(()),
    }
}

/// Attaches a detached mount (from fsmount or open_tree) onto `target`.
pub fn attach(mnt: &OwnedFd, target: BorrowedFd<'_>) -> Result<()> {
    move_mount(
        mnt,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .ctx("move_mount")
}

/// A detached copy of the mount at `source` (an fd or a path relative to `dirfd`).
pub fn clone_tree(dirfd: BorrowedFd<'_>, path: &str, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if path.is_empty() {
        flags |= OpenTreeFlags::AT_EMPTY_PATH;
    }
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    open_tree(dirfd, path, flags).with_ctx(|| format!("open_tree {path}"))
}

/// This very binary as a detached, read-only, nosuid mount of its own, to exec into a pod
/// from: a process there that opens our /proc/PID/exe gets a file it can never write,
/// whatever it does later (runc's CVE-2019-5736). Call while the binary's path still
/// resolves in our mount namespace.
pub fn read_only_self() -> Result<OwnedFd> {
    // By path: /proc/self/exe refers to a mount of another namespace, which open_tree
    // cannot clone from a new one.
    let path = std::fs::read_link("/proc/self/exe").ctx("/proc/self/exe")?;
    let exe = clone_tree(rustix::fs::CWD, &path.to_string_lossy(), false)?;
    set_attrs(
        exe.as_fd(),
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV,
        MountAttrFlags::empty(),
        false,
    )?;
    Ok(exe)
}

/// struct mount_attr of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn mount_setattr(mnt: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a valid fd, an empty C string, and a properly sized struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(Error::last_os("mount_setattr"));
    }
    Ok(())
}

/// Sets (and clears) attributes of a mount, recursively if asked: mount_setattr(2).
pub fn set_attrs(
    mnt: BorrowedFd<'_>,
    set: MountAttrFlags,
    clear: MountAttrFlags,
    recursive: bool,
) -> Result<()> {
    let attr = MountAttr {
        attr_set: set.bits() as u64,
        attr_clr: clear.bits() as u64,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(mnt, &attr, recursive)
}

/// Sets the propagation of an attached mount (an fd of its root): mount_setattr(2), so
/// the mount is changed by fd, never by a path looked up again.
pub fn set_propagation(mnt: BorrowedFd<'_>, p: Propagation) -> Result<()> {
    let attr = MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: p.kind,
        userns_fd: 0,
    };
    mount_setattr(mnt, &attr, p.recursive).ctx("setting mount propagation")
}

/// Gives a detached mount the idmapping of a user namespace: files owned by host id 0 show
/// as owned by that namespace's root (mount_setattr(MOUNT_ATTR_IDMAP)).
pub fn set_idmap(mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> Result<()> {
    let attr = MountAttr {
        attr_set: MountAttrFlags::MOUNT_ATTR_IDMAP.bits() as u64,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(mnt, &attr, true).ctx("MOUNT_ATTR_IDMAP")
}

/// Bind-mounts `source` (an open fd or O_PATH fd of a file or directory outside or inside
/// the root) onto `target`, read-only if asked.
pub fn bind(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    attrs: MountAttrFlags,
) -> Result<()> {
    bind_with(source, target, recursive, attrs, None)
}

/// [`bind`], then the propagation asked for (the spec's `rslave`, `rshared`...) set on
/// the attached mount.
pub fn bind_with(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    attrs: MountAttrFlags,
    propagation: Option<Propagation>,
) -> Result<()> {
    let tree = clone_tree(source, "", recursive)?;
    if !attrs.is_empty() {
        set_attrs(tree.as_fd(), attrs, MountAttrFlags::empty(), recursive)?;
    }
    attach(&tree, target)?;
    match propagation {
        Some(p) => set_propagation(tree.as_fd(), p),
        None => Ok(()),
    }
}

/// Makes the mount at `target` read-only in place (a read-only bind of itself).
pub fn remount_readonly(target: BorrowedFd<'_>) -> Result<()> {
    bind(
        target,
        target,
        true,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
}

/// Opens a host path (not inside any root) as an O_PATH fd.
pub fn open_host(path: &str) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ctx(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split() {
        let o = parse_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "newinstance".into(),
            "rprivate".into(),
        ]);
        assert!(o
            .attrs
            .contains(MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NOSUID));
        assert_eq!(
            o.params,
            vec![
                ("mode".into(), Some("755".into())),
                ("size".into(), Some("65536k".into())),
                ("newinstance".into(), None)
            ]
        );
        assert!(!o.bind);
        assert_eq!(o.propagation, Propagation::parse("rprivate"));
        assert!(parse_options(&["rbind".into()]).recursive);
        let last = parse_options(&["rshared".into(), "slave".into()])
            .propagation
            .unwrap();
        assert_eq!(last.flags(), MountPropagationFlags::DOWNSTREAM);
    }

    #[test]
    fn propagation_options() {
        let p = |s: &str| Propagation::parse(s).map(|p| p.flags());
        assert_eq!(
            p("rslave"),
            Some(MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC)
        );
        assert_eq!(p("shared"), Some(MountPropagationFlags::SHARED));
        assert_eq!(
            p("runbindable"),
            Some(MountPropagationFlags::UNBINDABLE | MountPropagationFlags::REC)
        );
        assert!(Propagation::parse("rprivate").unwrap().is_private());
        for other in ["rbind", "ro", "rw", "relatime", "r", ""] {
            assert_eq!(Propagation::parse(other), None, "{other}");
        }
    }
}
