//! The registered pods: found by a request's source address, kept on disk
//! (`paths::registration`) so a restarted service still knows every running pod. Each
//! registration is checked and its answers are made once, when it arrives: a request
//! is a lookup.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::proto::Registration;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registration: {0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The process that registered a pod (its supervisor): the pod has ended when it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registrant {
    pub pid: i32,
    /// Start time in clock ticks since boot (/proc/PID/stat field 22): tells a recycled pid.
    pub start: u64,
}

impl Registrant {
    pub fn of(pid: i32) -> Option<Registrant> {
        Some(Registrant {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Whether the process still runs (the same one, not a recycled pid).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// What the service keeps on disk for one pod.
#[derive(Serialize, Deserialize)]
struct Record {
    registration: Registration,
    registrant: Registrant,
}

/// One pod's answers, made at registration.
#[derive(Debug)]
pub struct PodView {
    pub uuid: uuid::Uuid,
    /// Canonical text of the UUID.
    pub uuid_text: String,
    /// The pod manifest, as registered.
    pub manifest: String,
    /// The pod's annotations, as JSON (`null` when it has none).
    pub annotations_json: String,
    pub annotations: Vec<(String, String)>,
    pub apps: HashMap<String, AppView>,
}

#[derive(Debug)]
pub struct AppView {
    /// The image's annotations merged with the pod manifest's for the app, as JSON.
    pub annotations_json: String,
    pub annotations: Vec<(String, String)>,
    pub image_manifest: String,
    pub image_id: String,
}

struct Entry {
    view: Arc<PodView>,
    ips: Vec<IpAddr>,
    registrant: Registrant,
}

pub struct Registry {
    run_dir: PathBuf,
    by_ip: HashMap<IpAddr, Arc<PodView>>,
    by_uuid: HashMap<String, Entry>,
}

fn annotations_of(v: &Value, what: &str) -> Result<Vec<(String, String)>, RegistryError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|a| match (a.get("name"), a.get("value")) {
                (Some(Value::String(n)), Some(Value::String(v))) => Ok((n.clone(), v.clone())),
                _ => Err(RegistryError::Invalid(format!(
                    "{what}: an annotation is not {{\"name\": string, \"value\": string}}"
                ))),
            })
            .collect(),
        _ => Err(RegistryError::Invalid(format!(
            "{what}: annotations are not a list"
        ))),
    }
}

/// appc annotations as JSON: a list of name/value objects, `null` when there are none (the
/// spec's types are nullable; appc's own implementation serves `null`).
fn annotations_json(list: &[(String, String)]) -> String {
    if list.is_empty() {
        return "null".into();
    }
    let items: Vec<Value> = list
        .iter()
        .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
        .collect();
    serde_json::to_string(&items).expect("serialisable")
}

/// The image's annotations, each replaced by the pod manifest's of the same name, then the
/// pod manifest's others (ace.md: "merged with app annotations from Pod Manifest").
fn merge(image: Vec<(String, String)>, pod: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = image;
    for (n, v) in pod {
        match out.iter_mut().find(|(m, _)| *m == n) {
            Some(slot) => slot.1 = v,
            None => out.push((n, v)),
        }
    }
    out
}

/// Checks a registration and makes its answers.
pub fn view_of(reg: &Registration) -> Result<PodView, RegistryError> {
    let bad = |m: String| RegistryError::Invalid(m);
    let uuid = uuid::Uuid::parse_str(&reg.uuid)
        .map_err(|_| bad(format!("uuid {:?} is not a UUID", reg.uuid)))?;
    let uuid_text = uuid.hyphenated().to_string();
    if uuid_text != reg.uuid {
        return Err(bad(format!(
            "uuid {:?} is not in canonical form ({uuid_text})",
            reg.uuid
        )));
    }
    if reg.ips.is_empty() {
        return Err(bad(format!("pod {uuid_text}: no address")));
    }
    let manifest: Value = serde_json::from_str(reg.manifest.get())
        .map_err(|e| bad(format!("pod {uuid_text}: manifest: {e}")))?;
    if manifest.get("acKind").and_then(Value::as_str) != Some("PodManifest") {
        return Err(bad(format!(
            "pod {uuid_text}: manifest: acKind is not PodManifest"
        )));
    }
    let annotations = annotations_of(
        manifest.get("annotations").unwrap_or(&Value::Null),
        "pod manifest",
    )?;
    let pod_apps = manifest
        .get("apps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut apps = HashMap::new();
    for a in &reg.apps {
        let Some(in_pod) = pod_apps
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(&a.name))
        else {
            return Err(bad(format!(
                "pod {uuid_text}: app {:?} is not in the pod manifest",
                a.name
            )));
        };
        let im: Value = serde_json::from_str(a.image_manifest.get())
            .map_err(|e| bad(format!("app {}: image manifest: {e}", a.name)))?;
        let image_annotations = annotations_of(
            im.get("annotations").unwrap_or(&Value::Null),
            &format!("app {}: image manifest", a.name),
        )?;
        let pod_annotations = annotations_of(
            in_pod.get("annotations").unwrap_or(&Value::Null),
            &format!("app {}: pod manifest", a.name),
        )?;
        let merged = merge(image_annotations, pod_annotations);
        apps.insert(
            a.name.clone(),
            AppView {
                annotations_json: annotations_json(&merged),
                annotations: merged,
                image_manifest: a.image_manifest.get().to_string(),
                image_id: a.image_id.clone(),
            },
        );
    }
    Ok(PodView {
        uuid,
        uuid_text,
        manifest: reg.manifest.get().to_string(),
        annotations_json: annotations_json(&annotations),
        annotations,
        apps,
    })
}

impl Registry {
    /// An empty registry keeping its records under `run_dir`.
    pub fn new(run_dir: &Path) -> Registry {
        Registry {
            run_dir: run_dir.to_path_buf(),
            by_ip: HashMap::new(),
            by_uuid: HashMap::new(),
        }
    }

