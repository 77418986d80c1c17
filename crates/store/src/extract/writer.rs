//! Writes a tree inside a root directory by file descriptor. Every path is resolved with
//! openat2(RESOLVE_IN_ROOT), so no name and no symlink, whether planted by an earlier entry
//! or an earlier layer, can reach outside the root. The last component of a path is never
//! followed: it is created with O_EXCL/O_NOFOLLOW, and whatever already sits there is
//! replaced, as tar does.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    openat, openat2, AtFlags, Dev, FileType, Gid, Mode, OFlags, ResolveFlags, Stat, Timespec,
    Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::meta::{settle, NewOwner};
pub use super::meta::{xattr_allowed, Meta};
use super::path::EntryPath;
use crate::tree::KnownHashes;

/// How whiteouts are written: as overlayfs whiteouts in a layer of its own (char 0/0 and
/// the opaque xattr), or applied by deleting from a merged tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    Overlay,
    Apply,
}

/// The opaque marker overlayfs reads: `trusted.overlay.opaque` as root of the host,
/// `user.overlay.opaque` rootless (crate::userns).
pub fn opaque_xattr() -> &'static str {
    crate::userns::IdView::current().opaque_xattr()
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

pub struct RootWriter {
    root: OwnedFd,
    root_path: PathBuf,
    whiteouts: Whiteouts,
    /// The last parent directory used: archives list a directory's entries together.
    cache: Option<(Vec<u8>, OwnedFd)>,
    dir_times: Vec<(EntryPath, Timestamps)>,
    /// Who owns what we create, so symlinks skip a chown to the owner they already have.
    new_owner: NewOwner,
    /// sha256 of each regular file written, by (dev, inode), for the layer's tree record.
    pub file_hashes: KnownHashes,
    hash_files: bool,
    /// Whether any extended attribute was set (the tree walk lists them only then).
    pub xattrs_written: bool,
    pub bytes_written: u64,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub struct WriteError {
    pub path: String,
    pub reason: String,
}

impl WriteError {
    fn new(path: &EntryPath, reason: impl std::fmt::Display) -> WriteError {
        WriteError {
            path: path.display(),
            reason: reason.to_string(),
        }
    }
}

type WResult<T> = Result<T, WriteError>;

fn ts(sec: i64, nsec: u32) -> Timespec {
    Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    }
}

impl RootWriter {
    pub fn new(root_path: &Path, whiteouts: Whiteouts, hash_files: bool) -> io::Result<RootWriter> {
        let root = rustix::fs::open(
            root_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        let new_owner = NewOwner::in_root(root.as_fd())?;
        Ok(RootWriter {
            new_owner,
            root,
            root_path: root_path.to_path_buf(),
            whiteouts,
            cache: None,
            dir_times: Vec::new(),
            file_hashes: KnownHashes::new(),
            hash_files,
            xattrs_written: false,
            bytes_written: 0,
            buf: vec![0u8; 256 * 1024],
        })
    }

    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// Opens (creating missing directories as root:root 0755) the parent of an entry.
    fn parent(&mut self, path: &EntryPath) -> WResult<BorrowedFd<'_>> {
        let (parent, _) = path.split_last();
        if parent.is_empty() {
            return Ok(self.root.as_fd());
        }
        let hit = matches!(&self.cache, Some((p, _)) if p.as_slice() == parent);
        if !hit {
            let fd = self
                .open_dir_creating(parent)
                .map_err(|e| WriteError::new(path, e))?;
            self.cache = Some((parent.to_vec(), fd));
        }
        Ok(self.cache.as_ref().unwrap().1.as_fd())
    }

