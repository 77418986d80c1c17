//! Pods: their directories and lifecycle, and the translation of what the user asked for
//! into what the executor runs.

pub mod activation;
pub mod dir;
pub mod effective;
pub mod error;
pub mod kvm;
pub mod layout;
pub mod logs;
pub mod metadata;
pub mod network;
pub mod notify;
pub mod ops;
pub mod prepare;
pub mod request;
pub mod run;
pub mod spec;
pub mod stage1;
pub mod state;
pub mod userns;
pub mod volumes;

pub use dir::{Dir, PodDir, Pods, State};
pub use error::{PodError, Result};
