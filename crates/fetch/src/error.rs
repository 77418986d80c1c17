use std::path::PathBuf;

use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The image cannot be used as asked; the reason says why and what would help.
    #[error("image {image}: {reason}")]
    Refused { image: String, reason: String },

    /// A network exchange failed: connection, TLS, timeout, or an unexpected answer.
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },

    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },

    #[error("{0}")]
    Invalid(String),
}

impl FetchError {
    pub fn refused(image: impl Into<String>, reason: impl Into<String>) -> Self {
        FetchError::Refused {
            image: image.into(),
            reason: reason.into(),
        }
    }

    pub fn http(url: impl Into<String>, reason: impl Into<String>) -> Self {
        FetchError::Http {
            url: url.into(),
            reason: reason.into(),
        }
    }

    /// Names the image in an error that says only where (a URL, a file).
    pub fn for_image(self, image: &str) -> FetchError {
        match self {
            FetchError::Http { .. } | FetchError::File { .. } | FetchError::Invalid(_) => {
                FetchError::refused(image, self.to_string())
            }
            FetchError::Store(StoreError::Io { .. })
            | FetchError::Store(StoreError::Invalid(_)) => {
                FetchError::refused(image, self.to_string())
            }
            other => other,
        }
    }
}

pub type Result<T, E = FetchError> = std::result::Result<T, E>;
