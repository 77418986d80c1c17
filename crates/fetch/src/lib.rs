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

/// When to go to the network for an image named by name or reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Use the store; fetch only what is not there (run and prepare).
    #[default]
    New,
    /// Check the source for a newer version (fetch).
    Update,
    /// The store only.
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// `--insecure-options=image`: import without a signature check.
    pub insecure_skip_verify: bool,
    /// `--insecure-options=tls`: do not verify TLS certificates.
    pub insecure_tls: bool,
    /// `--insecure-options=http`: allow plain HTTP.
    pub insecure_http: bool,
    /// `--insecure-options=pubkey`: accept keys fetched without verification.
    pub insecure_pubkey: bool,
    /// `--trust-keys-from-https`: trust on first use the keys discovery names.
    pub trust_keys_from_https: bool,
    pub pull_policy: PullPolicy,
    /// `--local-config` and `--system-config`: trusted keys, auth, certificates.
    pub local_config: std::path::PathBuf,
    pub system_config: std::path::PathBuf,
    /// No progress output.
    pub quiet: bool,
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
            store::StoreError::NotFound(_) if opts.pull_policy == PullPolicy::Never => {
                FetchError::Invalid(format!("image {name:?} is not in the store (--pull-policy=never)"))
            }
            store::StoreError::NotFound(_) => FetchError::Invalid(format!(
                "image {name:?} is not in the store, and fetching by name (appc discovery) is not available yet"
            )),
            other => other.into(),
        }),
        ImageRef::Docker(_) | ImageRef::AciUrl(_) => Err(FetchError::Invalid(format!("{reference}: remote fetching is not available yet"))),
    }
}
