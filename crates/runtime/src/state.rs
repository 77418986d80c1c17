//! A container's record in `<root>/<id>/state.json`, its live status, and the JSON runc
//! prints for `state` and `list`.
//!
//! The record is written by `create` once the container's process is ready and changed
//! only under the container's lock. What a container *is* now is not stored but read:
//! its process (pid and start time, so a recycled pid is never mistaken for it), the exec
//! fifo (present until `start`), and the paused mark `pause` and `resume` keep.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::layout::{ContainerDir, Root};
use crate::status::Status;

/// What `create` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The container's process (its init), on the host.
    pub pid: i32,
    /// Its start time (clock ticks after boot, /proc/PID/stat field 22).
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Set by `pause`, cleared by `resume`.
    #[serde(default)]
    pub paused: bool,
    /// The container's cgroup, relative to each hierarchy's root ("" when it has none).
    #[serde(default)]
    pub cgroup_path: String,
    /// The systemd unit holding that cgroup (`--systemd-cgroup`), stopped by `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    /// The config the container was created with (hooks, namespaces, process defaults).
    pub config: oci_spec::runtime::Spec,
}

/// runc's `state` output, field for field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateView {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

/// A process's state letter and start time from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields go on after the
    // last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl Record {
    /// Whether the recorded process still exists as that process (not a recycled pid, not
    /// a zombie waiting for its parent).
    pub fn process_alive(&self) -> bool {
        self.pid > 0
            && matches!(proc_stat(self.pid), Some((s, start)) if start == self.pid_start && s != 'Z' && s != 'X')
    }

    pub fn status(&self, dir: &ContainerDir) -> Status {
        if self.pid <= 0 {
            Status::Creating
        } else if !self.process_alive() {
            Status::Stopped
        } else if dir.exec_fifo().exists() {
            Status::Created
        } else if self.paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn view(&self, status: Status, owner: String) -> StateView {
        StateView {
            oci_version: self.config.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.to_string(),
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self
                .created
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            annotations: self.annotations.clone(),
            owner,
        }
    }

    /// The state a hook reads on its stdin (the runtime spec's State).
    pub fn hook_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.config.version(),
            "id": self.id,
            "status": match status { Status::Paused => "running", s => s.as_str() },
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        if status != Status::Stopped && self.pid > 0 {
            v["pid"] = self.pid.into();
        }
        v
    }
}

/// Reads a record.
pub fn load(dir: &ContainerDir, id: &str) -> Result<Record> {
    let path = dir.state();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RuntimeError::NotExist),
        Err(e) => return Err(RuntimeError::io("reading", &path)(e)),
    };
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadState {
        id: id.to_string(),
        path,
        reason: e.to_string(),
    })
}

/// Writes a record whole: a reader sees the old one or the new one.
pub fn save(dir: &Path, record: &Record) -> Result<()> {
    let tmp = dir.join(".state.json.tmp");
    let path = dir.join("state.json");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(record).expect("serialisable"))?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(RuntimeError::io("writing", path.clone()))
}

/// An existing container, locked against other commands changing it.
pub struct Container {
    pub dir: ContainerDir,
    pub record: Record,
    _lock: OwnedFd,
}

impl Container {
    /// Finds and locks `id` (waiting for a command holding it).
    pub fn open(root: &Root, id: &str) -> Result<Container> {
        crate::layout::check_id(id)?;
        let dir = root.container(id);
        let lock = match rustix::fs::open(
            dir.lock(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Err(RuntimeError::NotExist),
            Err(e) => return Err(RuntimeError::io("opening", dir.lock())(e.into())),
        };
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| RuntimeError::io("locking", dir.lock())(e.into()))?;
        // A delete that held the lock before us has removed it all.
        let record = load(&dir, id)?;
        Ok(Container {
            dir,
            record,
            _lock: lock,
        })
    }

    /// Reads `id` without locking (state, list).
    pub fn peek(root: &Root, id: &str) -> Result<(ContainerDir, Record)> {
        crate::layout::check_id(id)?;
        let dir = root.container(id);
        let record = load(&dir, id)?;
        Ok((dir, record))
    }

    pub fn status(&self) -> Status {
        self.record.status(&self.dir)
    }

    pub fn save(&self) -> Result<()> {
        save(self.dir.dir(), &self.record)
    }
}

/// The user name owning a container's directory, as runc's `list` shows it.
pub fn owner(dir: &ContainerDir) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir.dir()).map(|m| m.uid()) else {
        return String::new();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: i32, pid_start: u64) -> Record {
        Record {
            id: "c".into(),
            pid,
            pid_start,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: DateTime::parse_from_rfc3339("2026-12-07T00:42:58.5Z")
                .unwrap()
                .with_timezone(&Utc),
            annotations: HashMap::new(),
            paused: false,
            cgroup_path: String::new(),
            systemd_unit: None,
            config: serde_json::from_value(crate::spec_cmd::default_spec()).unwrap(),
        }
    }

    #[test]
    fn status_is_read_from_the_process() {
        let d = tempfile::tempdir().unwrap();
        let dir = ContainerDir::at(d.path());
        let me = std::process::id() as i32;
        let (_, start) = proc_stat(me).unwrap();
        assert_eq!(record(0, 0).status(&dir), Status::Creating);
        assert_eq!(record(me, start).status(&dir), Status::Running);
        // The same pid with another start time is another process.
        assert_eq!(record(me, start + 1).status(&dir), Status::Stopped);
        std::fs::write(dir.exec_fifo(), b"").unwrap();
        assert_eq!(record(me, start).status(&dir), Status::Created);
        std::fs::remove_file(dir.exec_fifo()).unwrap();
        let mut paused = record(me, start);
        paused.paused = true;
        assert_eq!(paused.status(&dir), Status::Paused);
        // A zombie has stopped.
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let (_, cstart) = proc_stat(pid).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(record(pid, cstart).status(&dir), Status::Stopped);
        drop(child);
    }

    #[test]
    fn views_as_runc_prints_them() {
        let r = record(42, 1);
        let text = serde_json::to_string(&r.view(Status::Running, "root".into())).unwrap();
        let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
        let keys = [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner",
        ];
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["created"], "2026-12-07T00:42:58.500Z");
        assert_eq!(v["pid"], 42);
        let stopped = serde_json::to_value(r.view(Status::Stopped, "root".into())).unwrap();
        assert_eq!(stopped["pid"], 0);
        let hook = r.hook_state(Status::Created);
        assert_eq!(hook["status"], "created");
        assert_eq!(hook["pid"], 42);
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_named() {
        let d = tempfile::tempdir().unwrap();
        let dir = ContainerDir::at(d.path());
        save(d.path(), &record(7, 8)).unwrap();
        assert_eq!(load(&dir, "c").unwrap().pid_start, 8);
        std::fs::write(dir.state(), b"{").unwrap();
        let e = load(&dir, "c").unwrap_err().to_string();
        assert!(e.starts_with("state of container c in "), "{e}");
        std::fs::remove_file(dir.state()).unwrap();
        assert!(matches!(load(&dir, "c"), Err(RuntimeError::NotExist)));
    }
}
