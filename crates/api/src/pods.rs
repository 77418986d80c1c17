//! Pods as the API describes them, read from the pod directories (`pod::Pods`) and their
//! `state.json` and manifest, and the `PodFilter` rules: conditions inside one filter
//! are ANDed, filters are ORed.

use std::path::Path;

use pod::state::PodState as Recorded;
use pod::{PodDir, Pods, State};

use crate::v1alpha::{App, AppState, Image, KeyValue, Pod, PodFilter, PodState};

pub fn api_state(s: State) -> PodState {
    match s {
        State::Embryo => PodState::Embryo,
        State::Preparing => PodState::Preparing,
        State::AbortedPrepare => PodState::AbortedPrepare,
        State::Prepared => PodState::Prepared,
        State::Running => PodState::Running,
        State::Exited => PodState::Exited,
        State::ExitedGarbage | State::Garbage => PodState::Garbage,
    }
}

/// The pod's cgroup (as rkt gives it: the path under the hierarchy root), read from its
/// init's `/proc/PID/cgroup`: `/vessel/<uuid>` below whatever parent it was given.
fn cgroup_of(pid: i32, uuid: &str) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return String::new();
    };
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        if let Some(i) = path.find(uuid) {
            return path[..i + uuid.len()].to_string();
        }
    }
    String::new()
}

