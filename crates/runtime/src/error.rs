//! The runtime's errors. Where a client matches runc's wording (containerd, podman and
//! conmon look for "does not exist", "not running", "already finished"...), the message is
//! runc's; elsewhere it names the thing and the path.

use std::io;
use std::path::PathBuf;

use crate::status::{Op, Status};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid id format: {0}")]
    InvalidId(String),
    #[error("container does not exist")]
    NotExist,
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("{}", refusal(*.op, *.status, .id))]
    NotAllowed { op: Op, status: Status, id: String },
    #[error("{0}")]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("state of container {id} in {}: {reason}", .path.display())]
    BadState {
        id: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0} is not supported by vessel-runtime")]
    NotSupported(&'static str),
    #[error("{0}")]
    Exec(String),
    #[error("{0}")]
    Systemd(#[from] crate::systemd::BusError),
    #[error("{0}")]
    SystemdPath(#[from] crate::systemd::path::PathError),
}

impl RuntimeError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| RuntimeError::Io { what, path, source }
    }
}

/// runc's texts for a command the container's state does not allow.
fn refusal(op: Op, status: Status, id: &str) -> String {
    match (op, status) {
        (Op::Start, Status::Stopped) => "cannot start a container that has stopped".into(),
        (Op::Start, Status::Running) => "cannot start an already running container".into(),
        (Op::Start, s) => format!("cannot start a container in the {s} state"),
        (Op::Delete { .. }, s) => format!("cannot delete container {id} that is not stopped: {s}"),
        (Op::Exec, Status::Stopped) => "cannot exec in a stopped container".into(),
        (Op::Exec, Status::Paused) => "cannot exec in a paused container".into(),
        (Op::Resume, _) => "container not paused".into(),

        _ => "container not running".into(),
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
