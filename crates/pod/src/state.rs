//! A pod's recorded facts (`state.json`): written by whoever holds the pod's lock, read by
//! anyone. Replaced by rename, so a reader never sees half a file.
//!
//! The last state of a pod (its apps' exit statuses) must be written even when an app has
//! filled the disk under `--dir` (hardening finding 9). Prepare sets space aside for it:
//! `.state.reserve`, a file of [`reserve_bytes`] allocated blocks. A final save that finds
//! no space gives that file back and writes again, when no app of the pod is left to take
//! the space first. Saves while apps run never touch the reserve: a state they fail to
//! write is written again at the end.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{PodError, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppState {
    pub name: String,
    pub image_id: String,
    pub image_name: String,
    /// Pid in the host's namespace, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Why the app did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodState {
    pub uuid: String,
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// The pod init's host pid, and its start time (clock ticks since boot) so a recycled
    /// pid is never mistaken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    pub hostname: String,
    /// The stage1 flavour the pod runs under (pods made before flavours: the default).
    #[serde(default)]
    pub stage1: exec::plan::Flavour,
    /// A kvm pod: the accelerator its machine runs with (kvm, tcg), since its last start,
    /// and why it is not KVM where `--kvm-accel=auto` fell back to emulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_fallback: Option<String>,
    /// The networks asked for: host, none, or CNI network names.
    pub net: String,
    /// The CNI networks the pod joined (rkt's fields), once their ADD succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<crate::network::NetInfo>,
    pub apps: Vec<AppState>,
    /// The user namespace slot (`--private-users`), given back when the pod is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_slot: Option<u32>,
    /// Layer keys and image IDs the pod uses (kept from image gc).
    #[serde(default)]
    pub pinned: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--log-size`: the cap on each app's log (None: the default; 0: no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_max_bytes: Option<u64>,
    /// `prepare --rm`: whoever runs the pod removes it once it has exited.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_on_exit: bool,
}

impl PodState {
    pub fn load(pod_dir: &Path) -> Result<PodState> {
        let p = crate::layout::PodPaths::new(pod_dir).state();
        let data = std::fs::read(&p).map_err(|e| PodError::io(&p, e))?;
        serde_json::from_slice(&data)
            .map_err(|e| PodError::Invalid(format!("{}: {e}", p.display())))
    }

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("serialisable")
    }

    /// Writes the state beside the old one and renames it over. A write that fails leaves
    /// no half-written file holding space.
    pub fn save(&self, pod_dir: &Path) -> Result<()> {
        let paths = crate::layout::PodPaths::new(pod_dir);
        let (p, tmp) = (paths.state(), paths.state_tmp());
        if let Err(e) = std::fs::write(&tmp, self.to_bytes()) {
            let _ = std::fs::remove_file(&tmp);
            return Err(PodError::io(&tmp, e));
        }
        std::fs::rename(&tmp, &p).map_err(|e| PodError::io(&p, e))
    }

    /// The state of a pod whose apps have all ended: when the disk is full, the pod's
    /// reserve is given back to make room for it.
    pub fn save_final(&self, pod_dir: &Path) -> Result<()> {
        match self.save(pod_dir) {
            Err(PodError::Io { err, .. }) if out_of_space(&err) => {
                let reserve = crate::layout::PodPaths::new(pod_dir).state_reserve();
                match std::fs::remove_file(&reserve) {
                    Ok(()) => self.save(pod_dir),
                    Err(e) => Err(PodError::io(&reserve, e)),
                }
            }
            other => other,
        }
    }

    /// Sets aside the space the final state needs (see the module's comment).
    pub fn reserve(&self, pod_dir: &Path) -> Result<()> {
        let p = crate::layout::PodPaths::new(pod_dir).state_reserve();
        let f = std::fs::File::create(&p).map_err(|e| PodError::io(&p, e))?;
        let len = reserve_bytes(self.to_bytes().len());
        // fallocate takes the blocks; a file system without it gets written zeros.
        match rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::OPNOTSUPP) => {
                use std::io::Write;
                let zeros = vec![0u8; len as usize];
                (&f).write_all(&zeros).map_err(|e| PodError::io(&p, e))
            }
            Err(e) => Err(PodError::io(&p, e.into())),
        }
    }

    /// The first non-zero exit code in app order, else 0.
    pub fn exit_code(&self) -> i32 {
        self.apps
            .iter()
            .filter_map(|a| a.exit_code)
            .find(|c| *c != 0)
            .unwrap_or(0)
    }
}

/// The space kept for a pod's final state: room for its state as prepared written twice
/// over (exit statuses, errors and networks add far less) and never under 64 KiB.
pub fn reserve_bytes(prepared_state_len: usize) -> u64 {
    (64 * 1024).max(2 * prepared_state_len as u64 + 16 * 1024)
}

/// ENOSPC or EDQUOT: the write would succeed on a disk with room.
fn out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Start time of a process (field 22 of /proc/PID/stat), to tell it from a recycled pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether `pid` is still the process recorded with `start`.
pub fn same_process(pid: i32, start: Option<u64>) -> bool {
    match (process_start_time(pid), start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).unwrap();
        assert!(same_process(me, Some(t)));
        assert!(!same_process(me, Some(t + 1)));
    }

    #[test]
    fn exit_code_is_first_non_zero() {
        let s = PodState {
            apps: vec![
                AppState {
                    exit_code: Some(0),
                    ..Default::default()
                },
                AppState {
                    exit_code: Some(3),
                    ..Default::default()
                },
                AppState {
                    exit_code: Some(4),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(s.exit_code(), 3);
    }
}
