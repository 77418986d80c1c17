//! The OCI runtime's container process (`vessel-runtime create` and `run`): one process
//! that becomes the container's, as runc's init does, on the executor's own parts.
//!
//! | step | who | where |
//! |---|---|---|
//! | cgroup, seccomp compile, namespace fds, exec fifo | the runtime | host (`vessel-runtime`) |
//! | clone into the new namespaces, exec of the sealed binary | `Embryo::spawn_as` | shared with pods |
//! | plan and descriptors over the socket | `channel::send_handover` / `receive_descriptors` | shared with pods |
//! | cgroup join, setns/unshare, hostname, sysctls | [`init`] | the container's namespaces |
//! | the root's mounts, /dev, masked and read-only paths | `rootfs::mount_plan` then `apply` | shared with pods |
//! | rlimits, ids, capabilities, no_new_privs, seccomp, cwd, fds | `app::AppExec` | shared with pods and `vessel enter` |
//!
//! The process waits for `start` as the sealed, read-only copy of the binary (never as a
//! fork of the host's: a process of a shared pid namespace could reach it through
//! /proc/PID/exe, CVE-2019-5736), holding the read end of the exec fifo, close-on-exec:
//! `start` writes a byte and sees the end close when the exec happened.

pub mod attributes;
pub mod console;
pub mod hooks;
pub mod init;
pub mod plan;
pub mod propagation;
pub mod spawn;

/// The argv[0] under which the runtime's binary runs as a container's process.
pub const INIT_ARGV0: &std::ffi::CStr = c"vessel-container-init";
