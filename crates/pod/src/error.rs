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
