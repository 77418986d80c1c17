//! appc ACIs: a tar (plain, gzip, bzip2, xz or zstd) holding `manifest` and `rootfs/`. The
//! image ID is the sha512 of the uncompressed tar; the rootfs is extracted once as a layer
//! keyed by that ID, and the uncompressed tar is kept as a blob so `image export` gives
//! back the very same image.

use std::collections::BTreeMap;
use std::io::Read;

use schema::ImageManifest;

use crate::digest::{Algorithm, Digest};
use crate::error::StoreError;
use crate::images::{Format, ImageRecord};
use crate::layers::Kind;
use crate::store::Store;

/// Imports an ACI, asking `check` about it once the whole stream has been read and
/// extracted (its signature verified along the way, say) and before anything is
/// committed: if `check` refuses, nothing of the image is kept.
pub fn import_aci_checked<R, E>(
    store: &Store,
    input: R,
    shown: &str,
    check: impl FnOnce(&ImageManifest) -> std::result::Result<(), E>,
) -> std::result::Result<ImageRecord, E>
where
    R: Read + Send + 'static,
    E: From<StoreError>,
{
    let staged = store.stage_layer(shown, input, Kind::Aci)?;
    let manifest_bytes = staged
        .aci_manifest
        .clone()
        .ok_or_else(|| StoreError::bad_image(shown, "the ACI has no manifest"))?;
    let manifest = ImageManifest::from_slice(&manifest_bytes)
        .map_err(|e| StoreError::bad_image(shown, e.to_string()))?;
    check(&manifest)?;
    let mut layers = Vec::new();
    let mut dependencies = Vec::new();
    for dep in &manifest.dependencies {
        let found = match &dep.image_id {
            Some(hash) => {
                let id: Digest = hash.to_string().parse().map_err(|e: String| {
                    StoreError::bad_image(shown, format!("dependency {}: {e}", dep.image_name))
                })?;
                match store.image_record(&id) {
                    Ok(r) => Some(r),
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                let wanted: BTreeMap<String, String> = dep
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.clone()))
                    .collect();
                store.find_aci(dep.image_name.as_str(), &wanted)?
            }
        };
        let dep_record = found.ok_or_else(|| {
            StoreError::bad_image(
                shown,
                format!(
                    "dependency {}{} is not in the store; fetch it first",
                    dep.image_name,
                    dep.image_id
                        .as_ref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default()
                ),
            )
        })?;
        layers.extend(dep_record.layers.iter().cloned());
        dependencies.push(dep_record.id.clone());
    }
    let key = staged.key.clone();
    layers.push(key.clone());
    let size = staged.meta.size;
    {
        let _lock = store.lock_key("layer", &key)?;
        store.commit_layer(staged)?;
    }
    let manifest_digest = store.put_blob(&manifest_bytes, Algorithm::Sha256)?;
    let labels = manifest
        .labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.clone()))
        .collect();
    let record = ImageRecord {
        id: key.clone(),
        format: Format::Aci,
        name: manifest.name.to_string(),
        labels,
        layers,
        dependencies,
        path_whitelist: manifest.path_whitelist.clone(),
        size,
        imported: chrono::Utc::now(),
        source: shown.to_string(),
        manifest: manifest_digest,
        config: None,
    };
    store.commit_image(&record, &[])?;
    Ok(store.image_record(&key)?)
}
