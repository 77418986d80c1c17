//! `spec`: a default config.json, runc's, for a busybox-like root in `rootfs/`.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Result, RuntimeError};

/// The config `spec` writes: runc's default (a shell on a terminal, a read-only root, the
/// standard mounts, masked and read-only /proc and /sys paths, three capabilities).
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": crate::features::OCI_VERSION_MAX,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "vessel",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// runc's rootless changes: a user namespace mapping the caller alone to root, no network
/// namespace (an unprivileged user cannot give it an interface), /sys bound from the host,
/// no uid=/gid= mount options, no resources.
pub fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    let mut namespaces: Vec<Value> = linux["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["type"] != "network" && n["type"] != "user")
        .collect();
    namespaces.push(json!({"type": "user"}));
    linux["namespaces"] = Value::Array(namespaces);
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(obj) = linux.as_object_mut() {
        obj.remove("resources");
    }
    let mounts: Vec<Value> = spec["mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            if m["destination"] == "/sys" {
                return json!({"destination": "/sys", "type": "none", "source": "/sys",
                              "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| {
                    let o = o.as_str().unwrap_or("");
                    !o.starts_with("uid=") && !o.starts_with("gid=")
                });
            }
            m
        })
        .collect();
    spec["mounts"] = Value::Array(mounts);
}

/// `spec [--bundle DIR] [--rootless]`: writes DIR/config.json, never over an existing one.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let mut spec = default_spec();
    if rootless {
        make_rootless(
            &mut spec,
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
    }
    let path = bundle.join("config.json");
    let mut text = serde_json::to_string_pretty(&spec).expect("serialisable");
    text.push('\n');
    use std::io::Write;
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RuntimeError::Usage(format!(
                "File {} exists. Remove it first",
                path.display()
            )))
        }
        Err(e) => return Err(RuntimeError::io("writing", &path)(e)),
    };
    f.write_all(text.as_bytes())
        .map_err(RuntimeError::io("writing", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_a_runtime_spec() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(default_spec()).unwrap();
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_ref().unwrap(),
            &["sh"]
        );
        let mut rootless = default_spec();
        make_rootless(&mut rootless, 1000, 1001);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(rootless.clone()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let types: Vec<String> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ().to_string())
            .collect();
        assert!(
            types.contains(&"user".to_string()) && !types.contains(&"net".to_string()),
            "{types:?}"
        );
        assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 1000);
        assert_eq!(linux.gid_mappings().as_ref().unwrap()[0].host_id(), 1001);
        assert!(linux.resources().is_none());
        let devpts = &rootless["mounts"][2]["options"];
        assert!(
            !devpts.as_array().unwrap().iter().any(|o| o == "gid=5"),
            "{devpts}"
        );
        assert_eq!(rootless["mounts"][5]["type"], "none");
        let p = std::path::Path::new("/b/config.json");
        crate::bundle::validate(p, &spec).unwrap();
    }

    #[test]
    fn never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), false).unwrap();
        let e = write(d.path(), true).unwrap_err().to_string();
        assert!(e.contains("exists. Remove it first"), "{e}");
    }
}
