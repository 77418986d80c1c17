//! A bundle: its config.json read with oci-spec, checked before anything is made, and its
//! root filesystem found without following a symlink out of the bundle.

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// The ociVersion majors and minors this runtime reads: 1.0 to 1.2 (oci-spec's types).
const MAX_MINOR: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("JSON specification file config.json not found in bundle {}", .0.display())]
    NoConfig(PathBuf),
    #[error("bundle {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid JSON runtime spec: {reason}", .path.display())]
    NotJson { path: PathBuf, reason: String },
    #[error("{}: ociVersion {found:?} is not supported (vessel-runtime reads 1.0.0 to 1.{MAX_MINOR}.x)", .path.display())]
    Version { path: PathBuf, found: String },
    #[error("{}: {field}: {problem}", .path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("rootfs {}: {problem}", .path.display())]
    Rootfs { path: PathBuf, problem: String },
}

/// A loaded bundle.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// The root filesystem's path as the state reports it.
    pub rootfs: PathBuf,
    /// The root filesystem, opened (O_PATH) where it was checked: the container is set up
    /// on this descriptor, never on the path again.
    pub rootfs_fd: OwnedFd,
}

/// Reads `<dir>/config.json` and checks it and the root filesystem.
pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
    let dir = std::path::absolute(dir).map_err(|source| BundleError::Unreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    let config = dir.join("config.json");
    let bytes = match std::fs::read(&config) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::NoConfig(dir))
        }
        Err(source) => {
            return Err(BundleError::Unreadable {
                path: config,
                source,
            })
        }
    };
    let spec = parse(&config, &bytes)?;
    validate(&config, &spec)?;
    let (rootfs, rootfs_fd) = open_rootfs(&dir, &config, &spec)?;
    Ok(Bundle {
        dir,
        spec,
        rootfs,
        rootfs_fd,
    })
}

/// Parses config.json: the version first, so a config of another version says so rather
/// than failing on a field it names differently.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Spec, BundleError> {
    let not_json = |e: serde_json::Error| BundleError::NotJson {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(not_json)?;
    let version = value
        .get("ociVersion")
        .and_then(|v| v.as_str())
        .ok_or_else(|| BundleError::Invalid {
            path: path.to_path_buf(),
            field: "ociVersion".into(),
            problem: "missing".into(),
        })?;
    if !version_supported(version) {
        return Err(BundleError::Version {
            path: path.to_path_buf(),
            found: version.to_string(),
        });
    }
    let mut value = value;
    if let Some(process) = value.get_mut("process") {
        respell_scheduler_flags(process);
    }
    serde_json::from_value(value).map_err(not_json)
}

/// The runtime spec names two scheduler flags `SCHED_FLAG_RESET_ON_FORK` and
/// `SCHED_FLAG_DL_OVERRUN`; oci-spec (0.10) reads them only as `SCHED_RESET_ON_FORK` and
/// `SCHED_FLAG_D_L_OVERRUN`. A config in the spec's words is read by respelling those two
/// before parsing (oci-spec's spellings are taken too).
pub fn respell_scheduler_flags(process: &mut serde_json::Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut())
    else {
        return;
    };
    for f in flags {
        let respelt = match f.as_str() {
            Some("SCHED_FLAG_RESET_ON_FORK") => "SCHED_RESET_ON_FORK",
            Some("SCHED_FLAG_DL_OVERRUN") => "SCHED_FLAG_D_L_OVERRUN",
            _ => continue,
        };
        *f = serde_json::Value::from(respelt);
    }
}

/// 1.0.0 to 1.MAX_MINOR.x, with pre-release tags (`1.0.2-dev`).
fn version_supported(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    parts.len() == 3
        && num(0) == Some(1)
        && num(1).is_some_and(|m| m <= MAX_MINOR)
        && num(2).is_some()
}

