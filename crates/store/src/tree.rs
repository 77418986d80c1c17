//! A layer's tree record: one line per entry (type, mode, owner, size, content hash, link
//! target, xattrs, path), written when the layer is committed. `image verify` walks the
//! layer again, re-hashing every file, and compares.

use std::collections::HashMap;
use std::io::{self, Read};
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

/// How regular files get their hash during a walk.
pub enum Hashing<'a> {
    /// Look it up by (dev, inode); hash the file only if it is not there.
    Known(&'a HashMap<(u64, u64), String>),
    /// Read and hash every file.
    Recompute,
}

pub fn walk(root: &Path, hashing: &Hashing<'_>) -> io::Result<Vec<Record>> {
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let st = rustix::fs::fstat(&fd)?;
    out.push(record_for(&fd, None, Vec::new(), &st, hashing, &mut buf)?);
    walk_dir(&fd, Vec::new(), hashing, &mut out, &mut buf)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk_dir(
    dir: &OwnedFd,
    prefix: Vec<u8>,
    hashing: &Hashing<'_>,
    out: &mut Vec<Record>,
    buf: &mut [u8],
) -> io::Result<()> {
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
    for name in names {
        let st = rustix::fs::statat(dir, &*name, AtFlags::SYMLINK_NOFOLLOW)?;
        let mut path = prefix.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.to_bytes());
        let ftype = FileType::from_raw_mode(st.st_mode);
        out.push(record_for(
            dir,
            Some(&name),
            path.clone(),
            &st,
            hashing,
            buf,
        )?);
        if ftype == FileType::Directory {
            let child = openat(
                dir,
                &*name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            walk_dir(&child, path, hashing, out, buf)?;
        }
    }
    Ok(())
}

fn record_for(
    dir: &OwnedFd,
    name: Option<&std::ffi::CStr>,
    path: Vec<u8>,
    st: &rustix::fs::Stat,
    hashing: &Hashing<'_>,
    buf: &mut [u8],
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
            let known = match hashing {
                Hashing::Known(map) => map.get(&(st.st_dev, st.st_ino)).cloned(),
                Hashing::Recompute => None,
            };
            let fd = open_self(OFlags::RDONLY)?;
            rec.hash = match known {
                Some(h) => h,
                None => hash_fd(&fd, buf)?,
            };
            rec.xattrs = xattrs(&fd)?;
        }
        'd' => {
            let fd = open_self(OFlags::RDONLY | OFlags::DIRECTORY)?;
            rec.xattrs = xattrs(&fd)?;
        }
        _ => {}
    }
    Ok(rec)
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
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' && b != b'=' && b != b';' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
}

/// One line per record; stable, so two walks of the same tree give the same text.
pub fn serialize(records: &[Record]) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&format!(
            "{} {:o} {} {} {} {} {} ",
            r.kind,
            r.mode,
            r.uid,
            r.gid,
            r.size,
            r.rdev,
            if r.hash.is_empty() { "-" } else { &r.hash }
        ));
        if r.target.is_empty() {
            s.push('-');
        } else {
            escape(&r.target, &mut s);
        }
        s.push(' ');
        if r.xattrs.is_empty() {
            s.push('-');
        }
        for (i, (k, v)) in r.xattrs.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            escape(k, &mut s);
            s.push('=');
            escape(v, &mut s);
        }
        s.push(' ');
        if r.path.is_empty() {
            s.push('.');
        } else {
            escape(&r.path, &mut s);
        }
        s.push('\n');
    }
    s
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
        let one = serialize(&walk(r, &Hashing::Recompute).unwrap());
        let two = serialize(&walk(r, &Hashing::Recompute).unwrap());
        assert_eq!(one, two);
        assert!(one.contains(" a/f\n"));
        assert!(one.contains("/etc/passwd"));
        std::fs::write(r.join("a/f"), b"hellO").unwrap();
        std::fs::write(r.join("new"), b"x").unwrap();
        let three = serialize(&walk(r, &Hashing::Recompute).unwrap());
        let d = diff(&one, &three);
        assert!(d.iter().any(|l| l.starts_with("a/f: changed")), "{d:?}");
        assert!(d.iter().any(|l| l.starts_with("new: unexpected")), "{d:?}");
    }
}
