//! A pod's recorded facts (`state.json`): written by whoever holds the pod's lock, read by
//! anyone. Replaced by rename, so a reader never sees half a file.

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

    pub fn save(&self, pod_dir: &Path) -> Result<()> {
        let paths = crate::layout::PodPaths::new(pod_dir);
        let (p, tmp) = (paths.state(), paths.state_tmp());
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("serialisable"))
            .map_err(|e| PodError::io(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| PodError::io(&p, e))
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
