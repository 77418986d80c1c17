//! `--private-users`: every such pod gets 65536 host user and group ids of its own, from
//! 2^31 up (far above the ids of users and of /etc/subuid ranges).
//!
//! Ranges are host-wide (hardening finding 15): two data dirs on one host must never give
//! two pods the same ids, or a process of one pod could reach the other's files as their
//! owner. So the slots live in one registry for the whole host,
//! [`crate::layout::host_userns_registry`] (under /var/lib: a pod keeps its range across
//! reboots), whatever the `--dir`. A slot is taken by creating `<registry>/<slot>`, which
//! names its pod (data dir and UUID) and the process that took it, under an exclusive
//! flock of `<registry>/.lock`; it is given back when the pod is removed.
//!
//! A registration is stale when its pod is in no state directory of its data dir and the
//! process that made it (which registers before it creates the pod) is gone: a data dir
//! deleted by hand, or a vessel killed while preparing. Allocation takes a stale slot over
//! and `gc` sweeps them. A data dir on a file system that is not mounted looks deleted:
//! its pods' ranges may go to others, and such a pod should be removed, not run.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PodError, Result};

pub const RANGE: u32 = 65536;
pub const FIRST_ID: u32 = 1 << 31;
/// Slots that fit below u32::MAX (whose last value means "no id").
pub const SLOTS: u32 = (u32::MAX - FIRST_ID) / RANGE - 1;

/// The first id of a slot's range.
pub fn base_of(slot: u32) -> u32 {
    FIRST_ID + slot * RANGE
}

/// Who holds a slot: the content of `<registry>/<slot>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The pod's data dir (`--dir`), absolute.
    pub dir: PathBuf,
    pub uuid: String,
    /// The process that registered, and its start time, until the pod exists.
    pub pid: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
}

impl Registration {
    fn is_stale(&self) -> bool {
        !crate::dir::pod_exists(&self.dir, &self.uuid)
            && !crate::state::same_process(self.pid, self.pid_start)
    }
}

/// The host's registry of `--private-users` slots.
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// The one registry of this host.
    pub fn host() -> Registry {
        Registry::at(crate::layout::host_userns_registry())
    }

    /// A registry elsewhere (unit tests).
    pub fn at(root: PathBuf) -> Registry {
        Registry { root }
    }

    /// Opens (makes, root's alone, if need be) the registry and takes its lock.
    fn lock(&self) -> Result<fs::File> {
        if let Some(parent) = self.root.parent() {
            if !parent.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| PodError::io(parent, e))?;
            }
        }
        crate::dir::private_dir(&self.root)?;
        let p = crate::layout::userns_registry_lock(&self.root);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| PodError::io(&p, e))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| PodError::io(&p, e.into()))?;
        Ok(f)
    }

    fn read(&self, slot: u32) -> Option<Registration> {
        let data = fs::read(crate::layout::userns_registration(&self.root, slot)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Takes a free (or stale) slot for pod `uuid` of data dir `vessel_dir`.
    pub fn allocate(&self, vessel_dir: &Path, uuid: &str) -> Result<u32> {
        let _lock = self.lock()?;
        let me = Registration {
            dir: fs::canonicalize(vessel_dir).map_err(|e| PodError::io(vessel_dir, e))?,
            uuid: uuid.to_string(),
            pid: std::process::id() as i32,
            pid_start: crate::state::process_start_time(std::process::id() as i32),
        };
        let bytes = serde_json::to_vec(&me).expect("serialisable");
        // Start from a slot derived from the UUID: allocations rarely meet a taken one.
        let start = u32::from_str_radix(&uuid.replace('-', "")[..8], 16).unwrap_or(0) % SLOTS;
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let p = crate::layout::userns_registration(&self.root, slot);
            match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
                Ok(mut f) => {
                    if let Err(e) = f.write_all(&bytes) {
                        let _ = fs::remove_file(&p);
                        return Err(PodError::io(&p, e));
                    }
                    return Ok(slot);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Unreadable: someone's, whose we cannot tell; kept.
                    if self.read(slot).is_some_and(|r| r.is_stale()) {
                        fs::write(&p, &bytes).map_err(|e| PodError::io(&p, e))?;
                        return Ok(slot);
                    }
                }
                Err(e) => return Err(PodError::io(&p, e)),
            }
        }
        Err(PodError::Invalid(format!(
            "no free user namespace range is left in {}",
            self.root.display()
        )))
    }

    /// Gives back `slot` if pod `uuid` of `vessel_dir` holds it.
    pub fn release(&self, vessel_dir: &Path, slot: u32, uuid: &str) {
        let Ok(_lock) = self.lock() else { return };
        let dir = fs::canonicalize(vessel_dir).unwrap_or_else(|_| vessel_dir.to_path_buf());
        if self
            .read(slot)
            .is_some_and(|r| r.uuid == uuid && r.dir == dir)
        {
            let _ = fs::remove_file(crate::layout::userns_registration(&self.root, slot));
        }
    }

    /// Removes every stale registration (see the module's comment): the slots freed.
    pub fn reclaim_stale(&self) -> Result<Vec<u32>> {
        let _lock = self.lock()?;
        let mut freed = Vec::new();
        let rd = fs::read_dir(&self.root).map_err(|e| PodError::io(&self.root, e))?;
        for ent in rd.flatten() {
            let Some(slot) = ent.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if self.read(slot).is_some_and(|r| r.is_stale()) {
                let _ = fs::remove_file(ent.path());
                freed.push(slot);
            }
        }
        freed.sort_unstable();
        Ok(freed)
    }
}

