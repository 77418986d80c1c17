//! What the runtime hands a container's process, and the reports it sends back.

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

/// What each descriptor sent with the plan is, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FdRole {
    /// A detached recursive copy of the root filesystem's mount, made by the runtime from
    /// the directory it checked (a process in a new mount or user namespace could not).
    Rootfs,
    /// The read end of the exec fifo: `start` writes a byte to it.
    ExecFifo,
    /// A socket connected to the client's console socket (gets the pty's master).
    ConsoleSocket,
    /// One of `--preserve-fds`, in order: it becomes fd 3, 4, ...
    Preserved,
    /// A namespace to join (the spec's type name).
    Namespace(String),
    /// A v1 `tasks` file of the container's cgroup.
    CgroupTasks,
    /// A v2 `cgroup.procs` of the container's cgroup.
    CgroupProcs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub id: String,
    /// Where the root filesystem sits on the host: only the mount point the copy is
    /// attached on before the pivot.
    pub rootfs_path: std::path::PathBuf,
    /// The config (its seccomp section compiled into `seccomp_bpf`).
    pub spec: Spec,
    pub fds: Vec<FdRole>,
    /// Namespaces the process makes itself (not made by the clone): CLONE_NEW* flags.
    pub unshare: i32,
    /// Wait for `start` on the exec fifo (create), or go on at once (run).
    pub wait_for_start: bool,
    /// A process joining a running container (`exec`): every namespace is joined, its
    /// root is already mounted; no hostname, sysctls, hooks or start.
    pub exec: bool,
    /// Stop once the namespaces exist, for the runtime's prestart/createRuntime hooks.
    pub runtime_hooks: bool,
    /// The state hooks read on stdin (createContainer, startContainer).
    pub hook_state: String,
    pub seccomp_bpf: Option<Vec<u8>>,
    /// The CPUs to take back (see `Embryo::spawn`).
    pub cpus: Option<Vec<u32>>,
}

/// The process's reports to the runtime, one JSON datagram each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Report {
    /// Namespaces made: run the prestart and createRuntime hooks, then say go.
    Hooks,
    /// Everything is set up; the process waits for commit.
    Ready,
    /// A step failed: the process exits.
    Failed(Failure),
}

/// A failed step, with its errno when a system call said no.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub step: String,
    pub errno: Option<i32>,
    pub message: String,
}

impl Failure {
    pub fn io(step: impl Into<String>, e: impl Into<std::io::Error>) -> Failure {
        let e: std::io::Error = e.into();
        Failure {
            step: step.into(),
            errno: e.raw_os_error(),
            message: e.to_string(),
        }
    }

    /// A step of exec's own that failed (its context and errno kept).
    pub fn from_error(step: impl Into<String>, e: crate::error::Error) -> Failure {
        Failure {
            step: step.into(),
            errno: e.errno(),
            message: e.to_string(),
        }
    }

    pub fn msg(step: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            step: step.into(),
            errno: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

/// The runtime's answers: hooks done, go on; the container is recorded, commit.
pub const GO: u8 = b'g';
pub const COMMIT: u8 = b'c';

/// The namespaces of a running container's process `pid`, all joined (`exec`): each
/// type its spec lists, through /proc/PID/ns.
pub fn namespaces_of(spec: &Spec, pid: i32) -> Namespaces {
    let mut out = Namespaces::default();
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        let t = ns.typ();
        let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t)));
        if t == LinuxNamespaceType::Pid {
            out.join_pid = Some(path);
        } else {
            out.join.push((t, path));
        }
    }
    sort_joined(&mut out.join);
    out
}

/// The name of a namespace type under /proc/PID/ns.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The user namespace first: the others are joined with its rights. The mount
/// namespace last: joining it changes root and cwd.
fn sort_joined(join: &mut [(LinuxNamespaceType, std::path::PathBuf)]) {
    join.sort_by_key(|(t, _)| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
}

/// How the spec's namespaces are made: by the clone, by the process itself, or joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Namespaces {
    pub clone: i32,
    pub unshare: i32,
    /// (type, path), user first.
    pub join: Vec<(LinuxNamespaceType, std::path::PathBuf)>,
    /// A pid namespace to join: the runtime enters it before the clone (a pid namespace
    /// applies to children).
    pub join_pid: Option<std::path::PathBuf>,
}

