//! Cgroups of the OCI runtime's containers: one cgroup at the path the bundle names
//! (`linux.cgroupsPath`, below each hierarchy's root), in every hierarchy Vessel uses plus
//! the v1 freezer, so `pause` and `resume` work on v1, v2 and hybrid hosts alike.

use std::path::{Component, Path};

use super::{fs, v1, Cgroup, CgroupError, Cgroups, Hierarchy, Limits, Version};

impl Cgroups {
    /// Also uses the v1 freezer hierarchy, if mounted (OCI containers can be paused).
    pub fn with_freezer(self) -> Self {
        self.with_controller("freezer")
    }

    /// Also uses `controller` (a v1 name: freezer, cpuacct, cpuset, blkio): on v1 its
    /// hierarchy if mounted; on a v2 host the controller (blkio is v2's io) if the tree
    /// offers it, enabled down to the cgroups made from now on.
    pub fn with_controller(mut self, controller: &str) -> Self {
        if self.layout == super::Layout::V2 {
            let name = if controller == "blkio" {
                "io"
            } else {
                controller
            };
            let offered = self.mounts.unified.as_ref().is_some_and(|u| {
                fs::read(&u.join("cgroup.controllers"))
                    .is_ok_and(|t| t.split_whitespace().any(|c| c == name))
            });
            if let Some(h) = self
                .hierarchies
                .iter_mut()
                .find(|h| h.version == Version::V2)
                .filter(|h| offered && !h.controllers.iter().any(|c| c == name))
            {
                h.controllers.push(name.to_string());
            }
            return self;
        }
        let mount = self.mounts.v1.iter().find(|m| {
            m.controllers.iter().any(|c| c == controller)
                && !self
                    .hierarchies
                    .iter()
                    .any(|h| h.mount_point == m.mount_point)
        });
        if let Some(m) = mount {
            self.hierarchies.push(Hierarchy {
                version: Version::V1,
                mount_point: m.mount_point.clone(),
                controllers: m.controllers.clone(),
            });
            return self;
        }
        let in_v1 = self
            .mounts
            .v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| c == controller));
        if self.layout == super::Layout::Hybrid && !in_v1 {
            self.use_unified_for(controller);
        }
        self
    }

    /// On a hybrid host, a controller that only the unified tree holds (hugetlb on this
    /// kind of machine) is used there: the container gets a v2 cgroup beside its v1 ones,
    /// with just that controller enabled on the way down.
    fn use_unified_for(&mut self, controller: &str) {
        let Some(unified) = self.mounts.unified.clone() else {
            return;
        };
        let offered = fs::read(&unified.join("cgroup.controllers"))
            .is_ok_and(|t| t.split_whitespace().any(|c| c == controller));
        if !offered {
            return;
        }
        match self
            .hierarchies
            .iter_mut()
            .find(|h| h.version == Version::V2)
        {
            Some(h) if h.controllers.iter().any(|c| c == controller) => {}
            Some(h) => h.controllers.push(controller.to_string()),
            None => self.hierarchies.push(Hierarchy {
                version: Version::V2,
                mount_point: unified,
                controllers: vec![controller.to_string()],
            }),
        }
    }

    /// The cgroup at `path` (absolute or relative, always taken below each hierarchy's
    /// root); a handle only. `..` is refused.
    pub fn at(&self, path: &Path) -> Result<Cgroup, CgroupError> {
        let mut relative = std::path::PathBuf::new();
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => relative.push(n),
                _ => {
                    return Err(CgroupError::InvalidName {
                        name: path.display().to_string(),
                        reason: "a cgroup path may not hold '..'",
                    })
                }
            }
        }
        if relative.as_os_str().is_empty() {
            return Err(CgroupError::InvalidName {
                name: path.display().to_string(),
                reason: "the root cgroup is not a container's",
            });
        }
        Ok(self.cgroup_at(relative))
    }

    /// Creates the cgroup at `path` (every level, with Vessel's v2 controllers enabled on
    /// the way) and applies `limits`; on failure, removes what it made.
    pub fn create_at(&self, path: &Path, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let cgroup = self.at(path)?;
        let made = self
            .make_dirs(&cgroup, super::Leaf::HoldsProcesses)
            .and_then(|()| cgroup.set_limits(limits));
        if let Err(e) = made {
            let _ = cgroup.remove();
            return Err(e);
        }
        Ok(cgroup)
    }
}

