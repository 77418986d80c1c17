//! The executor: runs pods of apps, each described by an OCI runtime spec, with
//! namespaces, mounts, cgroups, capabilities and seccomp. See docs/architecture.md,
//! "Executor", for the process model.

pub mod app;
pub mod base;
pub mod caps;
pub mod cgroups;
pub mod dev;
pub mod embryo;
pub mod enter;
pub mod enter_io;
pub mod handover;
pub mod init;
pub mod launch;
pub mod memory;
pub mod mount;
pub mod plan;
pub mod proto;
pub mod rootfs;
pub mod seccomp;
pub mod stage1;
pub mod supervise;
pub mod terminal;
pub mod trace;
pub mod userns;
pub mod users;
