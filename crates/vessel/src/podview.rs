//! What `list` and `status` say about a pod: rkt's JSON schema (`api/v1` Pod and App:
//! `name` for the UUID, `app_names`, `apps[]`, `created_at`, `networks`, snake_case) plus
//! the facts Vessel records besides, in the same style.
//!
//! rkt writes a pod's `created_at`/`started_at` in seconds since the epoch and an app's
//! times in nanoseconds; so does this. RFC 3339 copies (`created`, `started`, `finished`)
//! are kept for people reading the JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pod::state::{AppState, PodState};
use pod::{PodDir, State};
use serde::Serialize;

/// One pod, as `list --format=json` and `status --format=json` print it.
#[derive(Debug, Serialize)]
pub struct PodView {
    /// The pod's UUID (rkt calls it `name`).
    pub name: String,
    /// rkt's state names: embryo, preparing, aborted prepare, prepared, running, exited,
    /// exited garbage, garbage.
    pub state: &'static str,
    /// One entry per network the pod joined (rkt's netName, netConf, pluginPath, ifName,
    /// ip, args, mask), as the pod's state records them.
    pub networks: Vec<serde_json::Value>,
    pub app_names: Vec<String>,
    pub apps: Vec<AppView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
    // Vessel's own, beyond rkt's schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    pub exited: bool,
    /// The pod init's host pid, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    pub hostname: String,
    /// The stage1 flavour (default, fly); pods made before flavours: default.
    pub stage1: &'static str,
    /// A kvm pod: its machine's accelerator (kvm, tcg) and why it is not kvm, if it fell
    /// back to emulation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accelerator_fallback: Option<String>,
    /// The network mode the pod was run with (`--net`).
    pub net: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_slot: Option<u32>,
    /// Layer keys and image IDs the pod keeps from image gc.
    pub pinned: Vec<String>,
    /// Why the pod failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One app of a pod (rkt's `api/v1` App, plus Vessel's facts).
#[derive(Debug, Serialize)]
pub struct AppView {
    pub name: String,
    /// created, running, exited or unknown.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub image_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountView>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
    // Vessel's own.
    pub image_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// The app's appc annotations given with `--annotation`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels given with `--user-label`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Why the app did not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// rkt's `api/v1` Mount.
#[derive(Debug, Serialize)]
pub struct MountView {
    pub name: String,
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

fn nanos(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.and_then(|t| t.timestamp_nanos_opt())
}

fn seconds(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp())
}

/// What rkt infers for an app of an immutable pod from the pod's state, refined by what
/// Vessel recorded for the app itself.
fn app_state(pod: State, app: &AppState) -> &'static str {
    if app.exit_code.is_some() {
        return "exited";
    }
    match pod {
        State::Prepared => "created",
        State::Running if app.pid.is_some() => "running",
        State::Running => "created",
        State::Exited | State::ExitedGarbage | State::Garbage => "exited",
        State::Embryo | State::Preparing | State::AbortedPrepare => "unknown",
    }
}

impl PodView {
    /// Reads what the pod's directory holds (its state and manifest); a pod too young to
    /// have them is shown with what is known.
    pub fn of(pod: &PodDir) -> PodView {
        let state = pod.state();
        let dir = pod.path();
        let paths = pod::layout::PodPaths::new(&dir);
        // The state file is read once: the record, and its networks as they are stored
        // (rkt's NetInfo fields), shown as they are.
        let raw = std::fs::read(paths.state())
            .ok()
            .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok());
        let networks = raw
            .as_ref()
            .and_then(|v| v.get("networks").and_then(|n| n.as_array()).cloned())
            .unwrap_or_default();
        let recorded = raw
            .and_then(|v| serde_json::from_value::<PodState>(v).ok())
            .unwrap_or_else(|| PodState {
                uuid: pod.uuid.clone(),
                ..Default::default()
            });
        let manifest = std::fs::read(paths.manifest())
            .ok()
            .and_then(|d| schema::PodManifest::from_slice(&d).ok());
        let apps = recorded
            .apps
            .iter()
            .map(|a| {
                let runtime = manifest.as_ref().and_then(|m| m.app(&a.name));
                let app = runtime.and_then(|r| r.app.as_ref());
                let mounts = runtime
                    .map(|r| {
                        r.mounts
                            .iter()
                            .map(|m| {
                                let vol = m
                                    .app_volume
                                    .as_ref()
                                    .or_else(|| manifest.as_ref().and_then(|pm| pm.volume_for(m)));
                                MountView {
                                    name: m.volume.to_string(),
                                    container_path: m.path.clone(),
                                    host_path: vol
                                        .and_then(|v| v.source.clone())
                                        .unwrap_or_default(),
                                    read_only: vol.is_some_and(|v| v.is_read_only()),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let exited = app_state(state, a) == "exited";
                AppView {
                    name: a.name.clone(),
                    state: app_state(state, a),
                    created_at: nanos(recorded.created),
                    started_at: nanos(recorded.started),
                    finished_at: if exited {
                        nanos(recorded.finished)
                    } else {
                        None
                    },
                    exit_code: a.exit_code,
                    image_id: a.image_id.clone(),
                    mounts,
                    user_annotations: app.map(|a| a.user_annotations.clone()).unwrap_or_default(),
                    user_labels: app.map(|a| a.user_labels.clone()).unwrap_or_default(),
                    image_name: a.image_name.clone(),
                    pid: a.pid,
                    signal: a.signal,
                    oom_killed: a.oom_killed,
                    annotations: a.annotations.clone(),
                    labels: a.labels.clone(),
                    error: a.error.clone(),
                }
            })
            .collect();
        PodView {
            name: pod.uuid.clone(),
            state: state.name(),
            networks,
            app_names: recorded.apps.iter().map(|a| a.name.clone()).collect(),
            apps,
            created_at: seconds(recorded.created),
            started_at: seconds(recorded.started),
            user_annotations: manifest
                .as_ref()
                .map(|m| m.user_annotations.clone())
                .unwrap_or_default(),
            user_labels: manifest
                .as_ref()
                .map(|m| m.user_labels.clone())
                .unwrap_or_default(),
            finished_at: seconds(recorded.finished),
            created: recorded.created,
            started: recorded.started,
            finished: recorded.finished,
            exited: matches!(state, State::Exited | State::ExitedGarbage),
            pid: if state == State::Running {
                recorded.pid
            } else {
                None
            },
            pid_start: if state == State::Running {
                recorded.pid_start
            } else {
                None
            },
            hostname: recorded.hostname,
            stage1: recorded.stage1.name(),
            accelerator: recorded.accelerator,
            accelerator_fallback: recorded.accelerator_fallback,
            net: recorded.net,
            userns_slot: recorded.userns_slot,
            pinned: recorded.pinned,
            error: recorded.error,
        }
    }

    /// The NETWORKS column, as rkt prints it: `NAME:ip4=IP`, comma-separated.
    pub fn networks_column(&self) -> String {
        let parts: Vec<String> = self
            .networks
            .iter()
            .map(|n| {
                serde_json::from_value::<pod::network::NetInfo>(n.clone())
                    .map(|n| n.short())
                    .unwrap_or_else(|_| "?".into())
            })
            .collect();
        if parts.is_empty() {
            // A pod in the host's namespace, or with loopback only, as Vessel said before.
            if self.net.is_empty() {
                "-".into()
            } else {
                self.net.clone()
            }
        } else {
            parts.join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_state_follows_pod_and_exit() {
        let running = AppState {
            pid: Some(5),
            ..Default::default()
        };
        let done = AppState {
            exit_code: Some(0),
            ..Default::default()
        };
        assert_eq!(app_state(State::Running, &running), "running");
        assert_eq!(app_state(State::Running, &done), "exited");
        assert_eq!(app_state(State::Prepared, &AppState::default()), "created");
        assert_eq!(app_state(State::Preparing, &AppState::default()), "unknown");
        assert_eq!(app_state(State::Exited, &AppState::default()), "exited");
    }
}