    /// The registrations recorded by an earlier run of the service, with their registrants
    /// (the caller drops those whose registrant has gone). Unreadable records are removed.
    pub fn load(run_dir: &Path) -> Result<Registry, RegistryError> {
        let mut r = Registry::new(run_dir);
        let dir = crate::paths::registrations(run_dir);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(r),
            Err(source) => return Err(RegistryError::Io { path: dir, source }),
        };
        for ent in rd.flatten() {
            let path = ent.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let rec = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
            match rec.map(|rec| r.insert(rec.registration, rec.registrant)) {
                Some(Ok(())) => {}
                _ => {
                    eprintln!(
                        "metadata-service: dropping unreadable registration {}",
                        path.display()
                    );
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(r)
    }

    fn insert(&mut self, reg: Registration, registrant: Registrant) -> Result<(), RegistryError> {
        let view = Arc::new(view_of(&reg)?);
        self.remove(&reg.uuid);
        for ip in &reg.ips {
            // An address now given to this pod was released by whichever pod had it.
            if let Some(old) = self.by_ip.get(ip).map(|v| v.uuid_text.clone()) {
                self.unregister(&old);
            }
            self.by_ip.insert(*ip, view.clone());
        }
        self.by_uuid.insert(
            reg.uuid.clone(),
            Entry {
                view,
                ips: reg.ips.clone(),
                registrant,
            },
        );
        Ok(())
    }

    /// Registers (or registers again) a pod and records it on disk.
    pub fn register(
        &mut self,
        reg: Registration,
        registrant: Registrant,
    ) -> Result<(), RegistryError> {
        view_of(&reg)?;
        let dir = crate::paths::registrations(&self.run_dir);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = crate::paths::registration(&self.run_dir, &reg.uuid);
        let tmp = path.with_extension("tmp");
        let rec = Record {
            registration: reg.clone(),
            registrant,
        };
        fs::write(&tmp, serde_json::to_vec(&rec).expect("serialisable")).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        self.insert(reg, registrant)
    }

    fn remove(&mut self, uuid: &str) -> bool {
        let Some(e) = self.by_uuid.remove(uuid) else {
            return false;
        };
        for ip in e.ips {
            if self.by_ip.get(&ip).is_some_and(|v| Arc::ptr_eq(v, &e.view)) {
                self.by_ip.remove(&ip);
            }
        }
        true
    }

    /// Forgets a pod, on disk too. False if it was not registered.
    pub fn unregister(&mut self, uuid: &str) -> bool {
        let _ = fs::remove_file(crate::paths::registration(&self.run_dir, uuid));
        self.remove(uuid)
    }

    /// Forgets a pod if `registrant` is still the one that registered it.
    pub fn unregister_if(&mut self, uuid: &str, registrant: Registrant) -> bool {
        if self.by_uuid.get(uuid).map(|e| e.registrant) == Some(registrant) {
            self.unregister(uuid)
        } else {
            false
        }
    }

    /// The pod a request from `ip` comes from.
    pub fn by_ip(&self, ip: IpAddr) -> Option<Arc<PodView>> {
        self.by_ip.get(&ip).cloned()
    }

    /// Every registration with its registrant.
    pub fn registrants(&self) -> Vec<(String, Registrant)> {
        self.by_uuid
            .iter()
            .map(|(u, e)| (u.clone(), e.registrant))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_uuid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AppRegistration;
    use serde_json::value::RawValue;

    pub fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    pub fn sample(uuid: &str, ip: &str) -> Registration {
        Registration {
            uuid: uuid.into(),
            ips: vec![ip.parse().unwrap()],
            manifest: raw(
                r#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"web","image":{"id":"sha512-aa"},"annotations":[{"name":"b","value":"pod"},{"name":"c","value":"3"}]}],"annotations":[{"name":"ip-address","value":"10.1.2.3"}]}"#,
            ),
            apps: vec![AppRegistration {
                name: "web".into(),
                image_id: "sha512-aa".into(),
                image_manifest: raw(
                    r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x.com/web","annotations":[{"name":"a","value":"1"},{"name":"b","value":"image"}]}"#,
                ),
            }],
        }
    }

    const U1: &str = "6f1d4a54-4c1b-4e44-8a8e-1f0c2b3d4e5f";
    const U2: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    #[test]
    fn answers_are_made_at_registration() {
        let v = view_of(&sample(U1, "10.0.0.2")).unwrap();
        assert_eq!(
            v.annotations_json,
            r#"[{"name":"ip-address","value":"10.1.2.3"}]"#
        );
        assert_eq!(
            v.apps["web"].annotations_json,
            r#"[{"name":"a","value":"1"},{"name":"b","value":"pod"},{"name":"c","value":"3"}]"#
        );
        assert_eq!(v.apps["web"].image_id, "sha512-aa");
        assert!(v.manifest.starts_with(r#"{"acKind":"PodManifest""#));
    }

    #[test]
    fn no_annotations_is_null() {
        let mut r = sample(U1, "10.0.0.2");
        r.manifest = raw(
            r#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"web","image":{"id":"sha512-aa"}}]}"#,
        );
        r.apps[0].image_manifest = raw(r#"{"acKind":"ImageManifest","name":"x"}"#);
        let v = view_of(&r).unwrap();
        assert_eq!(v.annotations_json, "null");
        assert_eq!(v.apps["web"].annotations_json, "null");
    }

    #[test]
    fn bad_registrations_are_refused_naming_the_field() {
        let mut r = sample("6F1D4A54-4C1B-4E44-8A8E-1F0C2B3D4E5F", "10.0.0.2");
        assert!(view_of(&r).unwrap_err().to_string().contains("canonical"));
        r.uuid = "nope".into();
        assert!(view_of(&r).unwrap_err().to_string().contains("not a UUID"));
        let mut r = sample(U1, "10.0.0.2");
        r.apps[0].name = "other".into();
        assert!(view_of(&r).unwrap_err().to_string().contains("\"other\""));
        let mut r = sample(U1, "10.0.0.2");
        r.manifest = raw(r#"{"acKind":"ImageManifest"}"#);
        assert!(view_of(&r).unwrap_err().to_string().contains("acKind"));
        let mut r = sample(U1, "10.0.0.2");
        r.ips.clear();
        assert!(view_of(&r).unwrap_err().to_string().contains("no address"));
        let mut r = sample(U1, "10.0.0.2");
        r.manifest =
            raw(r#"{"acKind":"PodManifest","apps":[{"name":"web"}],"annotations":[{"name":1}]}"#);
        assert!(view_of(&r).unwrap_err().to_string().contains("annotation"));
    }

    #[test]
    fn registrations_survive_a_reload_and_addresses_move() {
        let d = tempfile::tempdir().unwrap();
        let me = Registrant::of(std::process::id() as i32).unwrap();
        let mut reg = Registry::new(d.path());
        reg.register(sample(U1, "10.0.0.2"), me).unwrap();
        assert_eq!(
            reg.by_ip("10.0.0.2".parse().unwrap()).unwrap().uuid_text,
            U1
        );
        let again = Registry::load(d.path()).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again.registrants(), vec![(U1.to_string(), me)]);
        // A new pod given the same address replaces the old one.
        reg.register(sample(U2, "10.0.0.2"), me).unwrap();
        assert_eq!(reg.len(), 1);
        assert_eq!(
            reg.by_ip("10.0.0.2".parse().unwrap()).unwrap().uuid_text,
            U2
        );
        assert!(!crate::paths::registration(d.path(), U1).exists());
        assert!(reg.unregister(U2));
        assert!(!reg.unregister(U2));
        assert!(reg.by_ip("10.0.0.2".parse().unwrap()).is_none());
        assert!(Registry::load(d.path()).unwrap().is_empty());
    }

    #[test]
    fn a_recycled_pid_is_not_the_registrant() {
        let me = Registrant::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(!Registrant {
            pid: me.pid,
            start: me.start + 1
        }
        .alive());
    }
}
