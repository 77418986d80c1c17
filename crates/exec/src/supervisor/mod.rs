//! The supervisor's side: what `vessel run` (or its detached copy) does in the host's
//! namespaces to start a pod and to watch it until it ends.

pub mod base;
pub mod launch;
pub mod memory;
pub mod supervise;
pub mod userns;
pub mod witness;
