//! `--private-users`, the supervisor's half. The pod's first process is cloned into a new
//! user namespace; we write its id maps, and since it then holds no privilege over the
//! host's files, we hand it what it needs: idmapped clones of the image's layers and of
//! its apps' writable directories (files owned by host root show as the pod's root), and
//! cgroup.procs files it may write.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Context, Result};
use crate::mount;
use crate::plan::{PodPlan, UserNamespace};

/// uid_map and gid_map of the child: ids 0..size inside are base..base+size outside.
pub fn write_maps(pid: i32, u: UserNamespace) -> Result<()> {
    let line = format!("0 {} {}\n", u.base, u.size);
    for map in ["uid_map", "gid_map"] {
        let p = format!("/proc/{pid}/{map}");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .ctx(&p)?;
    }
    Ok(())
}

/// The directories each app's overlay needs, in the order the pod's first process
/// attaches them: its lower layers, then the directory holding its upper and work dirs.
pub fn layer_dirs(plan: &PodPlan) -> Vec<Vec<std::path::PathBuf>> {
    plan.apps
        .iter()
        .map(|a| {
            let mut dirs = a.rootfs.lower.clone();
            dirs.push(
                a.rootfs
                    .upper
                    .parent()
                    .expect("upper has a parent")
                    .to_path_buf(),
            );
            dirs
        })
        .collect()
}

/// Clones each directory as a detached mount idmapped into the child's user namespace and
/// sends them, in order, over the channel.
pub fn send_idmapped_layers(
    pid: i32,
    plan: &PodPlan,
    channel: &crate::crossing::channel::SupervisorEnd,
) -> Result<()> {
    let userns: OwnedFd = std::fs::File::open(format!("/proc/{pid}/ns/user"))
        .ctx("the pod's user namespace")?
        .into();
    let layers = layer_dirs(plan).into_iter().flatten().map(|dir| {
        let shown = dir.display().to_string();
        let tree = mount::clone_tree(rustix::fs::CWD, &shown, true)?;
        mount::set_idmap(tree.as_fd(), userns.as_fd()).ctx(&shown)?;
        Ok(tree)
    });
    channel.send_layers(layers)
}
