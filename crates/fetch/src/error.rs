use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("image {image}: {reason}")]
    Refused { image: String, reason: String },

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = FetchError> = std::result::Result<T, E>;
