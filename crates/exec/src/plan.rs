//! What the supervisor hands the pod's init: one plan for the pod, one per app. It goes
//! over a socket to another program image (the init runs from a sealed copy of the binary,
//! see embryo.rs and handover.rs), so it is plain serialisable data: paths, an OCI runtime
//! spec per app, and the supervisor's numbers of the descriptors sent with it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A network namespace of the pod's own with only loopback.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNamespace {
    pub base: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodPlan {
    pub uuid: String,
    pub hostname: String,
    pub net: NetMode,
    /// An IPC namespace of the pod's own (else the host's).
    #[serde(default = "yes")]
    pub ipc_private: bool,
    /// Host path where the pod's private stage1 root (a tmpfs) is mounted, inside the pod's
    /// mount namespace only.
    pub stage1_dir: PathBuf,
    pub apps: Vec<AppPlan>,
    /// The v1 `tasks` files of the init's own cgroup (it joins no v2 one: see
    /// `cgroups::join`).
    #[serde(default)]
    pub init_cgroup_fds: Vec<i32>,
    /// `--private-users`: a user namespace mapping ids 0..size to base..base+size.
    #[serde(default)]
    pub userns: Option<UserNamespace>,
    /// VESSEL_TRACE's origin (monotonic ns), for the init's phase timings.
    #[serde(default)]
    pub trace_origin: Option<u64>,
    /// The CPUs the init takes back once handed its plan (`Embryo::spawn` kept it off the
    /// supervisor's CPU until then).
    #[serde(default)]
    pub cpus: Option<Vec<u32>>,
    /// The apps' /etc/resolv.conf (bound over theirs); None: the image's own.
    #[serde(default)]
    pub resolv_conf: Option<String>,
    /// The apps' /etc/hosts (bound over theirs); None: localhost and the hostname.
    #[serde(default)]
    pub hosts: Option<String>,
    /// The pod's CNI networks are set up while it starts: the supervisor sends the final
    /// /etc/hosts and /etc/resolv.conf once they are (`crossing::network`), and the init
    /// starts no app before.
    #[serde(default)]
    pub network_gate: bool,
}

/// An app's root filesystem: an overlay of read-only layer directories (topmost first)
/// under the pod's own writable upper directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsPlan {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppPlan {
    pub name: String,
    pub rootfs: RootfsPlan,
    /// The OCI runtime spec the app runs under: process, mounts, masked and read-only
    /// paths, rlimits; its seccomp section is compiled by the supervisor into `seccomp_bpf`.
    pub spec: oci_spec::runtime::Spec,
    /// User and group as names or numbers, resolved inside the app's root (its
    /// /etc/passwd and /etc/group) just before exec. None: use the spec's numbers.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// appc event handlers: run in the app's root, with its user and environment, before
    /// it starts and after it exits.
    #[serde(default)]
    pub pre_start: Option<Vec<String>>,
    #[serde(default)]
    pub post_stop: Option<Vec<String>>,
    /// Compiled seccomp filter (SeccompProgram::to_bytes), or none.
    #[serde(default)]
    pub seccomp_bpf: Option<Vec<u8>>,
    /// The app gets a terminal (`--interactive`): its stdio is a pty the pod's first
    /// process opens in the app's devpts.
    #[serde(default)]
    pub terminal: bool,
    /// Inherited fds: the app's stdin, stdout, stderr, and its cgroup.procs files.
    pub stdio: [i32; 3],
    /// The app's cgroups (`cgroups::JoinFds`): v1 `tasks` it writes itself into,
    pub cgroup_fds: Vec<i32>,
    /// the v2 directory it is cloned into,
    #[serde(default)]
    pub cgroup_v2_dir: Option<i32>,
    /// or the v2 `cgroup.procs` the init moves it through (under `--private-users`).
    #[serde(default)]
    pub cgroup_v2_procs: Option<i32>,
}