/// What runc refuses before creating anything, and what Vessel cannot honour.
pub fn validate(path: &Path, spec: &Spec) -> Result<(), BundleError> {
    let invalid = |field: &str, problem: String| BundleError::Invalid {
        path: path.to_path_buf(),
        field: field.to_string(),
        problem,
    };
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing".into()))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "empty".into()));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "empty: nothing to run".into()));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{} is not an absolute path", process.cwd().display()),
        ));
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                "mounts",
                format!("destination {} is not absolute", m.destination().display()),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing".into()))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for ns in &namespaces {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                "linux.namespaces",
                format!("{} is listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    "linux.namespaces",
                    format!("{} path {} is not absolute", ns.typ(), p.display()),
                ));
            }
        }
    }
    let new = |t: LinuxNamespaceType| {
        namespaces
            .iter()
            .any(|n| n.typ() == t && n.path().is_none())
    };
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let mappings = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if new(LinuxNamespaceType::User) && !mappings {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uid and gid mappings".into(),
        ));
    }
    if mappings && !new(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "mappings given without a new user namespace".into(),
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "hostname",
            "cannot set the hostname without a private UTS namespace".into(),
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "domainname",
            "cannot set the domainname without a private UTS namespace".into(),
        ));
    }
    if linux.time_offsets().is_some() && !new(LinuxNamespaceType::Time) {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace".into(),
        ));
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        check_sysctl(key, &has).map_err(|p| invalid("linux.sysctl", format!("{key}: {p}")))?;
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if exec::mount::Propagation::parse(p).is_none() {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("unknown value {p:?} (private, slave, shared, unbindable, or r-)"),
            ));
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        use oci_spec::runtime::LinuxSeccompAction::ScmpActNotify;
        let notify = seccomp.default_action() == ScmpActNotify
            || seccomp
                .syscalls()
                .iter()
                .flatten()
                .any(|s| s.action() == ScmpActNotify);
        if notify {
            return Err(invalid(
                "linux.seccomp",
                "the SCMP_ACT_NOTIFY action is not supported (no listener socket)".into(),
            ));
        }
    }
    Ok(())
}

/// runc's rule: a sysctl may be set only where the container has the namespace it
/// belongs to; anything else would change the host.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let key = key.replace('/', ".");
    let (needs, what) = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
        (LinuxNamespaceType::Ipc, "an IPC namespace")
    } else if key.starts_with("net.") {
        (LinuxNamespaceType::Network, "a network namespace")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        return Err("set it with the hostname and domainname fields".into());
    } else {
        return Err("not in a namespace of the container: it would change the host".into());
    };
    if has(needs) {
        Ok(())
    } else {
        Err(format!("needs {what} of the container's own"))
    }
}