impl Cgroup {
    /// Freezes (or thaws) every process in the cgroup: v1's freezer, else v2's
    /// cgroup.freeze; waits until the kernel reports it done.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        if let Some(dir) = self
            .dirs
            .iter()
            .find(|d| d.version == Version::V1 && d.has_controller("freezer"))
        {
            return v1::set_freezer_state(&dir.path, if frozen { "FROZEN" } else { "THAWED" });
        }
        let Some(dir) = self.dirs.iter().find(|d| d.version == Version::V2) else {
            return Err(CgroupError::ControllerUnavailable {
                controller: "freezer",
                path: self.relative.clone(),
            });
        };
        fs::write(
            &dir.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        let events = dir.path.join("cgroup.events");
        let want = if frozen { 1 } else { 0 };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while fs::keyed_value(&fs::read(&events)?, "frozen") != Some(want) {
            if std::time::Instant::now() > deadline {
                return Err(CgroupError::Freeze {
                    path: events,
                    state: if frozen { "frozen" } else { "thawed" },
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Ok(())
    }

    /// The same cgroup in the hierarchies where its directory exists only (a container
    /// made without cpuset or blkio limits has no directory there).
    pub fn existing(mut self) -> Cgroup {
        self.dirs.retain(|d| d.path.is_dir());
        self
    }

    /// Makes sure the container is under `controller` (for a limit it was created
    /// without): on v1, makes its directory in that hierarchy and moves every process of
    /// the container there; on v2, enables the controller on the way down to it.
    pub fn ensure_controller(&self, controller: &'static str) -> Result<(), CgroupError> {
        let dir = self.dir_with(controller)?;
        let mut mount_point = dir.path.clone();
        for _ in self.relative.components() {
            mount_point.pop();
        }
        let v2 = dir.version == Version::V2;
        let wanted = [controller.to_string()];
        if v2 && dir.path.is_dir() {
            let mut level = mount_point.clone();
            for c in self.relative.components() {
                super::v2::enable_controllers(&level, &wanted)?;
                level.push(c);
            }
            return Ok(());
        }
        if dir.path.is_dir() {
            return Ok(());
        }
        // A v1 hierarchy, or a hybrid host's unified tree, the container is not in yet.
        let mut level = mount_point.clone();
        for c in self.relative.components() {
            if v2 {
                super::v2::enable_controllers(&level, &wanted)?;
            }
            level.push(c);
            fs::mkdir(&level)?;
            if controller == "cpuset" {
                v1::init_cpuset(&level)?;
            }
        }
        // Processes forking meanwhile: repeat until none is left behind.
        let others: Vec<_> = self
            .dirs
            .iter()
            .filter(|d| d.path != dir.path && d.path.is_dir())
            .cloned()
            .collect();
        let target = dir.path.join("cgroup.procs");
        for _ in 0..10 {
            let inside = fs::procs(&dir.path)?;
            let mut moved = false;
            for d in &others {
                for pid in fs::procs(&d.path)? {
                    if !inside.contains(&pid) {
                        moved = true;
                        match fs::write(&target, &pid.to_string()) {
                            // Gone meanwhile.
                            Err(CgroupError::Write { ref source, .. })
                                if source.raw_os_error() == Some(libc::ESRCH) => {}
                            other => other?,
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    /// The directory of this cgroup in the first hierarchy that holds `controller`.
    pub fn dir_of(&self, controller: &'static str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.has_controller(controller))
            .map(|d| d.path.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::super::mountinfo::CgroupMounts;
    use super::*;

    #[test]
    fn paths_stay_below_the_roots() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let mounts = CgroupMounts::parse(&format!(
            "30 25 0:26 / {} rw shared:4 - cgroup2 cgroup2 rw\n",
            tree.path().display()
        ));
        let cgroups = Cgroups::from_mounts(mounts).unwrap();
        let c = cgroups.at(Path::new("/default/c1")).unwrap();
        assert_eq!(c.relative_path(), Path::new("default/c1"));
        assert_eq!(c.dirs()[0].path, tree.path().join("default/c1"));
        assert!(cgroups.at(Path::new("/a/../../etc")).is_err());
        assert!(cgroups.at(Path::new("/")).is_err());
    }
}
