//! Processes that cross from the host into a pod's namespaces: the pod's first process
//! until it execs the sealed binary as the init, the channel between it and the supervisor,
//! the process `vessel enter` sends into a running app, and the pod's network settings
//! handed to the init once its CNI networks are up.

pub mod channel;
pub mod embryo;
pub mod enter;
pub mod enter_io;
pub mod network;
pub mod sealed;
