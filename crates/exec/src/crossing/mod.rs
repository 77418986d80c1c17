//! Processes that cross from the host into a pod's namespaces: the pod's first process
//! until it execs the sealed binary as the init, the hand-over on its socket, and the
//! process `vessel enter` sends into a running app.

pub mod embryo;
pub mod enter;
pub mod handover;
