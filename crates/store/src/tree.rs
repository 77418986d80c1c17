//! A layer's tree record: one line per entry (type, mode, owner, size, content hash, link
//! target, xattrs, path), written when the layer is committed. `image verify` walks the
//! layer again, re-hashing every file, and compares.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{openat, AtFlags, FileType, Mode, OFlags};

use crate::digest::{Algorithm, Hasher};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub path: Vec<u8>,
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    pub hash: String,
    pub target: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// sha256 of each regular file an extraction wrote, by (dev, inode): 48 bytes an entry,
/// so a layer of a million files costs tens of MB, not hundreds.
pub type KnownHashes = HashMap<(u64, u64), [u8; 32]>;

/// How regular files get their hash during a walk.
pub enum Hashing<'a> {
    /// Look it up by (dev, inode); hash the file only if it is not there.
    Known(&'a KnownHashes),
    /// Read and hash every file.
    Recompute,
}

/// Whether the walk reads each file's extended attributes. Listing them costs an open,
/// a flistxattr and a close per file, a third of the walk of a tree of small files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xattrs {
    List,
    /// The caller knows no entry has any: it wrote none, and the root has none (so no
    /// security module labels new files here). Directories are still listed (they are
    /// open anyway); a wrong guess shows up as a difference in `image verify`.
    NoneOnFiles,
}

/// Whether the directory at `root` carries any extended attribute.
pub fn has_xattrs(root: &Path) -> io::Result<bool> {
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(!xattrs(&fd)?.is_empty())
}

/// Walks the tree at `root` and writes its record to `out`, one line per entry as it is
/// met (depth first, each directory's entries in byte order), holding no more than one
/// directory's names per level in memory.
pub fn write(
    root: &Path,
    hashing: &Hashing<'_>,
    scan: Xattrs,
    out: &mut dyn Write,
) -> io::Result<()> {
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut walker = Walker {
        hashing,
        scan,
        out,
        buf: vec![0u8; 256 * 1024],
        line: String::new(),
    };
    let st = rustix::fs::fstat(&fd)?;
    let rec = walker.record_for(&fd, None, Vec::new(), &st)?;
    walker.emit(&rec)?;
    walker.walk_dir(&fd, Vec::new())
}

