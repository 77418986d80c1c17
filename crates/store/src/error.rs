//! The store's error type: every message names the thing and, where there is one, the path.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cause is part of the message, not a separate source, so it prints once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: io::Error },

    #[error("image {image}: entry {entry:?}: {reason}")]
    Hostile {
        image: String,
        entry: String,
        reason: String,
    },

    #[error("image {image}: {reason}")]
    BadImage { image: String, reason: String },

    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("image {0:?} not found in the store")]
    NotFound(String),

    #[error("{query:?} is ambiguous: it matches {}", .candidates.join(", "))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },

    #[error("{0}")]
    Invalid(String),

    #[error("{path}: refused as part of Vessel's data directory: {reason}")]
    UnsafeDir { path: PathBuf, reason: String },

    #[error("store at {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches a path to an io::Error, the way every store operation reports failures.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|err| StoreError::Io {
            path: path.into(),
            err,
        })
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| StoreError::Io {
            path: path.into(),
            err: e.into(),
        })
    }
}

impl StoreError {
    pub fn bad_image(image: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::BadImage {
            image: image.into(),
            reason: reason.into(),
        }
    }

    pub fn hostile(
        image: impl Into<String>,
        entry: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        StoreError::Hostile {
            image: image.into(),
            entry: entry.into(),
            reason: reason.into(),
        }
    }
}
