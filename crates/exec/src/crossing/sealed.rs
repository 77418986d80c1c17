//! The one way a process crosses into a pod with our code: it execs the *sealed* binary, a
//! detached, read-only, nosuid mount of vessel (`mount::read_only_self`), never the host's
//! file. Used by the pod's first process (which becomes the init) and by `vessel enter`'s
//! (which becomes the app's), and later by the OCI runtime's create and exec.
//!
//! Nothing crosses but one descriptor, the *carrier* (the socket to the supervisor, or a
//! memfd saying what to do), on [`CARRY_FD`], and stdio; the environment is empty.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use crate::error::Error;

/// Where the exec'd binary finds its carrier.
pub const CARRY_FD: RawFd = 3;

/// Replaces this process with the sealed binary `exe` as `argv0`, `carry` on fd 3, stdio
/// kept, everything else closed at exec. With `become_ns_root`, first becomes root of the
/// user namespace the process is in: its host ids mean nothing there, and exec would take
/// every capability from a process that is not the namespace's root. Allocation-free until
/// it fails; returns only on failure.
pub fn exec_sealed(
    exe: BorrowedFd<'_>,
    carry: BorrowedFd<'_>,
    argv0: &CStr,
    become_ns_root: bool,
) -> Error {
    // SAFETY: raw id syscalls in this single-threaded process.
    if become_ns_root
        && unsafe {
            libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(0, 0, 0) != 0
                || libc::setresuid(0, 0, 0) != 0
        }
    {
        return Error::last_os("becoming the user namespace's root");
    }
    let mut exe_fd = exe.as_raw_fd();
    // SAFETY: fcntl, dup2 and close_range on descriptors of this process.
    unsafe {
        // The carrier goes to a known number: the binary's descriptor must not sit there.
        if exe_fd == CARRY_FD {
            exe_fd = libc::fcntl(exe_fd, libc::F_DUPFD_CLOEXEC, CARRY_FD + 1);
            if exe_fd < 0 {
                return Error::last_os("moving the binary's descriptor");
            }
        }
        if carry.as_raw_fd() != CARRY_FD && libc::dup2(carry.as_raw_fd(), CARRY_FD) < 0 {
            return Error::last_os("placing the carrier on fd 3");
        }
        if libc::fcntl(CARRY_FD, libc::F_SETFD, 0) < 0 {
            return Error::last_os("keeping the carrier open");
        }
        // Everything else closes at exec.
        libc::syscall(
            libc::SYS_close_range,
            (CARRY_FD + 1) as u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let argv = [argv0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated argv and envp arrays of valid C strings.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe_fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Error::last_os("executing the sealed binary")
}
