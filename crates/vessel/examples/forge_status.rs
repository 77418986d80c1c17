//! A test helper that plays a hostile app holding CAP_SYS_PTRACE (crates/vessel/tests/it/
//! pod_forged_reports.rs, hardening finding 7): it reaches every descriptor of the pod's
//! init, pid 1, by the two ways that capability opens, and writes fake reports into each:
//! "app 0 exited 0, the pod is done", in the line format the init once wrote to its status
//! pipe and as the channel's tagged messages. Had the supervisor believed one, `status`
//! would show a false exit 0 and `run` would stop forwarding SIGTERM. It prints one line
//! per descriptor reached, then `forge: finished`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const LINES: &[u8] = b"exited 0 0\ndone\n";
const TAGGED: &[&[u8]] = &[b"eexited 0 0", b"edone"];

fn forge(fd: RawFd, how: &str) {
    // SAFETY: writes and a send from buffers we own, on a descriptor we hold.
    let wrote = unsafe { libc::write(fd, LINES.as_ptr().cast(), LINES.len()) } > 0;
    let mut sent = false;
    for m in TAGGED {
        sent |= unsafe { libc::send(fd, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL) } > 0;
    }
    println!("forge: {how}: wrote lines {wrote}, sent messages {sent}");
}

fn main() {
    let targets: Vec<RawFd> = std::fs::read_dir("/proc/1/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_else(|e| {
            println!("forge: /proc/1/fd: {e}");
            Vec::new()
        });
    // 1. Opened again through /proc (a pipe opens so; a socket does not).
    for n in &targets {
        match std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/1/fd/{n}"))
        {
            Ok(f) => forge(f.as_raw_fd(), &format!("/proc/1/fd/{n}")),
            Err(e) => println!("forge: /proc/1/fd/{n}: {e}"),
        }
    }
    // 2. Copied out of the init with pidfd_getfd.
    // SAFETY: raw syscalls with integer arguments; the results are checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, 1, 0) } as RawFd;
    if pidfd < 0 {
        println!("forge: pidfd_open: {}", std::io::Error::last_os_error());
    } else {
        for n in &targets {
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, *n, 0) } as RawFd;
            if fd < 0 {
                println!(
                    "forge: pidfd_getfd {n}: {}",
                    std::io::Error::last_os_error()
                );
                continue;
            }
            // SAFETY: a new descriptor of ours.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            forge(fd.as_raw_fd(), &format!("pidfd_getfd {n}"));
        }
    }
    println!("forge: finished");
}
