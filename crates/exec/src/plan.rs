//! What a pod is to the executor, in two parts:
//! - [`PodPlan`]: what means something on disk, written once by stage0 as the pod's
//!   `plan.json` (paths relative to the pod's directory there) and read at each start:
//!   hostname, namespaces, and per app its root filesystem, OCI runtime spec, user and
//!   handlers;
//! - [`Handover`]: what one start adds, which travels only over the socket to the pod's
//!   init (a sealed copy of the binary, see `crossing`): the plan with absolute paths, and
//!   this start's descriptors (by the supervisor's numbers, renumbered on arrival),
//!   compiled filters and CPU set.

use std::os::fd::RawFd;
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

/// The stage1 flavour a pod runs under: which namespaces of the host it shares.
/// (docs/architecture.md, "Stage1 flavours".)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// The pod's own pid, mount, uts, ipc (and, unless `--net=host`, network) namespaces,
    /// its init as pid 1.
    #[default]
    Default,
    /// rkt's fly: one app in a mount namespace of its own (the image's root, volumes and
    /// mounts); the host's pid, network, ipc and uts namespaces. For system apps.
    Fly,
    /// Each pod in a virtual machine of its own (QEMU): the same init as the guest's
    /// PID 1, the apps' roots shared from the host over 9p (`crate::kvm`).
    Kvm,
}

impl Flavour {
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Default => "default",
            Flavour::Fly => "fly",
            Flavour::Kvm => "kvm",
        }
    }

    /// The pod has a uts namespace of its own (its hostname may be set).
    pub fn own_uts(self) -> bool {
        self != Flavour::Fly
    }
}

/// What accelerates a kvm pod's machine (`--kvm-accel`, docs/architecture.md "kvm"):
/// `auto` uses KVM where it can run the guest's kernel and falls back to QEMU's emulation,
/// with a warning, where it cannot; `kvm` refuses to start instead; `tcg` always emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KvmAccel {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl KvmAccel {
    pub fn parse(s: &str) -> Option<KvmAccel> {
        match s {
            "auto" => Some(KvmAccel::Auto),
            "kvm" => Some(KvmAccel::Kvm),
            "tcg" => Some(KvmAccel::Tcg),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvmAccel::Auto => "auto",
            KvmAccel::Kvm => "kvm",
            KvmAccel::Tcg => "tcg",
        }
    }
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
    /// The stage1 flavour: which namespaces are the pod's own (absent in plans written
    /// before flavours existed: the default).
    #[serde(default)]
    pub flavour: Flavour,
    /// A kvm pod's `--kvm-accel`, when given (else `VESSEL_KVM_ACCEL` when it starts,
    /// else auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvm_accel: Option<KvmAccel>,
    pub hostname: String,
    pub net: NetMode,
    /// An IPC namespace of the pod's own (else the host's).
    #[serde(default = "yes")]
    pub ipc_private: bool,
    /// Host path where the pod's private stage1 root (a tmpfs) is mounted, inside the pod's
    /// mount namespace only.
    pub stage1_dir: PathBuf,
    pub apps: Vec<AppPlan>,
    /// `--private-users`: a user namespace mapping ids 0..size to base..base+size.
    #[serde(default)]
    pub userns: Option<UserNamespace>,
    /// The pod runs rootless (exec::rootless): in the user's user namespace, with no
    /// cgroups, devices bound from the host, layers marked with `user.overlay.*` xattrs.
    #[serde(default)]
    pub rootless: bool,
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
    /// A root composed already, bound instead of an overlay: inside a kvm guest, the
    /// host's overlay of the app as the 9p share shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppPlan {
    pub name: String,
    pub rootfs: RootfsPlan,
    /// The OCI runtime spec the app runs under: process, mounts, masked and read-only
    /// paths, rlimits; its seccomp section is compiled by the supervisor
    /// ([`AppHandover::seccomp_bpf`]).
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
    /// The app gets a terminal (`--interactive`): its stdio is a pty the pod's first
    /// process opens in the app's devpts.
    #[serde(default)]
    pub terminal: bool,
    /// The app speaks `sd_notify` (its image says `supports-systemd-notify`): its spec
    /// mounts a datagram socket of the supervisor's and names it in `NOTIFY_SOCKET`; the
    /// supervisor binds that socket before each start and reads what the app sends.
    #[serde(default)]
    pub notify: bool,
}

