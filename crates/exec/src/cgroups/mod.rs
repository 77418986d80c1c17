//! Pod and app cgroups on cgroup v1, v2 and hybrid hosts.
//!
//! Layout: a pod gets `<parent>/<pod-uuid>` (parent `vessel` by default) in
//! every hierarchy Vessel uses, with a leaf `_init` for the pod's init and a
//! leaf `<app-name>` per app. The init gets a leaf of its own because v2 lets
//! only leaves hold processes once controllers are enabled for children;
//! using the same shape on v1 keeps one code path.
//!
//! Hierarchies used: on v1, those holding the memory, cpu, cpuacct, pids,
//! devices or freezer controllers (whichever are mounted); on v2 the unified
//! tree with memory, cpu and pids enabled down to the pod as available; on
//! a hybrid host both, the unified tree then mostly tracking processes (and
//! providing `cgroup.kill`). Each limit goes to the hierarchy that has its
//! controller.
//!
//! Device rules: v1 uses `devices.deny`/`devices.allow`; v2 (when no v1
//! devices hierarchy is mounted) attaches an eBPF `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program built in [`bpf`].
//!
//! Order of use: [`Cgroups::create_pod`] with the pod's limits, then
//! [`Cgroups::create_app`] for each app with its limits (v1 refuses new device
//! defaults on a cgroup that already has children, so limits come first),
//! [`Cgroup::open_procs_fds`] before fork and [`join_with_fds`] in the child,
//! then [`Cgroup::oom_kills`] and [`Cgroups::remove_pod`] after the pod.

mod apply;
pub mod bpf;
mod container;
pub mod devices;
mod fs;
mod join;
pub mod limits;
pub mod mountinfo;
mod other_limits;
pub mod stats;
mod teardown;
mod v1;
mod v2;

#[cfg(test)]
mod fake_tree_tests;
#[cfg(test)]
mod fake_update_tests;

use std::collections::BTreeSet;
use std::io;
use std::path::{Component, Path, PathBuf};

pub use devices::{DeviceAccess, DeviceKind, DeviceRule};
pub use join::{fork_into, join_with_fds, move_with_fds, JoinFds};
pub use limits::{shares_to_weight, CpuQuota, Limits, OtherLimits, Throttle, UNLIMITED};
pub use mountinfo::{CgroupMounts, Layout, V1Mount};

/// Default parent of pod cgroups, relative to each hierarchy's mount point.
pub const DEFAULT_PARENT: &str = "vessel";
/// Name of the leaf cgroup holding the pod's init process.
pub const POD_INIT_CGROUP: &str = "_init";

