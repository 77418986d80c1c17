//! Moving processes into cgroups.
//!
//! The supervisor opens each hierarchy's `cgroup.procs` before the pod
//! starts; the pod's init and each app then join by writing "0" (the writer
//! itself) to those inherited descriptors. That works on v1 and v2 alike and
//! needs no view of cgroupfs from inside the pod. It must happen before the
//! process unshares its cgroup namespace: v2 refuses moves between cgroups
//! outside the writer's namespace root.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;

use super::{fs, Cgroup, CgroupError};

impl Cgroup {
    /// Opens `cgroup.procs` of this cgroup in every hierarchy, write-only and
    /// close-on-exec, for [`join_with_fds`].
    pub fn open_procs_fds(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.dirs()
            .iter()
            .map(|dir| {
                let path = dir.path.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|source| CgroupError::Open { path, source })
            })
            .collect()
    }

    /// Moves the process `pid` (as seen by the caller) and all its threads
    /// into this cgroup in every hierarchy, as `enter` needs.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for dir in self.dirs() {
            fs::write(&dir.path.join("cgroup.procs"), &value)?;
        }
        Ok(())
    }
}

/// Moves the calling process into the cgroups whose `cgroup.procs`
/// descriptors are given, by writing "0" to each.
///
/// Async-signal-safe: no allocation, no locks, only write(2), so it may run
/// in a child between fork and exec. Stops at the first failure and returns
/// its errno.
pub fn join_with_fds<F: AsRawFd>(fds: &[F]) -> Result<(), Errno> {
    move_with_fds(fds, b"0")
}

/// Moves a process (by its pid, as seen from the caller's pid namespace) into the cgroups
/// whose `cgroup.procs` descriptors are given. No allocation.
pub fn move_with_fds<F: AsRawFd>(fds: &[F], pid: &[u8]) -> Result<(), Errno> {
    for fd in fds {
        loop {
            // SAFETY: writes one byte from a static buffer to a caller-owned fd.
            let ret = unsafe { libc::write(fd.as_raw_fd(), pid.as_ptr().cast(), pid.len()) };
            if ret == pid.len() as isize {
                break;
            }
            let errno = Errno::last();
            if ret < 0 && errno == Errno::EINTR {
                continue;
            }
            return Err(if ret < 0 { errno } else { Errno::EIO });
        }
    }
    Ok(())
}