/// The record of the tree at `root` as text (for `image verify`'s comparison).
pub fn record_text(root: &Path, hashing: &Hashing<'_>) -> io::Result<String> {
    let mut out = Vec::new();
    write(root, hashing, Xattrs::List, &mut out)?;
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

struct Walker<'a, 'h> {
    hashing: &'a Hashing<'h>,
    scan: Xattrs,
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    line: String,
}

impl Walker<'_, '_> {
    fn emit(&mut self, rec: &Record) -> io::Result<()> {
        self.line.clear();
        serialize_into(rec, &mut self.line);
        self.out.write_all(self.line.as_bytes())
    }

    fn walk_dir(&mut self, dir: &OwnedFd, prefix: Vec<u8>) -> io::Result<()> {
        let mut names = Vec::new();
        {
            let d = rustix::fs::Dir::read_from(dir)?;
            for ent in d {
                let ent = ent?;
                let n = ent.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(ent.file_name().to_owned());
                }
            }
        }
        names.sort_unstable();
        for name in names {
            let st = rustix::fs::statat(dir, &*name, AtFlags::SYMLINK_NOFOLLOW)?;
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name.to_bytes());
            let rec = self.record_for(dir, Some(&name), path, &st)?;
            self.emit(&rec)?;
            if rec.kind == 'd' {
                let child = openat(
                    dir,
                    &*name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.walk_dir(&child, rec.path)?;
            }
        }
        Ok(())
    }

    fn record_for(
        &mut self,
        dir: &OwnedFd,
        name: Option<&std::ffi::CStr>,
        path: Vec<u8>,
        st: &rustix::fs::Stat,
    ) -> io::Result<Record> {
        let ftype = FileType::from_raw_mode(st.st_mode);
        let kind = match ftype {
            FileType::Directory => 'd',
            FileType::RegularFile => 'f',
            FileType::Symlink => 'l',
            FileType::CharacterDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
            FileType::Unknown => '?',
        };
        let mut rec = Record {
            path,
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: if kind == 'f' { st.st_size as u64 } else { 0 },
            rdev: if kind == 'c' || kind == 'b' {
                st.st_rdev
            } else {
                0
            },
            hash: String::new(),
            target: Vec::new(),
            xattrs: Vec::new(),
        };
        let open_self = |flags: OFlags| -> io::Result<OwnedFd> {
            match name {
                Some(n) => Ok(openat(
                    dir,
                    n,
                    flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?),
                None => Ok(openat(dir, ".", flags | OFlags::CLOEXEC, Mode::empty())?),
            }
        };
        match kind {
            'l' => {
                let n = name.expect("the root is a directory");
                rec.target = rustix::fs::readlinkat(dir, n, Vec::new())?.into_bytes();
                // Symlinks keep no xattrs in an image; the record covers the target only.
            }
            'f' => {
                let known = match self.hashing {
                    Hashing::Known(map) => map.get(&(st.st_dev, st.st_ino)).map(hex::encode),
                    Hashing::Recompute => None,
                };
                let need_fd = known.is_none() || self.scan == Xattrs::List;
                let fd = if need_fd {
                    Some(open_self(OFlags::RDONLY)?)
                } else {
                    None
                };
                rec.hash = match (known, &fd) {
                    (Some(h), _) => h,
                    (None, Some(fd)) => hash_fd(fd, &mut self.buf)?,
                    (None, None) => unreachable!("a file without a known hash is opened"),
                };
                if let (Some(fd), Xattrs::List) = (&fd, self.scan) {
                    rec.xattrs = xattrs(fd)?;
                }
            }
            'd' => {
                let fd = open_self(OFlags::RDONLY | OFlags::DIRECTORY)?;
                rec.xattrs = xattrs(&fd)?;
            }
            _ => {}
        }
        Ok(rec)
    }
}

fn hash_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<String> {
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut f = std::fs::File::from(fd.try_clone()?);
    loop {
        let n = f.read(buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish().hex().to_string())
}

fn xattrs<Fd: AsFd>(fd: Fd) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut list = vec![0u8; 4096];
    let n = match rustix::fs::flistxattr(&fd, &mut list[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut val = vec![0u8; 65536];
        let len = rustix::fs::fgetxattr(&fd, name, &mut val[..])?;
        val.truncate(len);
        out.push((name.to_vec(), val));
    }
    out.sort();
    Ok(out)
}

fn escape(bytes: &[u8], out: &mut String) {
    use std::fmt::Write as _;
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' && b != b'=' && b != b';' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
}

/// One line per record; stable, so two walks of the same tree give the same text.
fn serialize_into(r: &Record, s: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(
        s,
        "{} {:o} {} {} {} {} {} ",
        r.kind,
        r.mode,
        r.uid,
        r.gid,
        r.size,
        r.rdev,
        if r.hash.is_empty() { "-" } else { &r.hash }
    );
    if r.target.is_empty() {
        s.push('-');
    } else {
        escape(&r.target, s);
    }
    s.push(' ');
    if r.xattrs.is_empty() {
        s.push('-');
    }
    for (i, (k, v)) in r.xattrs.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        escape(k, s);
        s.push('=');
        escape(v, s);
    }
    s.push(' ');
    if r.path.is_empty() {
        s.push('.');
    } else {
        escape(&r.path, s);
    }
    s.push('\n');
}

/// Compares a recorded tree with a fresh walk; returns human-readable differences.
pub fn diff(recorded: &str, actual: &str) -> Vec<String> {
    let index = |text: &str| -> std::collections::BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| {
                l.rsplit_once(' ')
                    .map(|(meta, path)| (path.to_string(), meta.to_string()))
            })
            .collect()
    };
    let (a, b) = (index(recorded), index(actual));
    let mut out = Vec::new();
    for (path, meta) in &a {
        match b.get(path) {
            None => out.push(format!("{path}: missing")),
            Some(m) if m != meta => {
                out.push(format!("{path}: changed (recorded {meta}, found {m})"))
            }
            _ => {}
        }
    }
    for path in b.keys() {
        if !a.contains_key(path) {
            out.push(format!("{path}: unexpected entry"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_is_stable_and_detects_changes() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("a")).unwrap();
        std::fs::write(r.join("a/f"), b"hello").unwrap();
        symlink("/etc/passwd", r.join("l")).unwrap();
        let one = record_text(r, &Hashing::Recompute).unwrap();
        let two = record_text(r, &Hashing::Recompute).unwrap();
        assert_eq!(one, two);
        assert!(one.contains(" a/f\n"));
        assert!(one.contains("/etc/passwd"));
        std::fs::write(r.join("a/f"), b"hellO").unwrap();
        std::fs::write(r.join("new"), b"x").unwrap();
        let three = record_text(r, &Hashing::Recompute).unwrap();
        let d = diff(&one, &three);
        assert!(d.iter().any(|l| l.starts_with("a/f: changed")), "{d:?}");
        assert!(d.iter().any(|l| l.starts_with("new: unexpected")), "{d:?}");
    }

    #[test]
    fn known_hashes_without_xattrs_give_the_same_record() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        std::fs::write(r.join("a/b/f"), b"data").unwrap();
        std::fs::write(r.join("a-c"), b"").unwrap();
        std::fs::hard_link(r.join("a/b/f"), r.join("h")).unwrap();
        let mut known = KnownHashes::new();
        for f in ["a/b/f", "a-c"] {
            let m = std::fs::metadata(r.join(f)).unwrap();
            let mut h = [0u8; 32];
            let digest = crate::digest::sha256(&std::fs::read(r.join(f)).unwrap());
            hex::decode_to_slice(digest.hex(), &mut h).unwrap();
            known.insert((m.dev(), m.ino()), h);
        }
        let full = record_text(r, &Hashing::Recompute).unwrap();
        let mut fast = Vec::new();
        write(r, &Hashing::Known(&known), Xattrs::NoneOnFiles, &mut fast).unwrap();
        assert_eq!(full, String::from_utf8(fast).unwrap());
        // Depth first, each directory in byte order.
        let paths: Vec<&str> = full
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(paths, [".", "a", "a/b", "a/b/f", "a-c", "h"]);
    }
}
