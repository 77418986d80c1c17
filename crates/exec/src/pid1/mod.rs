//! Inside the pod: its init (pid 1, running the sealed binary), which mounts the pod and
//! its apps' roots, and the app processes it forks.

pub mod app_child;
pub mod dev;
pub mod init;
pub mod rootfs;
pub mod stage1;
