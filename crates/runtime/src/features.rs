//! `features`: what this runtime supports, in the runtime spec's features.md format
//! (containerd and podman read it to decide what they may ask for).

use serde_json::{json, Value};

/// The oldest and newest runtime spec versions read (bundle.rs checks config.json by them).
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.2.0";

/// Mount options the executor understands (exec::mount::parse_options), plus the
/// propagation options it applies.
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "bind",
    "defaults",
    "dev",
    "exec",
    "nodev",
    "nodiratime",
    "noexec",
    "noatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "unbindable",
    "runbindable",
    "idmap",
    "ridmap",
];

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

pub fn features() -> Value {
    let caps: Vec<String> = exec::caps::Capability::all()
        .map(|c| format!("CAP_{}", c.short_name()))
        .collect();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.vessel.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_as_the_specs_features() {
        let f: oci_spec::runtime::Features = serde_json::from_value(super::features()).unwrap();
        assert_eq!(f.oci_version_max(), super::OCI_VERSION_MAX);
        let caps = f.linux().as_ref().unwrap().capabilities().clone().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"), "{caps:?}");
    }
}