/// Opens the root filesystem: a relative root.path resolves beneath the bundle (a symlink
/// leading out is refused); an absolute one (podman's storage) is taken as given.
fn open_rootfs(dir: &Path, config: &Path, spec: &Spec) -> Result<(PathBuf, OwnedFd), BundleError> {
    let given = spec.root().as_ref().expect("validated").path().clone();
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let (shown, result) = if given.is_absolute() {
        (
            given.clone(),
            rustix::fs::open(&given, flags, Mode::empty()),
        )
    } else {
        let bundle =
            rustix::fs::open(dir, flags, Mode::empty()).map_err(|e| BundleError::Unreadable {
                path: dir.to_path_buf(),
                source: e.into(),
            })?;
        (
            dir.join(&given),
            rustix::fs::openat2(
                &bundle,
                &given,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            ),
        )
    };
    let problem = match result {
        Ok(fd) => return Ok((shown, fd)),
        Err(rustix::io::Errno::NOENT) => "does not exist".to_string(),
        Err(rustix::io::Errno::NOTDIR) => "is not a directory".to_string(),
        Err(rustix::io::Errno::XDEV) => format!(
            "leads out of the bundle (root.path {} in {})",
            given.display(),
            config.display()
        ),
        Err(rustix::io::Errno::LOOP) => "is a symlink loop".to_string(),
        Err(e) => e.to_string(),
    };
    Err(BundleError::Rootfs {
        path: shown,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json() -> serde_json::Value {
        crate::spec_cmd::default_spec()
    }

    fn check(v: &serde_json::Value) -> Result<(), BundleError> {
        let p = Path::new("/b/config.json");
        let spec = parse(p, &serde_json::to_vec(v).unwrap())?;
        validate(p, &spec)
    }

    #[test]
    fn the_default_spec_is_valid() {
        check(&spec_json()).unwrap();
    }

    #[test]
    fn versions() {
        for good in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.2.0+dev"] {
            assert!(version_supported(good), "{good}");
        }
        for bad in ["0.9.0", "2.0.0", "1.3.0", "1.0", "x", "", "1.a.0"] {
            assert!(!version_supported(bad), "{bad}");
        }
        let mut v = spec_json();
        v["ociVersion"] = "0.5.0".into();
        let e = check(&v).unwrap_err().to_string();
        assert!(e.contains("ociVersion \"0.5.0\" is not supported"), "{e}");
        v.as_object_mut().unwrap().remove("ociVersion");
        assert!(check(&v)
            .unwrap_err()
            .to_string()
            .contains("ociVersion: missing"));
    }

    #[test]
    fn not_json_names_the_file() {
        let e = parse(Path::new("/b/config.json"), b"{ not json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/b/config.json: not a valid JSON runtime spec"),
            "{e}"
        );
        let mut v = spec_json();
        v["process"]["args"] = "sh".into();
        let e = check(&v).unwrap_err();
        assert!(matches!(e, BundleError::NotJson { .. }), "{e}");
    }

    #[test]
    fn refusals() {
        type Change = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "process.args: empty",
                Box::new(|v| v["process"]["args"] = serde_json::json!([])),
            ),
            (
                "process.cwd: tmp is not an absolute",
                Box::new(|v| v["process"]["cwd"] = "tmp".into()),
            ),
            (
                "root: missing",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("root");
                }),
            ),
            (
                "process: missing",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("process");
                }),
            ),
            (
                "destination proc is not absolute",
                Box::new(|v| v["mounts"][0]["destination"] = "proc".into()),
            ),
            (
                "pid is listed twice",
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type":"pid"}))
                }),
            ),
            (
                "needs uid and gid mappings",
                Box::new(|v| {
                    v["linux"]["namespaces"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"type":"user"}))
                }),
            ),
            (
                "without a new user namespace",
                Box::new(|v| {
                    v["linux"]["uidMappings"] =
                        serde_json::json!([{"containerID":0,"hostID":1000,"size":1}])
                }),
            ),
            (
                "without a private UTS namespace",
                Box::new(|v| v["linux"]["namespaces"] = serde_json::json!([{"type":"mount"}])),
            ),
            (
                "net.ipv4.ip_forward: needs a network namespace",
                Box::new(|v| {
                    v["linux"]["namespaces"] = serde_json::json!([{"type":"mount"},{"type":"uts"}]);
                    v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward":"1"});
                }),
            ),
            (
                "vm.swappiness: not in a namespace",
                Box::new(|v| v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness":"1"})),
            ),
            (
                "linux.rootfsPropagation",
                Box::new(|v| v["linux"]["rootfsPropagation"] = "sideways".into()),
            ),
            (
                "SCMP_ACT_NOTIFY action is not supported",
                Box::new(|v| {
                    v["linux"]["seccomp"] = serde_json::json!({"defaultAction":"SCMP_ACT_NOTIFY"})
                }),
            ),
            (
                "time offsets need a new time namespace",
                Box::new(|v| {
                    v["linux"]["timeOffsets"] =
                        serde_json::json!({"monotonic":{"secs":1,"nanosecs":0}})
                }),
            ),
        ];
        for (want, change) in cases {
            let mut v = spec_json();
            change(&mut v);
            let e = check(&v)
                .map(|()| "accepted".to_string())
                .unwrap_or_else(|e| e.to_string());
            assert!(e.contains(want), "want {want:?}, got {e:?}");
        }
        let mut v = spec_json();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward":"1", "kernel.shmmax":"1000", "fs.mqueue.msg_max":"20"});
        check(&v).unwrap();
    }

    #[test]
    fn rootfs_must_stay_in_the_bundle() {
        let b = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let mut v = spec_json();
        let write = |v: &serde_json::Value| {
            std::fs::write(b.path().join("config.json"), serde_json::to_vec(v).unwrap()).unwrap()
        };
        write(&v);
        let e = load(b.path()).unwrap_err().to_string();
        assert!(e.contains("rootfs") && e.contains("does not exist"), "{e}");
        std::os::unix::fs::symlink(outside.path(), b.path().join("rootfs")).unwrap();
        let e = load(b.path()).unwrap_err().to_string();
        assert!(e.contains("leads out of the bundle"), "{e}");
        std::fs::remove_file(b.path().join("rootfs")).unwrap();
        std::fs::write(b.path().join("rootfs"), b"").unwrap();
        let e = load(b.path()).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        std::fs::remove_file(b.path().join("rootfs")).unwrap();
        std::fs::create_dir(b.path().join("rootfs")).unwrap();
        let loaded = load(b.path()).unwrap();
        assert_eq!(loaded.rootfs, b.path().join("rootfs"));
        // An absolute root.path is podman's way: taken as given.
        v["root"]["path"] = outside.path().to_str().unwrap().into();
        write(&v);
        assert_eq!(load(b.path()).unwrap().rootfs, outside.path());
        std::fs::remove_file(b.path().join("config.json")).unwrap();
        let e = load(b.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("JSON specification file config.json not found"),
            "{e}"
        );
    }

    #[test]
    fn scheduler_flags_in_the_specs_spelling_are_read() {
        let config = br#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0},
            "scheduler":{"policy":"SCHED_DEADLINE","runtime":1,"deadline":2,"flags":["SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_RECLAIM"]}}}"#;
        let spec = parse(Path::new("/b/config.json"), config).unwrap();
        let flags = spec
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .as_ref()
            .unwrap()
            .flags()
            .clone()
            .unwrap();
        use oci_spec::runtime::LinuxSchedulerFlag::*;
        assert_eq!(
            flags,
            vec![SchedResetOnFork, SchedFlagDLOverrun, SchedFlagReclaim]
        );
    }
}
