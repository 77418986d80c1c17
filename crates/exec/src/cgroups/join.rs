//! Moving processes into cgroups.
//!
//! The supervisor opens what the pod's processes need before the pod starts,
//! so they need no view of cgroupfs from inside the pod. Moving a process by
//! writing to `cgroup.procs` takes a global lock whose first writer after a
//! quiet spell waits for an RCU grace period: 10 to 20 ms on this machine, in
//! a third of the runs of a short pod. Two ways avoid it ([`JoinFds`]):
//! - v1: a single-threaded process writes "0" (itself) to `tasks`; moving
//!   just the calling thread needs no lock on the thread group.
//! - v2: a process is born in its cgroup: clone3(CLONE_INTO_CGROUP) with the
//!   directory's descriptor. Under `--private-users` the init, not root on
//!   the host, may not clone into a cgroup (the permission check is its own,
//!   on the common ancestor); it then moves the app by pid through a
//!   `cgroup.procs` the supervisor opened (the slow, locked way).
//!
//! The init joins its v1 cgroups only: in a v2 hierarchy it stays where
//! vessel ran (it was cloned before the pod's cgroups existed, and moving it
//! would cost the lock). Its apps, which do the pod's work, are all placed.
//! Joining must happen before a process unshares its cgroup namespace.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;

use super::{fs, Cgroup, CgroupError};

/// What a pod's process needs to enter one cgroup (see the module's doc).
#[derive(Debug, Default)]
pub struct JoinFds {
    /// v1: each hierarchy's `tasks`, for [`join_with_fds`] by a single-threaded process.
    pub tasks: Vec<OwnedFd>,
    /// v2: the directory, to clone a process into it.
    pub v2_dir: Option<OwnedFd>,
    /// v2: `cgroup.procs`, to move a process by pid (when it cannot be cloned there).
    pub v2_procs: Option<OwnedFd>,
}

impl Cgroup {
    /// Opens what joining this cgroup takes ([`JoinFds`]), close-on-exec: in v2, the
    /// directory when `clone_into`, else its `cgroup.procs`.
    pub fn open_join_fds(&self, clone_into: bool) -> Result<JoinFds, CgroupError> {
        let mut out = JoinFds::default();
        for dir in self.dirs() {
            let open = |path: std::path::PathBuf, flags: i32, write: bool| {
                OpenOptions::new()
                    .read(!write)
                    .write(write)
                    .custom_flags(libc::O_CLOEXEC | flags)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|source| CgroupError::Open { path, source })
            };
            match dir.version {
                super::Version::V1 => out.tasks.push(open(dir.path.join("tasks"), 0, true)?),
                super::Version::V2 if clone_into => {
                    out.v2_dir = Some(open(dir.path.clone(), libc::O_DIRECTORY, false)?)
                }
                super::Version::V2 => {
                    out.v2_procs = Some(open(dir.path.join("cgroup.procs"), 0, true)?)
                }
            }
        }
        Ok(out)
    }

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

/// Forks like fork(2), the child born in the v2 cgroup whose directory `cgroup` is
/// (clone3 with CLONE_INTO_CGROUP); a plain fork without one. Returns 0 in the child.
///
/// # Safety
/// As fork: the caller must be single-threaded, and the child must only exec or _exit.
pub unsafe fn fork_into(cgroup: Option<std::os::fd::RawFd>) -> Result<libc::pid_t, Errno> {
    let Some(fd) = cgroup else {
        let pid = libc::fork();
        return if pid < 0 { Err(Errno::last()) } else { Ok(pid) };
    };
    // struct clone_args, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: fd as u64,
        ..CloneArgs::default()
    };
    let pid = libc::syscall(
        libc::SYS_clone3,
        &args as *const CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    );
    if pid < 0 {
        Err(Errno::last())
    } else {
        Ok(pid as libc::pid_t)
    }
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