/// One start of a pod, as its init receives it over the socket (never on disk).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Handover {
    /// The plan, its paths made absolute, the apps' seccomp profiles left out (compiled in
    /// [`AppHandover::seccomp_bpf`]).
    pub plan: PodPlan,
    /// One per app of the plan, in order.
    pub apps: Vec<AppHandover>,
    /// The v1 `tasks` files of the init's own cgroup (it joins no v2 one: see
    /// `cgroups::join`).
    pub init_cgroup_fds: Vec<RawFd>,
    /// VESSEL_TRACE's origin (monotonic ns), for the init's phase timings.
    pub trace_origin: Option<u64>,
    /// The CPUs the init takes back once handed the pod (`Embryo::spawn` kept it off the
    /// supervisor's CPU until then).
    pub cpus: Option<Vec<u32>>,
    /// A kvm pod: the virtual machine to start (on the host), or the guest's side of it.
    #[serde(default)]
    pub kvm: Option<KvmPlan>,
}

/// What a kvm pod's init needs besides the plan (`crate::kvm`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KvmPlan {
    /// QEMU's system emulator.
    pub qemu: PathBuf,
    /// The guest kernel (a bzImage) and Vessel's initramfs for it.
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// QEMU's accelerator: `kvm`, or `tcg` (emulation, where /dev/kvm cannot boot the kernel).
    pub accel: String,
    pub memory_mib: u64,
    pub cpus: u32,
    /// How long the guest may take to boot and ask for the pod.
    pub boot_timeout_ms: u64,
    /// The guest's kernel messages and QEMU's own, in the pod's directory.
    pub console_log: PathBuf,
    pub qemu_log: PathBuf,
    /// Where the pod's init on the host listens for `vessel enter` (`kvm::enter`).
    #[serde(default)]
    pub enter_socket: PathBuf,
    /// Set in the copy the guest receives: the init runs inside the virtual machine.
    #[serde(default)]
    pub in_guest: bool,
    /// The pod's network interfaces, as the guest recreates them (set by the host's init
    /// once the pod's networks are up: `kvm::nic`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<crate::kvm::nic::GuestNic>,
}

/// An app's part of one start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppHandover {
    /// Its compiled seccomp filter (`SeccompProgram::to_bytes`), or none.
    pub seccomp_bpf: Option<Vec<u8>>,
    /// stdin, stdout, stderr; an app with a terminal has none here (its pty is opened in
    /// the pod, see stage1).
    pub stdio: Option<[RawFd; 3]>,
    /// Its cgroups (`cgroups::JoinFds`): the v1 `tasks` files it writes itself into,
    pub cgroup_fds: Vec<RawFd>,
    /// the v2 directory it is cloned into,
    pub cgroup_v2_dir: Option<RawFd>,
    /// or the v2 `cgroup.procs` the init moves it through (under `--private-users`).
    pub cgroup_v2_procs: Option<RawFd>,
    /// Sockets a service manager passed for it (socket activation), in the order the app
    /// gets them at 3, 4, ..., with their names (`LISTEN_FDNAMES`).
    #[serde(default)]
    pub listen_fds: Vec<RawFd>,
    #[serde(default)]
    pub listen_names: Vec<String>,
}

impl Handover {
    /// Every descriptor number it names, for renumbering on arrival.
    pub fn descriptors_mut(&mut self) -> impl Iterator<Item = &mut RawFd> {
        self.init_cgroup_fds
            .iter_mut()
            .chain(self.apps.iter_mut().flat_map(|a| {
                a.stdio
                    .iter_mut()
                    .flatten()
                    .chain(a.cgroup_fds.iter_mut())
                    .chain(a.cgroup_v2_dir.iter_mut())
                    .chain(a.cgroup_v2_procs.iter_mut())
                    .chain(a.listen_fds.iter_mut())
            }))
    }

    /// The cgroup descriptors (the apps' and the init's), closed once everyone has moved.
    pub fn cgroup_descriptors(&self) -> impl Iterator<Item = &RawFd> {
        self.apps
            .iter()
            .flat_map(|a| {
                a.cgroup_fds
                    .iter()
                    .chain(&a.cgroup_v2_dir)
                    .chain(&a.cgroup_v2_procs)
            })
            .chain(&self.init_cgroup_fds)
    }
}
