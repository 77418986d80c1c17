//! Advisory file locks (flock). A lock lives as long as its open file, so a process that
//! dies releases every lock it held: no stale lock files to clean up.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::error::{IoContext, Result};

pub struct FileLock {
    _file: File,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Blocks until the lock at `path` (created if missing) is held.
    pub fn acquire(path: &Path, mode: Mode) -> Result<FileLock> {
        let file = open(path)?;
        let op = match mode {
            Mode::Shared => FlockOperation::LockShared,
            Mode::Exclusive => FlockOperation::LockExclusive,
        };
        flock(&file, op).at(path)?;
        Ok(FileLock { _file: file })
    }

    /// Takes the lock only if nobody holds a conflicting one.
    pub fn try_acquire(path: &Path, mode: Mode) -> Result<Option<FileLock>> {
        let file = open(path)?;
        let op = match mode {
            Mode::Shared => FlockOperation::NonBlockingLockShared,
            Mode::Exclusive => FlockOperation::NonBlockingLockExclusive,
        };
        match flock(&file, op) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e).at(path),
        }
    }

    /// Locks an already-open file or directory.
    pub fn on(file: File, mode: Mode, path: &Path) -> Result<FileLock> {
        let op = match mode {
            Mode::Shared => FlockOperation::LockShared,
            Mode::Exclusive => FlockOperation::LockExclusive,
        };
        flock(&file, op).at(path)?;
        Ok(FileLock { _file: file })
    }
}

fn open(path: &Path) -> Result<File> {
    if path.is_dir() {
        return File::open(path).at(path);
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_releases_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let held = FileLock::acquire(&p, Mode::Exclusive).unwrap();
        assert!(FileLock::try_acquire(&p, Mode::Shared).unwrap().is_none());
        drop(held);
        let a = FileLock::try_acquire(&p, Mode::Shared).unwrap();
        let b = FileLock::try_acquire(&p, Mode::Shared).unwrap();
        assert!(a.is_some() && b.is_some());
        assert!(FileLock::try_acquire(&p, Mode::Exclusive)
            .unwrap()
            .is_none());
    }
}
