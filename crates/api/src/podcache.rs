//! What `ListPods` and `InspectPod` read of each pod, kept between calls, so a listing
//! of many pods costs a `statx` or two per pod rather than opening and parsing its files.
//!
//! A pod's `state.json` is replaced by rename on every change and its manifest is written
//! whole, so a file whose (inode, size, mtime) is unchanged still holds what was read.
//! One gap: an inode freed by the rename can be reused at once, and two writes within
//! one tick of the file system's clock can then carry the same stamp. A file is therefore
//! kept only once it has settled (its mtime well in the past); a younger one is read
//! again on every call. Nothing is ever answered from a stale copy.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pod::layout::PodPaths;
use pod::state::PodState as Recorded;

use crate::v1alpha::KeyValue;

/// Far beyond any file system's timestamp granularity.
const SETTLED: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }

    fn settled(&self, now: SystemTime) -> bool {
        let at = SystemTime::UNIX_EPOCH + Duration::new(self.mtime.0.max(0) as u64, 0);
        now.duration_since(at).is_ok_and(|age| age >= SETTLED)
    }
}

/// One pod's files as last read.
pub struct PodFiles {
    state: Stamp,
    manifest_stamp: Option<Stamp>,
    pub rec: Recorded,
    /// The pod manifest's bytes (absent for a pod not yet prepared).
    pub manifest: Option<Vec<u8>>,
    /// The pod manifest's annotations.
    pub annotations: Vec<KeyValue>,
}

#[derive(Default)]
pub struct PodCache {
    pods: Mutex<HashMap<String, Arc<PodFiles>>>,
}

impl PodCache {
    /// The pod's state and manifest: the kept copy if both files are unchanged, else
    /// read now. None when it has no readable state (yet).
    pub fn read(&self, pod_dir: &Path, uuid: &str) -> Option<Arc<PodFiles>> {
        let paths = PodPaths::new(pod_dir);
        let state = Stamp::of(&paths.state())?;
        let manifest_stamp = Stamp::of(&paths.manifest());
        if let Some(kept) = self.pods.lock().unwrap().get(uuid) {
            if kept.state == state && kept.manifest_stamp == manifest_stamp {
                return Some(kept.clone());
            }
        }
        // Stamped before reading: a write in between makes the next stamp differ, so
        // the newer contents kept under the older stamp are read once more, never missed.
        let rec = Recorded::load(pod_dir).ok()?;
        let manifest = std::fs::read(paths.manifest()).ok();
        let annotations = manifest
            .as_deref()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
            .map(|v| manifest_annotations(&v))
            .unwrap_or_default();
        let files = Arc::new(PodFiles {
            state,
            manifest_stamp,
            rec,
            manifest,
            annotations,
        });
        let now = SystemTime::now();
        let mut pods = self.pods.lock().unwrap();
        if state.settled(now) && manifest_stamp.is_none_or(|m| m.settled(now)) {
            pods.insert(uuid.to_string(), files.clone());
        } else {
            pods.remove(uuid);
        }
        Some(files)
    }

    /// Forgets pods not among `present` (removed since).
    pub fn keep_only(&self, present: &HashSet<&str>) {
        self.pods
            .lock()
            .unwrap()
            .retain(|uuid, _| present.contains(uuid.as_str()));
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.pods.lock().unwrap().len()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pod(dir: &Path, hostname: &str, age: Duration) {
        let rec = Recorded {
            uuid: "u1".into(),
            hostname: hostname.into(),
            ..Default::default()
        };
        rec.save(dir).unwrap();
        let manifest = r#"{"annotations":[{"name":"a","value":"b"}]}"#;
        let paths = PodPaths::new(dir);
        std::fs::write(paths.manifest(), manifest).unwrap();
        let when = SystemTime::now() - age;
        for p in [paths.state(), paths.manifest()] {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }

    #[test]
    fn settled_files_are_kept_and_a_change_is_read() {
        let d = tempfile::tempdir().unwrap();
        let cache = PodCache::default();
        write_pod(d.path(), "one", Duration::from_secs(10));
        let first = cache.read(d.path(), "u1").unwrap();
        assert_eq!(first.rec.hostname, "one");
        assert_eq!(first.annotations[0].key, "a");
        assert_eq!(cache.kept(), 1);
        let again = cache.read(d.path(), "u1").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "an unchanged pod is read again"
        );
        // Rewritten (a new inode, another mtime): read, not answered from the copy.
        write_pod(d.path(), "two", Duration::from_secs(5));
        assert_eq!(cache.read(d.path(), "u1").unwrap().rec.hostname, "two");
        cache.keep_only(&HashSet::new());
        assert_eq!(cache.kept(), 0);
    }

    #[test]
    fn young_files_are_read_every_time() {
        let d = tempfile::tempdir().unwrap();
        let cache = PodCache::default();
        write_pod(d.path(), "one", Duration::ZERO);
        let first = cache.read(d.path(), "u1").unwrap();
        assert_eq!(cache.kept(), 0);
        let again = cache.read(d.path(), "u1").unwrap();
        assert!(!Arc::ptr_eq(&first, &again));
    }

    #[test]
    fn a_pod_without_state_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(PodCache::default().read(d.path(), "u1").is_none());
    }
}
