//! Rootless cgroup limits: a cgroup v2 subtree delegated to the user (systemd's
//! `user@UID.service` with `Delegate=yes`), found from the process's own cgroup. The
//! subtree's top is the highest cgroup above (or at) the process's own whose directory,
//! `cgroup.procs` and `cgroup.subtree_control` the user owns; pods then go under
//! `<top>/vessel/<uuid>` as root's go under `/sys/fs/cgroup/vessel`, with the controllers
//! the delegation gives (memory, cpu and pids are needed). Without one, the refusal says
//! why (`reason`): no v2 tree, no delegation, or a delegation lacking a controller.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::mountinfo::CgroupMounts;
use super::{CgroupError, Cgroups, V2_CONTROLLERS_USED};

/// A cgroup v2 subtree the user may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegated {
    /// Its top, an absolute path under the cgroup2 mount.
    pub root: PathBuf,
    /// The controllers it offers (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

impl Delegated {
    /// Pod cgroups inside the subtree (`<root>/vessel/<uuid>`).
    pub fn cgroups(&self) -> Result<Cgroups, CgroupError> {
        Cgroups::from_mounts(CgroupMounts {
            v1: Vec::new(),
            unified: Some(self.root.clone()),
        })
    }
}

/// The process's cgroup v2 path (`0::/a/b` in `/proc/self/cgroup`), relative.
pub fn own_path(proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| PathBuf::from(p.trim().trim_start_matches('/')))
}

/// Finds the delegated subtree above the cgroup `own` (relative to the cgroup2 mount
/// `unified`); `mine(dir)` says whether the user owns a cgroup directory and its control
/// files. Err: why there is none, for the user.
pub fn find(unified: &Path, own: &Path, mine: &dyn Fn(&Path) -> bool) -> Result<Delegated, String> {
    let mut top: Option<PathBuf> = None;
    let mut dir = unified.join(own);
    loop {
        if !dir.starts_with(unified) || !mine(&dir) {
            break;
        }
        top = Some(dir.clone());
        if dir == unified || !dir.pop() {
            break;
        }
    }
    let Some(root) = top else {
        return Err(format!(
            "your cgroup ({}) is not delegated to you: no cgroup v2 subtree is yours to write (systemd delegates one to user@UID.service on a cgroup v2 host)",
            Path::new("/").join(own).display()
        ));
    };
    let available = std::fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|e| format!("reading {}: {e}", root.join("cgroup.controllers").display()))?;
    let controllers: Vec<String> = available.split_whitespace().map(str::to_string).collect();
    let missing: Vec<&str> = V2_CONTROLLERS_USED
        .iter()
        .copied()
        .filter(|c| !controllers.iter().any(|a| a == c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the cgroup delegated to you ({}) lacks the {} controller{} (it offers: {}; systemd's Delegate= setting of user@.service names them)",
            root.display(),
            missing.join(", "),
            if missing.len() > 1 { "s" } else { "" },
            if controllers.is_empty() {
                "none".to_string()
            } else {
                controllers.join(" ")
            }
        ));
    }
    Ok(Delegated { root, controllers })
}

/// Whether the calling user owns `dir` and the control files that delegation hands over.
fn owned_by_caller(dir: &Path) -> bool {
    let euid = rustix::process::geteuid().as_raw();
    ["", "cgroup.procs", "cgroup.subtree_control"]
        .iter()
        .all(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.uid() == euid))
}

