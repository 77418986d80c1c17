//! What an archive says an entry should look like (owner, mode, times, xattrs), and making
//! an entry just written look like that, by file descriptor, without a syscall for what is
//! already so: most entries of an image are root's, and so is what root creates.

use std::os::fd::BorrowedFd;

use rustix::fs::{Gid, Mode, Stat, Uid, XattrFlags};

/// Metadata an archive or a source tree gives an entry.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    /// The permission bits to create the entry with: never setuid, setgid or sticky
    /// before its owner is final (a chown would clear them anyway).
    pub fn create_mode(&self) -> Mode {
        Mode::from_raw_mode(self.mode & 0o777)
    }
}

/// Only these xattrs from an image reach the disk: user data, file capabilities and ACLs.
/// `trusted.*` in particular would let an image forge overlayfs metadata, and so would
/// `user.overlay.*` rootless, where overlayfs reads those (crate::userns).
pub fn xattr_allowed(name: &[u8]) -> bool {
    (name.starts_with(b"user.")
        && !(name.starts_with(b"user.overlay.") && crate::userns::IdView::current().nested()))
        || name == b"security.capability"
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

const SETGID: u32 = 0o2000;

/// Who owns what this process creates in a tree: the process's ids, unless a setgid
/// directory hands its group down. Lets a symlink skip its chown without a stat.
#[derive(Debug, Clone)]
pub struct NewOwner {
    uid: u32,
    gid: u32,
    setgid_dirs: bool,
}

impl NewOwner {
    /// For a tree rooted at `root` (a setgid root hands its group down too).
    pub fn in_root(root: BorrowedFd<'_>) -> std::io::Result<NewOwner> {
        let st = rustix::fs::fstat(root)?;
        let mut owner = NewOwner {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            setgid_dirs: false,
        };
        owner.directory_mode(st.st_mode);
        Ok(owner)
    }

    /// Notes a directory's final mode: below a setgid one, new entries take its group.
    pub fn directory_mode(&mut self, mode: u32) {
        self.setgid_dirs |= mode & SETGID != 0;
    }

    /// Whether an entry just created (and never stat'ed) may be owned otherwise than
    /// `meta` says.
    pub fn needs_chown(&self, meta: &Meta) -> bool {
        self.setgid_dirs || meta.uid != self.uid || meta.gid != self.gid
    }
}

/// Gives the entry open at `fd`, whose stat is `current`, the owner, mode and xattrs of
/// `meta`. Owner first: a chown clears setuid and setgid.
pub fn settle(fd: BorrowedFd<'_>, current: &Stat, meta: &Meta) -> Result<(), String> {
    let chown = current.st_uid != meta.uid || current.st_gid != meta.gid;
    if chown {
        rustix::fs::fchown(
            fd,
            Some(Uid::from_raw_unchecked(meta.uid)),
            Some(Gid::from_raw_unchecked(meta.gid)),
        )
        .map_err(|e| format!("chown: {e}"))?;
    }
    if chown || current.st_mode & 0o7777 != meta.mode & 0o7777 {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777))
            .map_err(|e| format!("chmod: {e}"))?;
    }
    for (name, value) in &meta.xattrs {
        if xattr_allowed(name) {
            rustix::fs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty())
                .map_err(|e| format!("xattr {}: {e}", String::from_utf8_lossy(name)))?;
        }
    }
    Ok(())
}