/// Takes a free slot of the host's registry for `uuid`.
pub fn allocate(vessel_dir: &Path, uuid: &str) -> Result<u32> {
    Registry::host().allocate(vessel_dir, uuid)
}

/// Gives back the slot held for `uuid` (no-op if it holds none). A pod prepared before
/// ranges were host-wide holds its slot in its data dir's `userns/`: given back there.
pub fn release(vessel_dir: &Path, slot: u32, uuid: &str) {
    Registry::host().release(vessel_dir, slot, uuid);
    let legacy = crate::layout::userns_slot(vessel_dir, slot);
    if fs::read_to_string(&legacy).is_ok_and(|owner| owner.trim() == uuid) {
        let _ = fs::remove_file(&legacy);
    }
}

/// Gives a freshly allocated slot back when dropped, unless disarmed (once the pod's state
/// records the slot, removing the pod frees it).
pub struct SlotGuard {
    dir: PathBuf,
    slot: Option<u32>,
    uuid: String,
}

impl SlotGuard {
    pub fn new(vessel_dir: &Path, slot: Option<u32>, uuid: &str) -> SlotGuard {
        SlotGuard {
            dir: vessel_dir.to_path_buf(),
            slot,
            uuid: uuid.to_string(),
        }
    }

    pub fn disarm(&mut self) {
        self.slot = None;
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            release(&self.dir, s, &self.uuid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "12345678-0000-0000-0000-000000000000";

    fn setup() -> (tempfile::TempDir, Registry) {
        let t = tempfile::tempdir().unwrap();
        let reg = Registry::at(t.path().join("registry"));
        (t, reg)
    }

    /// A data dir holding a prepared pod `uuid`.
    fn data_dir(t: &Path, name: &str, uuid: &str) -> PathBuf {
        let d = t.join(name);
        fs::create_dir_all(crate::layout::pods(&d).join("prepared").join(uuid)).unwrap();
        d
    }

    #[test]
    fn slots_are_exclusive_across_data_dirs_and_released() {
        let (t, reg) = setup();
        let (a_dir, b_dir) = (data_dir(t.path(), "a", UUID), data_dir(t.path(), "b", UUID));
        // The same UUID in two stores starts from the same slot: they must still differ.
        let a = reg.allocate(&a_dir, UUID).unwrap();
        let b = reg.allocate(&b_dir, UUID).unwrap();
        assert_ne!(a, b);
        assert!(base_of(a) >= FIRST_ID);
        assert!(base_of(SLOTS - 1).checked_add(RANGE).is_some());
        let held = reg.read(a).unwrap();
        assert_eq!(held.dir, fs::canonicalize(&a_dir).unwrap());
        assert_eq!(held.uuid, UUID);
        // Only its holder gives a slot back.
        reg.release(&a_dir, a, "someone-else");
        reg.release(&b_dir, a, UUID);
        assert!(reg.read(a).is_some());
        reg.release(&a_dir, a, UUID);
        assert!(reg.read(a).is_none());
        assert!(reg.read(b).is_some());
    }

    #[test]
    fn stale_registrations_are_reclaimed_live_ones_kept() {
        let (t, reg) = setup();
        let live_dir = data_dir(t.path(), "live", UUID);
        let live = reg.allocate(&live_dir, UUID).unwrap();
        // A registration whose pod is gone and whose process is dead (no process has
        // started at clock tick 1 since boot, whatever lives at that pid).
        let gone = Registration {
            dir: t.path().join("deleted-data-dir"),
            uuid: UUID.into(),
            pid: i32::MAX,
            pid_start: Some(1),
        };
        let stale_slot = (live + 1) % SLOTS;
        fs::write(
            crate::layout::userns_registration(&reg.root, stale_slot),
            serde_json::to_vec(&gone).unwrap(),
        )
        .unwrap();
        // Registered by a live process (this one) before its pod exists: kept.
        let embryo = Registration {
            dir: t.path().join("not-yet"),
            uuid: UUID.into(),
            pid: std::process::id() as i32,
            pid_start: crate::state::process_start_time(std::process::id() as i32),
        };
        let embryo_slot = (live + 2) % SLOTS;
        fs::write(
            crate::layout::userns_registration(&reg.root, embryo_slot),
            serde_json::to_vec(&embryo).unwrap(),
        )
        .unwrap();
        assert_eq!(reg.reclaim_stale().unwrap(), [stale_slot]);
        assert!(reg.read(live).is_some() && reg.read(embryo_slot).is_some());
        // Allocation takes a stale slot over where it meets one.
        fs::write(
            crate::layout::userns_registration(&reg.root, stale_slot),
            serde_json::to_vec(&gone).unwrap(),
        )
        .unwrap();
        let other = data_dir(t.path(), "other", UUID);
        reg.release(&live_dir, live, UUID);
        let first = reg.allocate(&other, UUID).unwrap();
        assert_eq!(first, live);
        let second = reg.allocate(&other, UUID).unwrap();
        assert_eq!(second, stale_slot, "the stale slot is taken over");
        assert_eq!(
            reg.read(second).unwrap().dir,
            fs::canonicalize(&other).unwrap()
        );
    }
}