/// The subtree delegated to the calling user on this host, or why there is none.
pub fn detect() -> Result<Delegated, String> {
    let mounts = CgroupMounts::read().map_err(|e| e.to_string())?;
    let unified = match (&mounts.unified, mounts.layout()) {
        (Some(u), Some(super::Layout::V2)) => u.clone(),
        (_, Some(_)) => {
            return Err("this host keeps its cgroup controllers in v1 hierarchies, which cannot be delegated to a user (rootless limits need a cgroup v2 subtree delegated by systemd)".into())
        }
        _ => return Err("no cgroup file system is mounted".into()),
    };
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let own = own_path(&text).ok_or("/proc/self/cgroup names no cgroup v2 path")?;
    find(&unified, &own, &owned_by_caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// unified/user.slice/user-1000.slice (root's) / user@1000.service (the user's) /
    /// app.slice / me.scope, each with the control files.
    fn tree(controllers: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let unified = tmp.path().join("unified");
        let own = PathBuf::from("user.slice/user-1000.slice/user@1000.service/app.slice/me.scope");
        let mut d = unified.clone();
        std::fs::create_dir_all(&d).unwrap();
        for c in std::iter::once(Path::new("")).chain(own.iter().map(Path::new)) {
            d = d.join(c);
            std::fs::create_dir_all(&d).unwrap();
            for f in [
                "cgroup.procs",
                "cgroup.subtree_control",
                "memory.max",
                "cpu.max",
                "cpu.weight",
                "pids.max",
                "memory.swap.max",
            ] {
                std::fs::write(d.join(f), "").unwrap();
            }
            std::fs::write(d.join("cgroup.controllers"), controllers).unwrap();
        }
        (tmp, unified, own)
    }

    fn users(dir: &Path) -> bool {
        dir.to_string_lossy().contains("user@1000.service")
    }

    #[test]
    fn the_highest_cgroup_the_user_owns_is_the_subtree() {
        let (_t, unified, own) = tree("cpuset cpu io memory pids\n");
        let d = find(&unified, &own, &users).unwrap();
        assert_eq!(
            d.root,
            unified.join("user.slice/user-1000.slice/user@1000.service")
        );
        assert!(d.controllers.contains(&"memory".to_string()));
    }

    #[test]
    fn nothing_delegated_says_which_cgroup_is_not_yours() {
        let (_t, unified, own) = tree("cpu memory pids\n");
        let e = find(&unified, &own, &|_| false).unwrap_err();
        assert!(
            e.contains("/user.slice/user-1000.slice/user@1000.service/app.slice/me.scope"),
            "{e}"
        );
        assert!(e.contains("not delegated"), "{e}");
    }

    #[test]
    fn a_delegation_without_memory_names_it() {
        let (_t, unified, own) = tree("cpu pids\n");
        let e = find(&unified, &own, &users).unwrap_err();
        assert!(e.contains("lacks the memory controller"), "{e}");
        assert!(e.contains("offers: cpu pids"), "{e}");
    }

    #[test]
    fn pods_get_limits_inside_the_subtree() {
        let (_t, unified, own) = tree("cpuset cpu io memory pids\n");
        let d = find(&unified, &own, &users).unwrap();
        let cg = d.cgroups().unwrap();
        assert_eq!(cg.layout(), super::super::Layout::V2);
        // The kernel makes control files in new cgroups; the fake tree has them made.
        for sub in [
            "vessel",
            "vessel/pod1",
            "vessel/pod1/_init",
            "vessel/pod1/web",
        ] {
            let p = d.root.join(sub);
            std::fs::create_dir_all(&p).unwrap();
            for f in [
                "cgroup.procs",
                "cgroup.subtree_control",
                "cgroup.controllers",
                "memory.max",
                "memory.swap.max",
                "cpu.max",
                "cpu.weight",
                "pids.max",
            ] {
                std::fs::write(p.join(f), "").unwrap();
            }
        }
        let limits = super::super::Limits {
            memory_bytes: Some(64 << 20),
            pids: Some(32),
            ..Default::default()
        };
        cg.create_pod("pod1", &limits).unwrap();
        let read = |p: &str| std::fs::read_to_string(d.root.join(p)).unwrap();
        assert_eq!(read("vessel/pod1/memory.max"), "67108864");
        assert_eq!(read("vessel/pod1/pids.max"), "32");
        assert_eq!(read("cgroup.subtree_control"), "+cpu +memory +pids");
        // Nothing is written above the subtree.
        let above = d.root.parent().unwrap();
        assert_eq!(
            std::fs::read_to_string(above.join("cgroup.subtree_control")).unwrap(),
            ""
        );
    }

    #[test]
    fn own_path_is_read_from_the_v2_line() {
        assert_eq!(
            own_path("12:memory:/x\n0::/user.slice/u.scope\n"),
            Some(PathBuf::from("user.slice/u.scope"))
        );
        assert_eq!(own_path("12:memory:/x\n"), None);
    }
}
