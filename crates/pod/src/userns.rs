//! `--private-users`: every such pod gets 65536 host user and group ids of its own, from
//! 2^31 up (far above the ids of users and of /etc/subuid ranges). A range is taken by
//! creating `<dir>/userns/<slot>` (O_EXCL, holding the pod's UUID), so two pods never share
//! one, and given back when the pod is removed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{PodError, Result};

pub const RANGE: u32 = 65536;
pub const FIRST_ID: u32 = 1 << 31;
/// Slots that fit below u32::MAX (whose last value means "no id").
pub const SLOTS: u32 = (u32::MAX - FIRST_ID) / RANGE - 1;

/// The first id of a slot's range.
pub fn base_of(slot: u32) -> u32 {
    FIRST_ID + slot * RANGE
}

/// Takes a free slot for `uuid`.
pub fn allocate(vessel_dir: &Path, uuid: &str) -> Result<u32> {
    crate::dir::private_dir(&crate::layout::userns_slots(vessel_dir))?;
    // Start from a slot derived from the UUID: allocations rarely collide.
    let start = u32::from_str_radix(&uuid.replace('-', "")[..8], 16).unwrap_or(0) % SLOTS;
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let p = crate::layout::userns_slot(vessel_dir, slot);
        match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                f.write_all(uuid.as_bytes())
                    .map_err(|e| PodError::io(&p, e))?;
                return Ok(slot);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(PodError::io(&p, e)),
        }
    }
    Err(PodError::Invalid(
        "no free user namespace range is left".into(),
    ))
}

/// Gives back the slot held for `uuid` (no-op if it holds none).
pub fn release(vessel_dir: &Path, slot: u32, uuid: &str) {
    let p = crate::layout::userns_slot(vessel_dir, slot);
    if fs::read_to_string(&p)
        .map(|owner| owner.trim() == uuid)
        .unwrap_or(false)
    {
        let _ = fs::remove_file(&p);
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

    #[test]
    fn slots_are_exclusive_and_released() {
        let t = tempfile::tempdir().unwrap();
        let uuid = "12345678-0000-0000-0000-000000000000";
        let a = allocate(t.path(), uuid).unwrap();
        let b = allocate(t.path(), uuid).unwrap();
        assert_ne!(a, b);
        assert!(base_of(a) >= FIRST_ID);
        assert!(base_of(SLOTS - 1).checked_add(RANGE).is_some());
        release(t.path(), a, "someone-else");
        assert!(t.path().join("userns").join(a.to_string()).exists());
        release(t.path(), a, uuid);
        assert!(!t.path().join("userns").join(a.to_string()).exists());
    }
}
