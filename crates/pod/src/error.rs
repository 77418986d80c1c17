use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("pod {0:?} not found")]
    NotFound(String),
    #[error("pod UUID {query:?} is ambiguous: it matches {}", .candidates.join(", "))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },
    #[error("pod {uuid} is {state}: {reason}")]
    WrongState {
        uuid: String,
        state: String,
        reason: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// The pod could not be started (its first process, cgroups, a filter...).
    #[error(transparent)]
    Launch(#[from] exec::supervisor::launch::LaunchError),
    #[error("supervising the pod: {0}")]
    Supervise(#[source] std::io::Error),
    #[error("blocking signals: {0}")]
    Signals(#[source] nix::errno::Errno),
    /// A file of the pod that vessel wrote holds what vessel cannot read.
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("entering app {app} of pod {uuid}: {source}")]
    Enter {
        app: String,
        uuid: String,
        source: std::io::Error,
    },
}

impl PodError {
    pub fn io(path: &Path, source: std::io::Error) -> PodError {
        PodError::Io {
            path: path.to_path_buf(),
            err: source,
        }
    }
}

pub type Result<T, E = PodError> = std::result::Result<T, E>;
