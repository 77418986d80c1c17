//! A pod's /dev: a small tmpfs with only the standard devices, created with mknod (the
//! devices cgroup limits them to the same list), plus the usual symlinks.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{FileType, Mode};
use rustix::io::Errno;

use crate::error::{Context, Result};

/// (name, major, minor): what every container runtime provides.
pub const STANDARD_DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// Fills a freshly mounted /dev (an fd of the tmpfs root). In a user namespace device
/// nodes cannot be made: the host's are bound instead.
pub fn populate(dev: BorrowedFd<'_>, userns: bool) -> Result<()> {
    for (name, major, minor) in STANDARD_DEVICES {
        if userns {
            let host = crate::mount::open_host(&format!("/dev/{name}"))?;
            let target = crate::mount::open_target(dev, name, crate::mount::Target::File)?;
            crate::mount::bind(
                host.as_fd(),
                target.as_fd(),
                false,
                rustix::mount::MountAttrFlags::empty(),
            )?;
            continue;
        }
        match rustix::fs::mknodat(
            dev,
            *name,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(*major, *minor),
        ) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("mknod /dev/{name}")),
        }
        // mknod honours the umask; make the mode exact.
        rustix::fs::chmodat(
            dev,
            *name,
            Mode::from_raw_mode(0o666),
            rustix::fs::AtFlags::empty(),
        )
        .with_ctx(|| format!("chmod /dev/{name}"))?;
    }
    for (name, target) in LINKS {
        match rustix::fs::symlinkat(*target, dev, *name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("symlink /dev/{name}")),
        }
    }
    for dir in ["pts", "shm", "mqueue"] {
        match rustix::fs::mkdirat(dev, dir, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_ctx(|| format!("mkdir /dev/{dir}")),
        }
    }
    Ok(())
}