    fn open_dir_creating(&self, rel: &[u8]) -> Result<OwnedFd, String> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match openat2(&self.root, rel, flags, Mode::empty(), RESOLVE) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(Errno::NOTDIR) => {
                return Err(format!(
                    "a parent of it is not a directory ({})",
                    String::from_utf8_lossy(rel)
                ))
            }
            Err(e) => return Err(format!("opening parent directory: {e}")),
        }
        // Create the missing ones, resolving each prefix from the root again so a symlink
        // met on the way is still confined to the root.
        let mut end = 0;
        let comps: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
        for comp in comps {
            let start = end;
            end = if start == 0 {
                comp.len()
            } else {
                start + 1 + comp.len()
            };
            let prefix = &rel[..end];
            match openat2(&self.root, prefix, flags, Mode::empty(), RESOLVE) {
                Ok(_) => continue,
                Err(Errno::NOENT) => {}
                Err(Errno::NOTDIR) => {
                    return Err(format!(
                        "a parent of it is not a directory ({})",
                        String::from_utf8_lossy(prefix)
                    ))
                }
                Err(e) => return Err(format!("opening {}: {e}", String::from_utf8_lossy(prefix))),
            }
            // `start` is where the previous component ended (before its '/').
            let parent_rel = if start == 0 { &b""[..] } else { &rel[..start] };
            let pfd = if parent_rel.is_empty() {
                openat(&self.root, ".", flags, Mode::empty())
            } else {
                openat2(&self.root, parent_rel, flags, Mode::empty(), RESOLVE)
            }
            .map_err(|e| format!("opening {}: {e}", String::from_utf8_lossy(parent_rel)))?;
            match rustix::fs::mkdirat(&pfd, comp, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(format!("creating {}: {e}", String::from_utf8_lossy(prefix))),
            }
        }
        openat2(&self.root, rel, flags, Mode::empty(), RESOLVE)
            .map_err(|e| format!("opening parent directory: {e}"))
    }

    /// Removes whatever is at `name` in `dir` (a tree, if a directory).
    fn clear(&mut self, path: &EntryPath) -> WResult<()> {
        let (_, name) = path.split_last();
        let dir = self.parent(path)?;
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(WriteError::new(path, e)),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let child = openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| WriteError::new(path, e))?;
            crate::fsutil::remove_children(&child, Path::new(&path.display()))
                .map_err(|e| WriteError::new(path, e))?;
            let dir = self.parent(path)?;
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
                .map_err(|e| WriteError::new(path, e))?;
            // The cached parent may have been inside the removed tree.
            self.cache = None;
        } else {
            rustix::fs::unlinkat(dir, name, AtFlags::empty())
                .map_err(|e| WriteError::new(path, e))?;
        }
        Ok(())
    }

    /// Gives the entry open at `fd` the owner, mode and xattrs of `meta`; returns its stat.
    fn settle_fd(&mut self, fd: BorrowedFd<'_>, meta: &Meta, path: &EntryPath) -> WResult<Stat> {
        let st = rustix::fs::fstat(fd).map_err(|e| WriteError::new(path, e))?;
        self.xattrs_written |= meta.xattrs.iter().any(|(n, _)| xattr_allowed(n));
        settle(fd, &st, meta).map_err(|e| WriteError::new(path, e))?;
        Ok(st)
    }

    pub fn dir(&mut self, path: &EntryPath, meta: &Meta) -> WResult<()> {
        let fd = if path.is_root() {
            openat(
                &self.root,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| WriteError::new(path, e))?
        } else {
            let (_, name) = path.split_last();
            let dir = self.parent(path)?;
            match rustix::fs::mkdirat(dir, name, meta.create_mode()) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| WriteError::new(path, e))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        self.clear(path)?;
                        let dir = self.parent(path)?;
                        rustix::fs::mkdirat(dir, name, meta.create_mode())
                            .map_err(|e| WriteError::new(path, e))?;
                    }
                }
                Err(e) => return Err(WriteError::new(path, e)),
            }
            let dir = self.parent(path)?;
            openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| WriteError::new(path, e))?
        };
        self.settle_fd(fd.as_fd(), meta, path)?;
        self.new_owner.directory_mode(meta.mode);
        // A directory's mtime changes as its entries arrive: set it at the end.
        self.dir_times.push((
            path.clone(),
            Timestamps {
                last_access: ts(meta.mtime, meta.mtime_nsec),
                last_modification: ts(meta.mtime, meta.mtime_nsec),
            },
        ));
        Ok(())
    }

    /// Creates a regular file from `size` bytes of `data`. Returns an error if the data ends
    /// early (a truncated archive).
    pub fn file(
        &mut self,
        path: &EntryPath,
        meta: &Meta,
        data: &mut dyn Read,
        size: u64,
    ) -> WResult<()> {
        let fd = self.create_excl(path, meta.create_mode())?;
        let mut hasher = self.hash_files.then(<sha2::Sha256 as sha2::Digest>::new);
        let mut left = size;
        let mut file = std::fs::File::from(fd);
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(WriteError::new(
                        path,
                        format!("archive ends {left} bytes before the end of this file"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WriteError::new(path, e)),
            };
            if let Some(h) = hasher.as_mut() {
                sha2::Digest::update(h, &self.buf[..n]);
            }
            io::Write::write_all(&mut file, &self.buf[..n])
                .map_err(|e| WriteError::new(path, e))?;
            left -= n as u64;
        }
        self.bytes_written += size;
        let st = self.settle_fd(file.as_fd(), meta, path)?;
        let t = ts(meta.mtime, meta.mtime_nsec);
        rustix::fs::futimens(
            &file,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
        )
        .map_err(|e| WriteError::new(path, e))?;
        if let Some(h) = hasher {
            self.file_hashes
                .insert((st.st_dev, st.st_ino), sha2::Digest::finalize(h).into());
        }
        Ok(())
    }

    /// Opens `path` for writing as a new file, replacing whatever was there.
    fn create_excl(&mut self, path: &EntryPath, mode: Mode) -> WResult<OwnedFd> {
        if path.is_root() {
            return Err(WriteError::new(path, "the root cannot be a file"));
        }
        let (_, name) = path.split_last();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        for _ in 0..2 {
            let dir = self.parent(path)?;
            match openat(dir, name, flags, mode) {
                Ok(fd) => return Ok(fd),
                Err(Errno::EXIST) => self.clear(path)?,
                Err(e) => return Err(WriteError::new(path, e)),
            }
        }
        Err(WriteError::new(
            path,
            "could not replace the existing entry",
        ))
    }

    pub fn symlink(&mut self, path: &EntryPath, target: &[u8], meta: &Meta) -> WResult<()> {
        if path.is_root() {
            return Err(WriteError::new(path, "the root cannot be a symlink"));
        }
        let (_, name) = path.split_last();
        let name = name.to_vec();
        for attempt in 0..2 {
            let dir = self.parent(path)?;
            match rustix::fs::symlinkat(target, dir, name.as_slice()) {
                Ok(()) => break,
                Err(Errno::EXIST) if attempt == 0 => self.clear(path)?,
                Err(e) => return Err(WriteError::new(path, e)),
            }
        }
        let needs_chown = self.new_owner.needs_chown(meta);
        let dir = self.parent(path)?;
        if needs_chown {
            chown_at(dir, &name, meta, path)?;
        }
        let t = ts(meta.mtime, meta.mtime_nsec);
        rustix::fs::utimensat(
            dir,
            name.as_slice(),
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| WriteError::new(path, e))?;
        Ok(())
    }

    /// A hard link to `target`, which must already be in this tree and not be a directory.
    pub fn hardlink(&mut self, path: &EntryPath, target: &EntryPath) -> WResult<()> {
        if path.is_root() || target.is_root() {
            return Err(WriteError::new(path, "hard link to or from the root"));
        }
        let src = match openat2(
            &self.root,
            target.as_bytes(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                return Err(WriteError::new(
                    path,
                    format!(
                        "hard link target {:?} is not in this layer",
                        target.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(WriteError::new(
                    path,
                    format!("hard link target {:?}: {e}", target.display()),
                ))
            }
        };
        let st = rustix::fs::fstat(&src).map_err(|e| WriteError::new(path, e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(WriteError::new(
                path,
                format!("hard link to directory {:?}", target.display()),
            ));
        }
        let (_, name) = path.split_last();
        let name = name.to_vec();
        for attempt in 0..2 {
            let dir = self.parent(path)?;
            match rustix::fs::linkat(&src, "", dir, name.as_slice(), AtFlags::EMPTY_PATH) {
                Ok(()) => return Ok(()),
                Err(Errno::EXIST) if attempt == 0 => {
                    // Linking a name to itself is a no-op, not a reason to delete it.
                    let dir = self.parent(path)?;
                    if let Ok(cur) =
                        rustix::fs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                    {
                        if cur.st_ino == st.st_ino && cur.st_dev == st.st_dev {
                            return Ok(());
                        }
                    }
                    self.clear(path)?
                }
                Err(e) => return Err(WriteError::new(path, e)),
            }
        }
        Ok(())
    }

    /// A hard link to a file outside this tree (a layer on the same filesystem), replacing
    /// whatever is at `path`.
    pub fn link_from(
        &mut self,
        src_dir: &OwnedFd,
        src_name: &std::ffi::CStr,
        path: &EntryPath,
    ) -> WResult<()> {
        if path.is_root() {
            return Err(WriteError::new(path, "the root cannot be a file"));
        }
        let (_, name) = path.split_last();
        let name = name.to_vec();
        for attempt in 0..2 {
            let dir = self.parent(path)?;
            match rustix::fs::linkat(src_dir, src_name, dir, name.as_slice(), AtFlags::empty()) {
                Ok(()) => return Ok(()),
                Err(Errno::EXIST) if attempt == 0 => self.clear(path)?,
                Err(e) => return Err(WriteError::new(path, e)),
            }
        }
        Ok(())
    }

    pub fn fifo(&mut self, path: &EntryPath, meta: &Meta) -> WResult<()> {
        self.node(path, FileType::Fifo, 0, meta)
    }

    /// Char/block devices are only ever created for overlay whiteouts (0/0); callers skip
    /// image device nodes before reaching here.
    fn node(&mut self, path: &EntryPath, ftype: FileType, dev: Dev, meta: &Meta) -> WResult<()> {
        if path.is_root() {
            return Err(WriteError::new(path, "the root cannot be a special file"));
        }
        let (_, name) = path.split_last();
        let name = name.to_vec();
        for attempt in 0..2 {
            let dir = self.parent(path)?;
            match rustix::fs::mknodat(
                dir,
                name.as_slice(),
                ftype,
                Mode::from_raw_mode(meta.mode & 0o777),
                dev,
            ) {
                Ok(()) => break,
                Err(Errno::EXIST) if attempt == 0 => self.clear(path)?,
                Err(e) => return Err(WriteError::new(path, e)),
            }
        }
        let needs_chown = self.new_owner.needs_chown(meta);
        let dir = self.parent(path)?;
        if needs_chown {
            chown_at(dir, &name, meta, path)?;
        }
        Ok(())
    }

    /// `path` is the whited-out name itself (the `.wh.` prefix already removed).
    pub fn whiteout(&mut self, path: &EntryPath) -> WResult<()> {
        match self.whiteouts {
            Whiteouts::Overlay => self.node(path, FileType::CharacterDevice, 0, &Meta::default()),
            Whiteouts::Apply => self.clear(path),
        }
    }

    /// Marks `dir` opaque: lower layers' entries under it are hidden. In Apply mode the
    /// directory's current children are deleted, so call it before adding this layer's.
    pub fn opaque(&mut self, dir: &EntryPath) -> WResult<()> {
        let fd = if dir.is_root() {
            openat(
                &self.root,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        } else {
            // Make sure it exists as a directory (an opaque marker may precede its dir entry).
            self.open_dir_creating(dir.as_bytes())
                .map_err(|e| WriteError::new(dir, e))?;
            openat2(
                &self.root,
                dir.as_bytes(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )
        }
        .map_err(|e| WriteError::new(dir, e))?;
        match self.whiteouts {
            Whiteouts::Overlay => {
                self.xattrs_written = true;
                rustix::fs::fsetxattr(&fd, opaque_xattr(), b"y", XattrFlags::empty())
                    .map_err(|e| WriteError::new(dir, format!("setting the opaque xattr: {e}")))
            }
            Whiteouts::Apply => {
                crate::fsutil::remove_children(&fd, Path::new(&dir.display()))
                    .map_err(|e| WriteError::new(dir, e))?;
                self.cache = None;
                Ok(())
            }
        }
    }

    /// Sets directory times, deepest first, now that their contents are final.
    pub fn finish(&mut self) -> WResult<()> {
        self.cache = None;
        // The last entry for a directory wins; deepest first so parents are dated last.
        let mut last: HashMap<EntryPath, Timestamps> = HashMap::new();
        for (path, t) in std::mem::take(&mut self.dir_times) {
            last.insert(path, t);
        }
        let mut times: Vec<_> = last.into_iter().collect();
        times.sort_by(|a, b| b.0.cmp(&a.0));
        for (path, t) in times {
            let fd = if path.is_root() {
                openat(
                    &self.root,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            } else {
                openat2(
                    &self.root,
                    path.as_bytes(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    RESOLVE,
                )
            };
            // A directory replaced later in the archive is simply gone: nothing to date.
            if let Ok(fd) = fd {
                rustix::fs::futimens(&fd, &t).map_err(|e| WriteError::new(&path, e))?;
            }
        }
        Ok(())
    }
}

/// chown of a symlink or node, never following it.
fn chown_at(dir: BorrowedFd<'_>, name: &[u8], meta: &Meta, path: &EntryPath) -> WResult<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(Uid::from_raw_unchecked(meta.uid)),
        Some(Gid::from_raw_unchecked(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| WriteError::new(path, format!("chown: {e}")))
}
