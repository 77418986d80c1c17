//! Getting images into the store: local files and layouts now; registries, appc discovery
//! and signature checks as they arrive.

pub mod aci;
pub mod error;
pub mod local;
pub mod reference;

pub use error::{FetchError, Result};
pub use reference::ImageRef;

use store::images::ImageRecord;
use store::Store;

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// `--insecure-options=image`: import without a signature check.
    pub insecure_skip_verify: bool,
}

/// Brings one image into the store and returns its record.
pub fn fetch(store: &Store, reference: &str, opts: &FetchOptions) -> Result<ImageRecord> {
    let r = ImageRef::parse(reference).map_err(FetchError::Invalid)?;
    let _lock = store.lock_shared()?;
    match &r {
        ImageRef::AciFile(_) | ImageRef::OciLayout { .. } | ImageRef::OciArchive { .. } | ImageRef::DockerArchive { .. } => {
            local::import(store, &r, reference, opts)
        }
        ImageRef::Name(name) => store.resolve(name).map_err(|e| match e {
            store::StoreError::NotFound(_) => FetchError::Invalid(format!(
                "image {name:?} is not in the store, and fetching by name (appc discovery) is not available yet"
            )),
            other => other.into(),
        }),
        ImageRef::Docker(_) | ImageRef::AciUrl(_) => Err(FetchError::Invalid(format!("{reference}: remote fetching is not available yet"))),
    }
}
