//! vessel-runtime: runc's command line over Vessel's executor (crates/exec), so that
//! containerd, podman and Kubernetes can run containers on it. The executor does the
//! process work (namespaces, mounts, capabilities, seccomp, cgroups); this crate holds the
//! command line, the state directory and its state machine, and bundle loading.

pub mod bundle;
pub mod cli;
pub mod commands;
pub mod error;
pub mod features;
pub mod layout;
pub mod log;
pub mod signal;
pub mod spec_cmd;
pub mod state;
pub mod status;
pub mod systemd;
