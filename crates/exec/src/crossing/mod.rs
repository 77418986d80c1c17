//! Processes that cross from the host into a pod's namespaces: the pod's first process
//! until it execs the sealed binary as the init, the hand-over on its socket, and the
//! process `vessel enter` sends into a running app; later on that socket, the pod's network
//! settings once its CNI networks are up.

pub mod embryo;
pub mod enter;
pub mod enter_io;
pub mod handover;
pub mod network;