fn key_values(m: &std::collections::BTreeMap<String, String>) -> Vec<KeyValue> {
    m.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn manifest_annotations(manifest: &serde_json::Value) -> Vec<KeyValue> {
    manifest
        .get("annotations")
        .and_then(|a| a.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(KeyValue {
                        key: a.get("name")?.as_str()?.to_string(),
                        value: a.get("value")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The API's view of one pod. `detail`: manifest, app states and exit codes too.
pub fn describe(pd: &PodDir, detail: bool) -> Pod {
    let state = pd.state();
    let mut out = Pod {
        id: pd.uuid.clone(),
        pid: -1,
        state: api_state(state) as i32,
        ..Default::default()
    };
    let dir = pd.path();
    let Ok(rec) = Recorded::load(&dir) else {
        return out;
    };
    out.created_at = crate::nanos(rec.created);
    if matches!(
        state,
        State::Embryo | State::Preparing | State::AbortedPrepare
    ) {
        return out;
    }
    out.started_at = crate::nanos(rec.started);
    if let Some(pid) = rec.pid {
        out.pid = pid;
        if state == State::Running {
            out.cgroup = cgroup_of(pid, &pd.uuid);
        }
    }
    let mark = pd.paths().gc_mark();
    if let Ok(m) = std::fs::metadata(&mark).and_then(|m| m.modified()) {
        out.gc_marked_at = crate::nanos(Some(m.into()));
    }
    out.networks = networks(&rec);
    out.apps = rec
        .apps
        .iter()
        .map(|a| App {
            name: a.name.clone(),
            image: Some(Image {
                id: a.image_id.clone(),
                name: if detail {
                    a.image_name.clone()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            state: if !detail {
                AppState::Undefined
            } else if a.pid.is_some() && state == State::Running {
                AppState::Running
            } else if a.exit_code.is_some() || rec.finished.is_some() {
                AppState::Exited
            } else {
                AppState::Undefined
            } as i32,
            exit_code: if detail { a.exit_code.unwrap_or(0) } else { 0 },
            annotations: key_values(&a.annotations),
        })
        .collect();
    // Pod annotations live in the manifest: read it (the one extra file) for those.
    if let Ok(bytes) = std::fs::read(pd.paths().manifest()) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            out.annotations = manifest_annotations(&v);
        }
        if detail {
            out.manifest = bytes;
        }
    }
    out
}

/// The networks a pod joined, with its addresses, as its state records them.
fn networks(rec: &Recorded) -> Vec<crate::v1alpha::Network> {
    let v = serde_json::to_value(rec).unwrap_or_default();
    v.get("networks")
        .and_then(|n| n.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|n| {
                    let name = n.get("name")?.as_str()?.to_string();
                    let ip = |k: &str| {
                        n.get(k)
                            .and_then(|x| x.as_str())
                            .unwrap_or("")
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .to_string()
                    };
                    Some(crate::v1alpha::Network {
                        name,
                        ipv4: ip("ip"),
                        ipv6: ip("ip6"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_all_key_values(have: &[KeyValue], want: &[KeyValue]) -> bool {
    want.iter().all(|w| have.iter().any(|h| h == w))
}

pub fn satisfies(p: &Pod, f: &PodFilter) -> bool {
    (f.ids.is_empty() || f.ids.contains(&p.id))
        && (f.states.is_empty() || f.states.contains(&p.state))
        && f.app_names
            .iter()
            .all(|n| p.apps.iter().any(|a| &a.name == n))
        && f.image_ids.iter().all(|id| {
            p.apps
                .iter()
                .any(|a| a.image.as_ref().is_some_and(|i| &i.id == id))
        })
        && f.network_names
            .iter()
            .all(|n| p.networks.iter().any(|net| &net.name == n))
        && has_all_key_values(&p.annotations, &f.annotations)
        && (f.cgroups.is_empty() || f.cgroups.contains(&p.cgroup))
        && (f.pod_sub_cgroups.is_empty()
            || (!p.cgroup.is_empty() && f.pod_sub_cgroups.iter().any(|c| c.starts_with(&p.cgroup))))
}

pub fn satisfies_any(p: &Pod, filters: &[PodFilter]) -> bool {
    filters.is_empty() || filters.iter().any(|f| satisfies(p, f))
}

/// Every pod but those being deleted (garbage/), oldest first.
pub fn list(vessel_dir: &Path, detail: bool, filters: &[PodFilter]) -> std::io::Result<Vec<Pod>> {
    let pods = Pods::open(vessel_dir).map_err(std::io::Error::other)?;
    let mut out: Vec<Pod> = pods
        .all()
        .map_err(std::io::Error::other)?
        .iter()
        .filter(|p| p.dir != pod::Dir::Garbage)
        .map(|p| describe(p, detail))
        .filter(|p| satisfies_any(p, filters))
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// One pod by its full UUID.
pub fn inspect(vessel_dir: &Path, id: &str) -> Option<Pod> {
    if id.len() != 36 {
        return None;
    }
    let pods = Pods::open(vessel_dir).ok()?;
    let pd = pods.find(id).ok()?;
    (pd.uuid == id).then(|| describe(&pd, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(cgroup: &str) -> Pod {
        Pod {
            id: "u1".into(),
            state: PodState::Running as i32,
            cgroup: cgroup.into(),
            apps: vec![App {
                name: "web".into(),
                image: Some(Image {
                    id: "sha512-a".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            annotations: vec![KeyValue {
                key: "k".into(),
                value: "v".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn filters_and_inside_or_across() {
        let p = pod("/vessel/u1");
        assert!(satisfies_any(&p, &[]));
        let f = |f: PodFilter| satisfies(&p, &f);
        assert!(f(PodFilter {
            ids: vec!["x".into(), "u1".into()],
            ..Default::default()
        }));
        assert!(!f(PodFilter {
            ids: vec!["u1".into()],
            states: vec![PodState::Exited as i32],
            ..Default::default()
        }));
        assert!(!f(PodFilter {
            app_names: vec!["web".into(), "db".into()],
            ..Default::default()
        }));
        assert!(f(PodFilter {
            image_ids: vec!["sha512-a".into()],
            annotations: vec![KeyValue {
                key: "k".into(),
                value: "v".into()
            }],
            ..Default::default()
        }));
        assert!(f(PodFilter {
            pod_sub_cgroups: vec!["/vessel/u1/web".into()],
            ..Default::default()
        }));
        assert!(!satisfies(
            &pod(""),
            &PodFilter {
                pod_sub_cgroups: vec!["/vessel/u1/web".into()],
                ..Default::default()
            }
        ));
        let none = PodFilter {
            ids: vec!["nope".into()],
            ..Default::default()
        };
        let any = PodFilter {
            app_names: vec!["web".into()],
            ..Default::default()
        };
        assert!(!satisfies_any(&p, std::slice::from_ref(&none)));
        assert!(satisfies_any(&p, &[none, any]));
    }
}
