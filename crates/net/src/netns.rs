//! Keeping a pod's network namespace alive by a bind mount of its nsfs file, as
//! `ip netns add` does. A network namespace dies with its last process; the plugins'
//! DEL needs it alive (ptp finds the addresses of its masquerading rules inside it), and
//! the pod's processes may all be gone by then (the pod ended, its supervisor was killed).
//! So the namespace is pinned before ADD and unpinned only after DEL.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The nsfs magic number (statfs f_type of a namespace file).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Bind-mounts the network namespace of process `pid` onto a new empty file `at`.
pub fn pin(pid: i32, at: &Path) -> io::Result<()> {
    // An empty file of mode 0 (as ip-netns makes): nobody opens it for its content.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(at)?;
    let source = format!("/proc/{pid}/ns/net");
    if let Err(e) = rustix::mount::mount_bind(source.as_str(), at) {
        let _ = std::fs::remove_file(at);
        return Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("binding {source} onto {}: {e}", at.display()),
        ));
    }
    Ok(())
}

/// Whether `at` is a pinned network namespace.
pub fn is_pinned(at: &Path) -> bool {
    rustix::fs::statfs(at).is_ok_and(|s| s.f_type == NSFS_MAGIC)
}

/// Detaches the pin at `at` and removes the file. Nothing there is not an error.
pub fn unpin(at: &Path) -> io::Result<()> {
    // Several mounts may be stacked on the file (a pin retried): take them all.
    while is_pinned(at) {
        match rustix::mount::unmount(at, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => break,
            Err(e) => return Err(e.into()),
        }
    }
    match std::fs::remove_file(at) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The inode of the network namespace pinned at `at` (to find processes still in it).
pub fn inode(at: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    is_pinned(at)
        .then(|| std::fs::metadata(at).ok().map(|m| m.ino()))
        .flatten()
}