pub fn flag_of(t: LinuxNamespaceType) -> i32 {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The spec's namespaces, sorted into how each is made.
///
/// New namespaces come with the clone (one system call for all), except: the cgroup
/// namespace, made after the process joined its cgroup (so that cgroup is its root); the
/// time namespace, which applies to children and is entered by the process itself; and,
/// when a user namespace is joined, every other new one (they must belong to it).
pub fn namespaces(spec: &Spec) -> Namespaces {
    let mut out = Namespaces::default();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let user_joined = list
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
    for ns in &list {
        let t = ns.typ();
        match ns.path() {
            Some(p) if t == LinuxNamespaceType::Pid => out.join_pid = Some(p.clone()),
            Some(p) => out.join.push((t, p.clone())),
            None => match t {
                LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time => out.unshare |= flag_of(t),
                LinuxNamespaceType::User | LinuxNamespaceType::Pid => out.clone |= flag_of(t),
                _ if user_joined => out.unshare |= flag_of(t),
                _ => out.clone |= flag_of(t),
            },
        }
    }
    sort_joined(&mut out.join);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(namespaces: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": namespaces}
        }))
        .unwrap()
    }

    #[test]
    fn new_namespaces_come_with_the_clone() {
        let n = namespaces(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "cgroup"}
        ])));
        assert_eq!(
            n.clone,
            libc::CLONE_NEWPID
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS
                | libc::CLONE_NEWNS
        );
        assert_eq!(n.unshare, libc::CLONE_NEWCGROUP);
        assert!(n.join.is_empty() && n.join_pid.is_none());
    }

    #[test]
    fn joined_ones_in_order() {
        let n = namespaces(&spec(serde_json::json!([
            {"type": "mount", "path": "/proc/1/ns/mnt"},
            {"type": "network", "path": "/run/netns/x"},
            {"type": "user", "path": "/proc/1/ns/user"},
            {"type": "pid", "path": "/proc/1/ns/pid"},
            {"type": "uts"}
        ])));
        let types: Vec<_> = n.join.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            types,
            [
                LinuxNamespaceType::User,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Mount
            ]
        );
        assert_eq!(
            n.join_pid.unwrap(),
            std::path::PathBuf::from("/proc/1/ns/pid")
        );
        // With a joined user namespace, a new uts one is made inside it.
        assert_eq!(n.unshare, libc::CLONE_NEWUTS);
        assert_eq!(n.clone, 0);
    }

    #[test]
    fn exec_joins_every_namespace_of_the_process() {
        let n = namespaces_of(
            &spec(serde_json::json!([
                {"type": "mount"}, {"type": "pid"}, {"type": "user"},
                {"type": "network", "path": "/run/netns/x"}, {"type": "time"}
            ])),
            42,
        );
        assert_eq!(n.clone, 0);
        assert_eq!(n.unshare, 0);
        assert_eq!(
            n.join_pid.unwrap(),
            std::path::PathBuf::from("/proc/42/ns/pid")
        );
        let joined: Vec<_> = n
            .join
            .iter()
            .map(|(_, p)| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            joined,
            [
                "/proc/42/ns/user",
                "/proc/42/ns/net",
                "/proc/42/ns/time",
                "/proc/42/ns/mnt"
            ]
        );
    }

    #[test]
    fn reports_round_trip() {
        let f = Failure::io(
            "pivot_root",
            std::io::Error::from_raw_os_error(libc::EINVAL),
        );
        let text = serde_json::to_vec(&Report::Failed(f.clone())).unwrap();
        let Report::Failed(back) = serde_json::from_slice(&text).unwrap() else {
            panic!()
        };
        assert_eq!(back, f);
        assert_eq!(back.errno, Some(libc::EINVAL));
        assert!(
            f.to_string().starts_with("pivot_root: Invalid argument"),
            "{f}"
        );
    }
}
