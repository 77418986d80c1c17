//! `docker://` images from OCI distribution registries: the manifest (an index resolved to
//! this host's platform), then the config and the layers through the store's OCI importer,
//! which streams each layer through decompression, hashing and extraction, skips layers
//! already stored, and commits nothing before every digest has been checked.

pub mod auth;
pub mod client;
pub mod reference;

use serde_json::Value;
use store::images::ImageRecord;
use store::import::oci::{import_manifest, select_platform, ImportName};
use store::import::remote::RemoteRecord;
use store::import::trace;
use store::{Digest, StoreError};

use crate::error::{FetchError, Result};
use crate::{Fetcher, PullPolicy};
pub use client::Registry;
pub use reference::DockerRef;

/// Fetches `docker://REF` (`rest` is what follows the transport).
pub fn fetch(f: &Fetcher<'_>, rest: &str, source: &str) -> Result<ImageRecord> {
    let r = DockerRef::parse(rest).map_err(FetchError::Invalid)?;
    let shown = r.shown();
    if f.opts.pull_policy != PullPolicy::Update {
        if let Some(found) = stored(f, &r, source) {
            return Ok(found);
        }
        if f.opts.pull_policy == PullPolicy::Never {
            return Err(FetchError::refused(
                &shown,
                "it is not in the store (--pull-policy=never)",
            ));
        }
    }
    crate::local::require_insecure(&shown, f.opts)?;
    pull(f, &r, &shown, source).map_err(|e| e.for_image(&shown))
}

/// The stored image a reference names, if any.
fn stored(f: &Fetcher<'_>, r: &DockerRef, source: &str) -> Option<ImageRecord> {
    if let Some(rec) = f.store.remote_record(source) {
        return f.store.image_record(&rec.image).ok();
    }
    if r.digest.is_some() {
        return None;
    }
    let tag = r.tag.as_deref()?;
    f.store.resolve(&format!("{}:{tag}", r.name())).ok()
}

fn pull(f: &Fetcher<'_>, r: &DockerRef, shown: &str, source: &str) -> Result<ImageRecord> {
    let credential = f.credentials()?.for_registry(&r.registry).cloned();
    let reg = Registry::connect(&f.http, r, credential, f.progress.clone())?;
    trace::mark(|| format!("{shown}: registry answered"));
    let (mut digest, mut manifest) = reg.manifest(&r.manifest_reference())?;
    trace::mark(|| format!("{shown}: manifest {}", digest.oci()));
    for _ in 0..4 {
        let v: Value = serde_json::from_slice(&manifest).map_err(|e| {
            StoreError::bad_image(shown, format!("manifest is not valid JSON: {e}"))
        })?;
        if !is_index(&v) {
            break;
        }
        let chosen: Digest = select_platform(&v, shown)?;
        (digest, manifest) = reg.manifest(&chosen.oci())?;
    }
    let name = ImportName {
        shown: shown.to_string(),
        repository: r.name(),
        tag: r.tag.clone(),
        source: source.to_string(),
    };
    let record = import_manifest(f.store, &reg, &digest, &manifest, &name)?;
    f.store.set_remote_record(&RemoteRecord {
        url: source.to_string(),
        image: record.id.clone(),
        etag: None,
        fetched: chrono::Utc::now(),
        fresh_until: None,
    })?;
    Ok(record)
}

fn is_index(v: &Value) -> bool {
    v.get("manifests").is_some()
        || matches!(
            v.get("mediaType").and_then(Value::as_str),
            Some("application/vnd.oci.image.index.v1+json")
                | Some("application/vnd.docker.distribution.manifest.list.v2+json")
        )
}
