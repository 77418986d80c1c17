//! The executor: runs pods of apps, each described by an OCI runtime spec, with
//! namespaces, mounts, cgroups, capabilities and seccomp. See docs/architecture.md,
//! "Executor", for the process model.
//!
//! Modules are grouped by the process that runs them, so that "which process runs this,
//! and in which namespaces?" is answered before anyone edits a line:
//!
//! | group | runs in | modules |
//! |---|---|---|
//! | [`supervisor`] | `vessel run` (or its detached copy), host namespaces: prepares and watches a pod | `launch`, `supervise`, `witness` (what of the init's reports the kernel confirms), `userns` (id maps, idmapped layers), `base` (the base layer), `memory` |
//! | [`crossing`] | processes that go from the host into a pod's namespaces, and the socket between them and the supervisor | `embryo` (the pod's first process until its exec), `channel` (the socket's protocol: the hand-over, layers, the terminal, the init's reports, one method per step), `sealed` (the one exec of the sealed binary), `enter` (`vessel enter`'s process), `enter_io` (its terminal or pipes) |
//! | [`pid1`] | the pod's init (pid 1 of the pod, the sealed binary) and the app processes it forks | `init`, `stage1` (the pod's mounts), `rootfs` (an app's root: its mounts as data, then applied), `dev`, `app_child` (a forked app until it becomes the app) |
//! | [`kvm`] | a kvm pod: its init on the host (QEMU's parent), the guest's PID 1, the serial protocol between them, the initramfs | `host`, `guest`, `frame`, `initramfs`, `kernel` |
//! | [`app`] | every process that becomes an app: one forked by the init, one `vessel enter` sends in | `AppDescription` (data, before the fork), `AppExec` (applies it and execs), `command`, `hooks` |
//! | [`container`] | the OCI runtime's container processes (`vessel-runtime create`, `run`, `exec`) and the runtime's side of them | `spawn` (host), `init` (the sealed binary in the container's namespaces), `plan`, `hooks` |
//! | primitives | any of them | `error` (the one error contract), `caps`, `cgroups`, `mount`, `seccomp`, `terminal`, `users`, `trace` |
//! | data | crosses between them | `plan` (what the init is handed), `proto` (the init's reports) |

pub mod app;
pub mod crossing;
pub mod kvm;
pub mod pid1;
pub mod supervisor;

pub mod caps;
pub mod cgroups;
pub mod container;
pub mod error;
pub mod mount;
pub mod plan;
pub mod proto;
pub mod rootless;
pub mod seccomp;
pub mod terminal;
pub mod trace;
pub mod users;
