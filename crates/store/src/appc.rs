//! The appc view of any stored image: an ACI's own manifest, or an OCI image's config
//! converted into one, so pods treat both kinds alike.

use schema::{AcIdentifier, ImageManifest};

use crate::error::{Result, StoreError};
use crate::images::{Format, ImageRecord};
use crate::store::Store;

impl Store {
    pub fn image_manifest(&self, record: &ImageRecord) -> Result<ImageManifest> {
        match record.format {
            Format::Aci => {
                let data = self.read_blob(&record.manifest)?;
                ImageManifest::from_slice(&data)
                    .map_err(|e| StoreError::bad_image(record.id.key(), e.to_string()))
            }
            Format::Oci => {
                let digest = record.config.as_ref().ok_or_else(|| {
                    StoreError::bad_image(record.id.key(), "OCI image without a config")
                })?;
                let data = self.read_blob(digest)?;
                let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&data)
                    .map_err(|e| StoreError::bad_image(record.id.key(), format!("config: {e}")))?;
                let converted = schema::oci::convert_config(&config)
                    .map_err(|e| StoreError::bad_image(record.id.key(), e.to_string()))?;
                let name = AcIdentifier::sanitize(&record.name)
                    .map_err(|e| StoreError::bad_image(record.id.key(), e.to_string()))?;
                let mut manifest = converted.into_image_manifest(name);
                if let Some(tag) = record.labels.get("version") {
                    if let Ok(n) = "version".parse() {
                        let _ = manifest.labels.set(n, tag.clone());
                    }
                }
                Ok(manifest)
            }
        }
    }
}
