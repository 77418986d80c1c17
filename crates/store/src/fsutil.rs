//! Small filesystem helpers: atomic file writes, durable renames, recursive removal that
//! never follows symlinks.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

use crate::error::{IoContext, Result};

/// Writes `data` to `path` through a sibling temp file and a rename, so readers see either
/// the old content or the new, never a partial file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().expect("path has a parent");
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(data).at(&tmp.0)?;
    tmp.1.sync_data().at(&tmp.0)?;
    fs::rename(&tmp.0, path).at(path)?;
    Ok(())
}

/// Like write_atomic, without the fsync: for state that is worthless after a crash anyway.
pub fn write_replace(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().expect("path has a parent");
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(data).at(&tmp.0)?;
    fs::rename(&tmp.0, path).at(path)?;
    Ok(())
}

fn tempfile_in(dir: &Path) -> Result<(std::path::PathBuf, File)> {
    use std::os::unix::fs::OpenOptionsExt;
    for attempt in 0..100u32 {
        let name = format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            attempt,
            random_suffix()
        );
        let p = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at(&p),
        }
    }
    Err(std::io::Error::other("could not create a temporary file")).at(dir)
}

/// A short random string for unique temporary names (not security relevant: every
/// creation uses O_EXCL or mkdir, which fail rather than reuse).
pub fn random_suffix() -> String {
    let mut buf = [0u8; 8];
    rustix::rand::getrandom(&mut buf, rustix::rand::GetRandomFlags::empty()).ok();
    hex::encode(buf)
}

pub fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path).at(path)?.sync_all().at(path)
}

/// Flushes every dirty page of the filesystem holding `path`: one syscall instead of an
/// fsync per extracted file.
pub fn syncfs(path: &Path) -> Result<()> {
    let f = File::open(path).at(path)?;
    rustix::fs::syncfs(&f).at(path)
}

/// Removes a tree without ever following a symlink out of it. Missing is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).at(path),
    };
    if !meta.is_dir() {
        return fs::remove_file(path).at(path);
    }
    let dir = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(path)?;
    remove_children(&dir, path)?;
    drop(dir);
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
    }
}

/// Empties an open directory, recursing by file descriptor.
pub fn remove_children<Fd: AsFd>(dir: Fd, shown: &Path) -> Result<()> {
    let dup = rustix::fs::openat(
        &dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(shown)?;
    let entries = rustix::fs::Dir::read_from(&dup).at(shown)?;
    let mut names = Vec::new();
    for ent in entries {
        let ent = ent.at(shown)?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push((ent.file_name().to_owned(), ent.file_type()));
    }
    for (name, ftype) in names {
        let shown_child = shown.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let is_dir = match ftype {
            rustix::fs::FileType::Directory => true,
            rustix::fs::FileType::Unknown => {
                rustix::fs::statat(&dir, &*name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
                    .unwrap_or(false)
            }
            _ => false,
        };
        if is_dir {
            let child = rustix::fs::openat2(
                &dir,
                &*name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
            )
            .at(&shown_child)?;
            remove_children(&child, &shown_child)?;
            drop(child);
            ignore_missing(rustix::fs::unlinkat(&dir, &*name, AtFlags::REMOVEDIR))
                .at(&shown_child)?;
        } else {
            ignore_missing(rustix::fs::unlinkat(&dir, &*name, AtFlags::empty()))
                .at(&shown_child)?;
        }
    }
    Ok(())
}

fn ignore_missing(r: rustix::io::Result<()>) -> rustix::io::Result<()> {
    match r {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        other => other,
    }
}