/// v1 controllers whose hierarchies Vessel creates cgroups in.
/// Only what limits or confines a pod: every hierarchy costs a mkdir, an rmdir and a
/// migration per pod. (A pod's processes all die with its pid namespace, so no freezer is
/// needed to kill them; cpuacct is mere accounting.)
const V1_CONTROLLERS_USED: &[&str] = &["memory", "cpu", "pids", "devices"];
/// v2 controllers Vessel enables down to pods when the tree offers them.
const V2_CONTROLLERS_USED: &[&str] = &["cpu", "memory", "pids"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read mount table {path}: {source}")]
    MountTable { path: PathBuf, source: io::Error },
    #[error("no cgroup filesystem is mounted")]
    NoCgroupFs,
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("cannot create cgroup {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("cannot enable controllers in {path}: the cgroup holds processes (cgroup v2 allows processes only in leaves)")]
    InternalProcesses { path: PathBuf },
    #[error("no {controller} controller is available for cgroup {path}")]
    ControllerUnavailable {
        controller: &'static str,
        path: PathBuf,
    },
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    #[error("cannot {op} device filter for cgroup {path}: {source}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} did not reach freezer state {state}")]
    Freeze { path: PathBuf, state: &'static str },
    #[error("processes still running in cgroup {path} after SIGKILL")]
    KillTimeout { path: PathBuf },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

/// Where a new cgroup's processes will live (see [`Cgroups::make_dirs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    /// In the cgroup itself (an OCI container).
    HoldsProcesses,
    /// In cgroups below it (a pod).
    HasChildren,
}

/// Cgroup version of a hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One hierarchy Vessel uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    pub mount_point: PathBuf,
    /// v1: the hierarchy's controllers. v2: the controllers Vessel enables
    /// for its cgroups there.
    pub controllers: Vec<String>,
}

/// A cgroup's directory in one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupDir {
    pub version: Version,
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

impl CgroupDir {
    fn has_controller(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// One logical cgroup (a pod, the pod's init leaf or an app) across every
/// hierarchy Vessel uses. A handle only: making one touches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    relative: PathBuf,
    dirs: Vec<CgroupDir>,
}

/// The cgroups [`Cgroups::create_pod`] makes.
#[derive(Clone, Debug)]
pub struct PodCgroups {
    pub pod: Cgroup,
    /// Leaf for the pod's init process.
    pub init: Cgroup,
}

/// The host's cgroup hierarchies and where Vessel puts its cgroups in them.
#[derive(Clone, Debug)]
pub struct Cgroups {
    mounts: CgroupMounts,
    layout: Layout,
    hierarchies: Vec<Hierarchy>,
    parent: PathBuf,
}

/// Checks one path component supplied by a caller (a pod uuid, an app name).
fn check_name(name: &str) -> Result<(), CgroupError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "not a plain name"
    } else if name.contains('/') || name.contains('\0') {
        "contains '/' or NUL"
    } else if name.len() > 255 {
        "longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(CgroupError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

impl Cgroups {
    /// Detects the hierarchies from `/proc/self/mountinfo`, with the default
    /// parent `vessel`.
    pub fn detect() -> Result<Self, CgroupError> {
        Self::from_mounts(CgroupMounts::read()?)
    }

    /// Uses the given mounts (tests point these at a fake tree). Reads the
    /// unified tree's `cgroup.controllers` to see which v2 controllers exist.
    pub fn from_mounts(mounts: CgroupMounts) -> Result<Self, CgroupError> {
        let layout = mounts.layout().ok_or(CgroupError::NoCgroupFs)?;
        let mut hierarchies: Vec<Hierarchy> = mounts
            .v1
            .iter()
            .filter(|m| {
                m.controllers
                    .iter()
                    .any(|c| V1_CONTROLLERS_USED.contains(&c.as_str()))
            })
            .map(|m| Hierarchy {
                version: Version::V1,
                mount_point: m.mount_point.clone(),
                controllers: m.controllers.clone(),
            })
            .collect();
        // On a hybrid host the v1 hierarchies hold the controllers; the unified tree would
        // only track processes, which the pid namespace already does.
        let use_unified = layout == Layout::V2 || hierarchies.is_empty();
        if let Some(unified) = mounts.unified.as_ref().filter(|_| use_unified) {
            let available = fs::read(&unified.join("cgroup.controllers"))?;
            let controllers = V2_CONTROLLERS_USED
                .iter()
                .filter(|c| available.split_whitespace().any(|a| a == **c))
                .map(|c| c.to_string())
                .collect();
            hierarchies.push(Hierarchy {
                version: Version::V2,
                mount_point: unified.clone(),
                controllers,
            });
        }
        Ok(Cgroups {
            mounts,
            layout,
            hierarchies,
            parent: PathBuf::from(DEFAULT_PARENT),
        })
    }

    /// Puts pod cgroups under `parent` (relative, e.g. `vessel` or
    /// `machine.slice/vessel`) instead of the default.
    pub fn with_parent(mut self, parent: impl Into<PathBuf>) -> Result<Self, CgroupError> {
        let parent = parent.into();
        let plain = parent.components().count() > 0
            && parent
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(CgroupError::InvalidName {
                name: parent.display().to_string(),
                reason: "parent must be a relative path without '..'",
            });
        }
        self.parent = parent;
        Ok(self)
    }

    /// The same host with no hierarchy used: pods get no cgroups (rootless, where none
    /// may be written).
    pub fn without_hierarchies(mut self) -> Self {
        self.hierarchies.clear();
        self
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    pub fn parent(&self) -> &Path {
        &self.parent
    }

    fn cgroup_at(&self, relative: PathBuf) -> Cgroup {
        let dirs = self
            .hierarchies
            .iter()
            .map(|h| CgroupDir {
                version: h.version,
                controllers: h.controllers.clone(),
                path: h.mount_point.join(&relative),
            })
            .collect();
        Cgroup { relative, dirs }
    }

    /// The pod's cgroup (a handle; nothing is created).
    pub fn pod(&self, uuid: &str) -> Result<Cgroup, CgroupError> {
        check_name(uuid)?;
        Ok(self.cgroup_at(self.parent.join(uuid)))
    }

    /// An app's cgroup in a pod (a handle; nothing is created).
    pub fn app(&self, uuid: &str, app: &str) -> Result<Cgroup, CgroupError> {
        check_name(uuid)?;
        check_name(app)?;
        Ok(self.cgroup_at(self.parent.join(uuid).join(app)))
    }

    /// Creates the pod's cgroup with `limits`, then its init leaf. On v2,
    /// enables Vessel's controllers from the tree's root down to the pod.
    pub fn create_pod(&self, uuid: &str, limits: &Limits) -> Result<PodCgroups, CgroupError> {
        let pod = self.pod(uuid)?;
        let init = self.app(uuid, POD_INIT_CGROUP)?;
        let created = self
            .make_dirs(&pod, Leaf::HasChildren)
            .and_then(|()| pod.set_limits(limits))
            .and_then(|()| init.dirs.iter().try_for_each(|d| fs::mkdir(&d.path)));
        if let Err(e) = created {
            // Nothing runs in it yet: undo so a failed start leaves no trace.
            let _ = pod.remove();
            return Err(e);
        }
        Ok(PodCgroups { pod, init })
    }

    /// Makes every level of `cgroup`, enabling the v2 controllers on the way down: in the
    /// levels above it, and in its own directory only when `leaf` says processes will live
    /// in its children (a pod's `_init` and apps). A container's own processes live in
    /// it, and v2 refuses them (EBUSY) in a cgroup whose subtree_control is not empty.
    fn make_dirs(&self, cgroup: &Cgroup, leaf: Leaf) -> Result<(), CgroupError> {
        let depth = cgroup.relative.components().count();
        for (hierarchy, dir) in self.hierarchies.iter().zip(&cgroup.dirs) {
            let mut level = hierarchy.mount_point.clone();
            if hierarchy.version == Version::V2 {
                v2::enable_controllers(&level, &hierarchy.controllers)?;
            }
            for (i, component) in cgroup.relative.components().enumerate() {
                level.push(component);
                fs::mkdir(&level)?;
                if hierarchy.version == Version::V1
                    && hierarchy.controllers.iter().any(|c| c == "cpuset")
                {
                    v1::init_cpuset(&level)?;
                }
                let last = i + 1 == depth;
                if hierarchy.version == Version::V2 && (!last || leaf == Leaf::HasChildren) {
                    v2::enable_controllers(&level, &hierarchy.controllers)?;
                }
            }
            debug_assert_eq!(level, dir.path);
        }
        Ok(())
    }

    /// Creates an app's cgroup in an existing pod cgroup and applies `limits`.
    pub fn create_app(
        &self,
        uuid: &str,
        app: &str,
        limits: &Limits,
    ) -> Result<Cgroup, CgroupError> {
        if app == POD_INIT_CGROUP {
            return Err(CgroupError::InvalidName {
                name: app.to_string(),
                reason: "reserved for the pod's init",
            });
        }
        let cgroup = self.app(uuid, app)?;
        for dir in &cgroup.dirs {
            fs::mkdir(&dir.path)?;
        }
        cgroup.set_limits(limits)?;
        Ok(cgroup)
    }

    /// Every existing `<parent>/<uuid>` directory in every mounted cgroup
    /// hierarchy, including ones Vessel does not normally use, so `gc` finds
    /// whatever an earlier version or a crash left behind.
    pub fn find_pod_leftovers(&self, uuid: &str) -> Result<Vec<CgroupDir>, CgroupError> {
        check_name(uuid)?;
        let relative = self.parent.join(uuid);
        let v1 = self.mounts.v1.iter().map(|m| CgroupDir {
            version: Version::V1,
            controllers: m.controllers.clone(),
            path: m.mount_point.join(&relative),
        });
        let v2 = self.mounts.unified.iter().map(|u| CgroupDir {
            version: Version::V2,
            controllers: Vec::new(),
            path: u.join(&relative),
        });
        Ok(v1.chain(v2).filter(|d| d.path.is_dir()).collect())
    }

    /// Uuids of every pod that has a cgroup under the parent in any mounted
    /// hierarchy, for `gc` to match against the pods it knows.
    pub fn pods_with_cgroups(&self) -> Result<Vec<String>, CgroupError> {
        let roots = self
            .mounts
            .v1
            .iter()
            .map(|m| &m.mount_point)
            .chain(self.mounts.unified.iter());
        let mut uuids = BTreeSet::new();
        for root in roots {
            let parent = root.join(&self.parent);
            let entries = match std::fs::read_dir(&parent) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(CgroupError::Read {
                        path: parent,
                        source,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(|source| CgroupError::Read {
                    path: parent.clone(),
                    source,
                })?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    uuids.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Ok(uuids.into_iter().collect())
    }

    /// Kills whatever still runs in the pod's cgroups and removes them, app
    /// cgroups first. Already-removed cgroups are fine, so this is safe to
    /// repeat and to call from `gc` after the supervisor died.
    pub fn remove_pod(&self, uuid: &str) -> Result<(), CgroupError> {
        teardown::remove(&self.find_pod_leftovers(uuid)?)
    }
}

impl Cgroup {
    /// The path below each hierarchy's mount point, e.g. `vessel/<uuid>/web`.
    pub fn relative_path(&self) -> &Path {
        &self.relative
    }

    /// The directory in each hierarchy.
    pub fn dirs(&self) -> &[CgroupDir] {
        &self.dirs
    }

    /// The directory holding `controller`'s files.
    fn dir_with(&self, controller: &'static str) -> Result<&CgroupDir, CgroupError> {
        self.dirs
            .iter()
            .find(|d| d.has_controller(controller))
            .ok_or_else(|| CgroupError::ControllerUnavailable {
                controller,
                path: self.relative.clone(),
            })
    }

    /// How many processes the kernel's OOM killer killed in this cgroup.
    /// v2 counts kills in the cgroup and its descendants; v1 counts them in
    /// the cgroup whose limit was hit (and on kernels before 4.13, which
    /// keep no count, reports 1 only while the cgroup is under OOM).
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let dir = self.dir_with("memory")?;
        match dir.version {
            Version::V1 => v1::oom_kills(&dir.path),
            Version::V2 => v2::oom_kills(&dir.path),
        }
    }

    /// Whether an OOM kill happened in this cgroup.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        Ok(self.oom_kills()? > 0)
    }

    /// Pids in this cgroup and below, in any hierarchy, without duplicates.
    pub fn processes(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            for cgroup in fs::subtree_post_order(&dir.path)? {
                pids.extend(fs::procs(&cgroup)?);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// SIGKILLs every process in this cgroup and below and waits for them.
    pub fn kill(&self) -> Result<(), CgroupError> {
        teardown::kill_all(&self.dirs)
    }

    /// Kills what runs in it, then removes this cgroup and its children in
    /// every hierarchy; gone already is fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        teardown::remove(&self.dirs)
    }
}
