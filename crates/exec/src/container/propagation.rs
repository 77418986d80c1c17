//! The container's mount propagation (`linux.rootfsPropagation`), in runc's sequence.
//!
//! By default everything in the container's mount namespace is made private first:
//! nothing mounted on the host is seen inside, nothing mounted inside reaches the host
//! (runc's default is `rslave`; private is the safer one, and what a pod gets). When the
//! spec asks for a propagation, the namespace's mounts take it instead, so binds of host
//! paths keep their host peers (`rslave`: host mounts appear inside; `rshared`: and the
//! container's mounts under such binds appear on the host, Kubernetes' Bidirectional).
//! The mount the root is attached under is then made private, so the container's root
//! itself never propagates out; the host's old root is made a slave before it is
//! detached, so that unmount never reaches the host; and the new root finally takes the
//! asked propagation.

use std::os::fd::{BorrowedFd, OwnedFd};

use oci_spec::runtime::Spec;
use rustix::fs::{Mode, OFlags};
use rustix::mount::MountPropagationFlags;

use super::plan::Failure;
use crate::mount::Propagation;

/// The spec's `linux.rootfsPropagation`, if it asks for one.
pub fn asked(spec: &Spec) -> Result<Option<Propagation>, Failure> {
    let Some(text) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    Propagation::parse(&text)
        .map(Some)
        .ok_or_else(|| Failure::msg("linux.rootfsPropagation", format!("unknown value {text:?}")))
}

/// The namespace's mounts: all private, or as asked.
pub fn prepare(asked: Option<Propagation>) -> Result<(), Failure> {
    let flags = match asked {
        Some(p) => p.flags(),
        None => MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    };
    rustix::mount::mount_change("/", flags)
        .map_err(|e| Failure::io("setting the propagation of /", e))
}

/// Makes the mount holding `at` (the root's mount point) private when the namespace's
/// mounts are not, so attaching the root there is not copied to the host's peers.
pub fn isolate_mount_point(asked: Option<Propagation>, at: BorrowedFd<'_>) -> Result<(), Failure> {
    if asked.is_none_or(|p| p.is_private()) {
        return Ok(());
    }
    let step = "making the root's parent mount private";
    let id = rustix::fs::statx(
        at,
        "",
        rustix::fs::AtFlags::EMPTY_PATH,
        rustix::fs::StatxFlags::MNT_ID,
    )
    .map_err(|e| Failure::io(step, e))?
    .stx_mnt_id;
    let table =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Failure::io(step, e))?;
    let point = mount_point_of(&table, id)
        .ok_or_else(|| Failure::msg(step, format!("mount {id} is not in /proc/self/mountinfo")))?;
    rustix::mount::mount_change(point.as_str(), MountPropagationFlags::PRIVATE)
        .map_err(|e| Failure::io(step, e))
}

/// The host's root, opened before the pivot when it may still have host peers (to make
/// it a slave before it is detached); none when everything is private already.
pub fn old_root(asked: Option<Propagation>) -> Result<Option<OwnedFd>, Failure> {
    if asked.is_none_or(|p| p.is_private()) {
        return Ok(None);
    }
    rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(Some)
    .map_err(|e| Failure::io("opening the host's root", e))
}

/// After pivot_root(".", "."): the host's old root made a slave, recursively, so
/// detaching it unmounts nothing on the host. By its fd: "." is still the new root, which
/// must keep its peers.
pub fn before_detaching_host(old_root: Option<OwnedFd>) -> Result<(), Failure> {
    let Some(old_root) = old_root else {
        return Ok(());
    };
    rustix::process::fchdir(&old_root).map_err(|e| Failure::io("chdir to the host's root", e))?;
    rustix::mount::mount_change(
        ".",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(|e| Failure::io("making the host's old root a slave", e))
}

/// The container's root (after the pivot) takes the asked propagation, as runc does.
pub fn finish(asked: Option<Propagation>) -> Result<(), Failure> {
    match asked {
        Some(p) => rustix::mount::mount_change("/", p.flags())
            .map_err(|e| Failure::io("setting the propagation of the root", e)),
        None => Ok(()),
    }
}

/// The mount point of mount `id` in a mountinfo table (octal escapes undone).
fn mount_point_of(table: &str, id: u64) -> Option<String> {
    table.lines().find_map(|line| {
        let mut fields = line.split(' ');
        if fields.next()?.parse::<u64>().ok()? != id {
            return None;
        }
        Some(unescape(fields.nth(3)?))
    })
}

fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push(
                b[i + 1..i + 4]
                    .iter()
                    .fold(0u8, |a, d| a.wrapping_mul(8) + (d - b'0')),
            );
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_point_of_an_id() {
        let table = "22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
                     98 22 0:50 / /run/with\\040space rw shared:40 - tmpfs tmpfs rw\n";
        assert_eq!(mount_point_of(table, 22).as_deref(), Some("/"));
        assert_eq!(
            mount_point_of(table, 98).as_deref(),
            Some("/run/with space")
        );
        assert_eq!(mount_point_of(table, 7), None);
    }

    #[test]
    fn a_spec_asks_by_name_and_unknown_names_are_refused() {
        let spec = |v: &str| -> Spec {
            let mut s = Spec::default();
            let mut l = s.linux().clone().unwrap_or_default();
            l.set_rootfs_propagation(Some(v.to_string()));
            s.set_linux(Some(l));
            s
        };
        assert_eq!(asked(&spec("")).unwrap(), None);
        assert_eq!(
            asked(&spec("rslave")).unwrap(),
            Propagation::parse("rslave")
        );
        let e = asked(&spec("sideways")).unwrap_err();
        assert!(e.message.contains("sideways"), "{}", e.message);
    }
}
