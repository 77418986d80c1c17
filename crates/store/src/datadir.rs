//! The data directory (`--dir`) is trusted only when nobody but its user could have changed
//! it (hardening finding 6). Root runs `image gc` and `rm` on what lies below it: if another
//! user owned it, or any directory Vessel keeps there, that user could swap `store/tmp` for
//! a symlink and have root delete whatever it points at. So, as git's safe.directory:
//!
//! - the data dir and every directory Vessel makes under it is a real directory (never a
//!   symlink), owned by the caller, and writable by nobody else;
//! - each directory above the data dir is owned by root or the caller, and writable by
//!   nobody else unless it is sticky (as /tmp), where others cannot rename what is not
//!   theirs.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, StoreError};

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

fn unsafe_dir(path: &Path, reason: String) -> StoreError {
    StoreError::UnsafeDir {
        path: path.to_path_buf(),
        reason,
    }
}

/// The data dir whose ancestors were checked from the host's user namespace. Rootless,
/// the checks run before the process enters its own (exec::rootless), where every
/// directory of root or of another user shows as owned by the overflow id: they are not
/// repeated there.
static CHECKED_ON_HOST: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The data dir this process prepared (as asked, and its canonical path), checked whole.
static PREPARED: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();

/// Makes the data dir if it is missing (0755: `--dir` itself holds nothing secret; what
/// lies below is 0700), then checks it and the directories above it. Returns its canonical
/// path.
pub fn prepare(dir: &Path) -> Result<PathBuf> {
    // A command opens the store and the pods of one data dir: the second open finds it
    // checked (a start spent ~0.3 ms on repeating these ~40 syscalls).
    if let Some((asked, real)) = PREPARED.get() {
        if asked == dir {
            return Ok(real.clone());
        }
    }
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .at(dir)?;
    }
    let real = fs::canonicalize(dir).at(dir)?;
    check_owned(&real)?;
    if CHECKED_ON_HOST.get() == Some(&real) {
        return Ok(real);
    }
    let me = euid();
    for above in real.ancestors().skip(1) {
        let m = fs::symlink_metadata(above).at(above)?;
        if m.uid() != 0 && m.uid() != me {
            return Err(unsafe_dir(
                above,
                format!(
                    "a directory above the data dir {} is owned by uid {}, who could move it",
                    real.display(),
                    m.uid()
                ),
            ));
        }
        if m.mode() & GROUP_OR_OTHER_WRITE != 0 && m.mode() & STICKY == 0 {
            return Err(unsafe_dir(
                above,
                format!(
                    "a directory above the data dir {} is writable by other users (mode {:o}) and not sticky",
                    real.display(),
                    m.mode() & 0o7777
                ),
            ));
        }
    }
    if !crate::userns::IdView::read_now().nested() {
        let _ = CHECKED_ON_HOST.set(real.clone());
    }
    let _ = PREPARED.set((dir.to_path_buf(), real.clone()));
    Ok(real)
}

/// Makes `path` (whose parent is checked) with `mode` unless it exists, then checks it.
/// `mode` never holds group or other write bits, so the umask can only narrow it.
/// Returns what it found there. An existing directory costs one statx (most starts find
/// them all).
pub fn ensure(path: &Path, mode: u32) -> Result<fs::Metadata> {
    debug_assert_eq!(mode & GROUP_OR_OTHER_WRITE, 0);
    match check_owned(path) {
        Err(StoreError::Io { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {}
        found => return found,
    }
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).at(path),
    }
    check_owned(path)
}

/// `path` is a directory (not a symlink to one), the caller's, and writable by it alone.
/// Returns its metadata.
pub fn check_owned(path: &Path) -> Result<fs::Metadata> {
    let m = fs::symlink_metadata(path).at(path)?;
    if m.file_type().is_symlink() {
        return Err(unsafe_dir(
            path,
            "a symlink where Vessel keeps a directory of its own".into(),
        ));
    }
    if !m.is_dir() {
        return Err(unsafe_dir(path, "not a directory".into()));
    }
    let me = euid();
    if m.uid() != me {
        return Err(unsafe_dir(
            path,
            format!(
                "owned by uid {}, not by the caller (uid {me}): that user could redirect what Vessel writes and deletes there",
                m.uid()
            ),
        ));
    }
    if m.mode() & GROUP_OR_OTHER_WRITE != 0 {
        return Err(unsafe_dir(
            path,
            format!(
                "writable by other users (mode {:o}): chmod go-w it if they are to be trusted",
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(m)
}

/// Read each time, never cached: rootless, the same process checks as the user on the
/// host and again as root of its own user namespace.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn root_only() {
        assert!(euid() == 0, "these tests chown files: run them as root");
    }

    #[test]
    fn a_fresh_dir_is_made_and_accepted() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        prepare(&d).unwrap();
        assert!(d.is_dir());
        ensure(&d.join("store"), 0o700).unwrap();
        assert_eq!(fs::metadata(d.join("store")).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn another_users_dir_is_refused() {
        root_only();
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(1000), None).unwrap();
        let e = prepare(&d).unwrap_err().to_string();
        assert!(e.contains("owned by uid 1000"), "{e}");
        // A directory above it owned by another user is refused too.
        let below = d.join("vessel");
        fs::create_dir(&below).unwrap();
        let e = prepare(&below).unwrap_err().to_string();
        assert!(e.contains("above the data dir"), "{e}");
    }

    #[test]
    fn group_or_other_writable_dirs_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir(&d).unwrap();
        for mode in [0o777, 0o775, 0o757] {
            fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
            let e = prepare(&d).unwrap_err().to_string();
            assert!(e.contains("writable by other users"), "{mode:o}: {e}");
        }
        // Sticky and world-writable above (as /tmp) is fine; the data dir itself is not.
        fs::set_permissions(&d, fs::Permissions::from_mode(0o1777)).unwrap();
        fs::create_dir(d.join("v")).unwrap();
        prepare(&d.join("v")).unwrap();
        assert!(prepare(&d).is_err());
    }

    #[test]
    fn a_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), t.path().join("tmp")).unwrap();
        let e = ensure(&t.path().join("tmp"), 0o755)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symlink"), "{e}");
    }
}
