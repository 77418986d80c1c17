//! Pods as the API describes them, read from the pod directories (`pod::Pods`) and their
//! `state.json` and manifest (kept between calls: `podcache`), and the `PodFilter` rules: conditions inside one filter
//! are ANDed, filters are ORed.

use std::collections::HashSet;
use std::path::Path;

use pod::state::PodState as Recorded;
use pod::{PodDir, Pods, State};

use crate::podcache::PodCache;
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

/// The API's view of one pod. `detail`: manifest, app states and exit codes too.
pub fn describe(pd: &PodDir, detail: bool, cache: &PodCache) -> Pod {
    let state = pd.state();
    let mut out = Pod {
        id: pd.uuid.clone(),
        pid: -1,
        state: api_state(state) as i32,
        ..Default::default()
    };
    let Some(files) = cache.read(&pd.path(), &pd.uuid) else {
        return out;
    };
    let rec = &files.rec;
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
    // gc leaves its mark as it moves a pod to exited-garbage/: only those carry one.
    if state == State::ExitedGarbage {
        let mark = pd.paths().gc_mark();
        if let Ok(m) = std::fs::metadata(&mark).and_then(|m| m.modified()) {
            out.gc_marked_at = crate::nanos(Some(m.into()));
        }
    }
    out.networks = networks(rec);
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
    // Pod annotations live in the manifest.
    out.annotations = files.annotations.clone();
    if detail {
        out.manifest = files.manifest.clone().unwrap_or_default();
    }
    out
}

/// The networks a pod joined, with its addresses, as its state records them.
fn networks(rec: &Recorded) -> Vec<crate::v1alpha::Network> {
    rec.networks
        .iter()
        .map(|n| crate::v1alpha::Network {
            name: n.net_name.clone(),
            ipv4: n
                .ip
                .filter(|ip| ip.is_ipv4())
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            ipv6: n
                .ip
                .filter(|ip| ip.is_ipv6())
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
        })
        .collect()
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
pub fn list(
    vessel_dir: &Path,
    detail: bool,
    filters: &[PodFilter],
    cache: &PodCache,
) -> std::io::Result<Vec<Pod>> {
    let pods = Pods::open(vessel_dir).map_err(std::io::Error::other)?;
    let all = pods.all().map_err(std::io::Error::other)?;
    let present: HashSet<&str> = all.iter().map(|p| p.uuid.as_str()).collect();
    cache.keep_only(&present);
    let mut out: Vec<Pod> = all
        .iter()
        .filter(|p| p.dir != pod::Dir::Garbage)
        .map(|p| describe(p, detail, cache))
        .filter(|p| satisfies_any(p, filters))
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// One pod by its full UUID.
pub fn inspect(vessel_dir: &Path, id: &str, cache: &PodCache) -> Option<Pod> {
    if id.len() != 36 {
        return None;
    }
    let pods = Pods::open(vessel_dir).ok()?;
    let pd = pods.find(id).ok()?;
    (pd.uuid == id).then(|| describe(&pd, true, cache))
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
