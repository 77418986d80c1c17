//! OCI and Docker schema 2 images from any source of blobs: an image index (manifest list)
//! resolved to this host's platform, then the manifest, its config and its layers. Every
//! blob's digest is checked before anything that depends on it is committed.

use std::collections::BTreeMap;
use std::io::Read;

use oci_spec::image::ImageConfiguration;
use serde_json::Value;

use super::parallel::LayerJob;
use crate::digest::{sha256, Algorithm, Digest};
use crate::error::{Result, StoreError};
use crate::images::{Format, ImageRecord};
use crate::store::Store;

/// Where an image's blobs come from: a layout directory, an archive, a registry.
pub trait BlobSource: Sync {
    /// A stream of the blob's bytes (not yet verified: the caller hashes it).
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send>>;

    /// A small blob (manifest, config), read whole and verified.
    fn read_verified(&self, digest: &Digest, what: &str) -> Result<Vec<u8>> {
        const MAX: u64 = 8 << 20;
        let mut data = Vec::new();
        self.open(digest)?
            .take(MAX + 1)
            .read_to_end(&mut data)
            .map_err(|e| StoreError::Invalid(format!("{what} {}: {e}", digest.oci())))?;
        if data.len() as u64 > MAX {
            return Err(StoreError::Invalid(format!(
                "{what} {} is larger than {MAX} bytes",
                digest.oci()
            )));
        }
        check_digest(&data, digest, what)?;
        Ok(data)
    }
}

pub fn check_digest(data: &[u8], expected: &Digest, what: &str) -> Result<()> {
    let mut h = crate::digest::Hasher::new(expected.algorithm());
    h.update(data);
    let actual = h.finish();
    if &actual != expected {
        return Err(StoreError::DigestMismatch {
            what: what.to_string(),
            expected: expected.oci(),
            actual: actual.oci(),
        });
    }
    Ok(())
}

/// The platform images are resolved to: this host's.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    ("linux", arch)
}

/// What to call the image being imported.
pub struct ImportName {
    /// Shown in messages.
    pub shown: String,
    /// Repository name recorded for the image.
    pub repository: String,
    /// Tag recorded as its version label and pointed at it in refs.
    pub tag: Option<String>,
    /// The reference the user gave.
    pub source: String,
}

fn parse_json(data: &[u8], what: &str, image: &str) -> Result<Value> {
    serde_json::from_slice(data)
        .map_err(|e| StoreError::bad_image(image, format!("{what} is not valid JSON: {e}")))
}

fn is_index(v: &Value) -> bool {
    v.get("manifests").is_some()
        || matches!(
            v.get("mediaType").and_then(Value::as_str),
            Some("application/vnd.oci.image.index.v1+json")
                | Some("application/vnd.docker.distribution.manifest.list.v2+json")
        )
}

fn descriptor_digest(d: &Value, what: &str, image: &str) -> Result<Digest> {
    let s = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| StoreError::bad_image(image, format!("{what} has no digest")))?;
    s.parse()
        .map_err(|e| StoreError::bad_image(image, format!("{what}: {e}")))
}

/// Picks this host's manifest from an index, returning its digest.
pub fn select_platform(index: &Value, image: &str) -> Result<Digest> {
    let (os, arch) = host_platform();
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| StoreError::bad_image(image, "image index has no manifests list"))?;
    let mut seen = Vec::new();
    for m in manifests {
        let p = m.get("platform");
        let mos = p
            .and_then(|p| p.get("os"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let march = p
            .and_then(|p| p.get("architecture"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if mos == os && march == arch {
            return descriptor_digest(m, "image index entry", image);
        }
        if !mos.is_empty() {
            seen.push(format!("{mos}/{march}"));
        }
    }
    Err(StoreError::bad_image(
        image,
        format!(
            "no {os}/{arch} image in the index (it has: {})",
            if seen.is_empty() {
                "none with a platform".to_string()
            } else {
                seen.join(", ")
            }
        ),
    ))
}

/// Resolves an index (possibly nested) down to one manifest: (digest, bytes).
pub fn resolve_manifest(
    src: &dyn BlobSource,
    mut digest: Digest,
    image: &str,
) -> Result<(Digest, Vec<u8>)> {
    for _ in 0..4 {
        let data = src.read_verified(&digest, &format!("image {image}: manifest"))?;
        let v = parse_json(&data, "manifest", image)?;
        if !is_index(&v) {
            return Ok((digest, data));
        }
        digest = select_platform(&v, image)?;
    }
    Err(StoreError::bad_image(
        image,
        "image indexes nested too deeply",
    ))
}

/// Imports an image from its manifest. Layers already in the store are not read again.
pub fn import_manifest(
    store: &Store,
    src: &dyn BlobSource,
    manifest_digest: &Digest,
    manifest: &[u8],
    name: &ImportName,
) -> Result<ImageRecord> {
    let image = name.shown.as_str();
    let v = parse_json(manifest, "manifest", image)?;
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(StoreError::bad_image(
            image,
            "manifest is not schemaVersion 2 (Docker schema 1 is not supported)",
        ));
    }
    let config_desc = v
        .get("config")
        .ok_or_else(|| StoreError::bad_image(image, "manifest has no config"))?;
    let config_media = config_desc
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !config_media.is_empty()
        && config_media != "application/vnd.oci.image.config.v1+json"
        && config_media != "application/vnd.docker.container.image.v1+json"
    {
        return Err(StoreError::bad_image(
            image,
            format!("not a container image (config media type {config_media})"),
        ));
    }
    let config_digest = descriptor_digest(config_desc, "config", image)?;
    let config_bytes = src.read_verified(&config_digest, &format!("image {image}: config"))?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
        StoreError::bad_image(
            image,
            format!("config is not a valid image configuration: {e}"),
        )
    })?;
    if config.os().to_string() != "linux" {
        return Err(StoreError::bad_image(
            image,
            format!("image is for {}, not linux", config.os()),
        ));
    }
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| StoreError::bad_image(image, "manifest has no layers list"))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != layers.len() {
        return Err(StoreError::bad_image(
            image,
            format!(
                "manifest lists {} layers but the config {} diff_ids",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut jobs = Vec::new();
    for (i, (layer, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let what = format!("layer {}", i + 1);
        let media = layer.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if media.contains("encrypted") {
            return Err(StoreError::bad_image(
                image,
                format!("{what} is encrypted ({media}); not supported"),
            ));
        }
        if !media.is_empty() && !media.contains("tar") {
            return Err(StoreError::bad_image(
                image,
                format!("{what} has media type {media}, not a tar layer"),
            ));
        }
        let blob = descriptor_digest(layer, &what, image)?;
        let key: Digest = diff_id
            .parse()
            .map_err(|e| StoreError::bad_image(image, format!("config diff_id {}: {e}", i + 1)))?;
        jobs.push(LayerJob { key, blob });
    }
    let metas = super::parallel::import_layers(store, src, image, &jobs)?;
    let size = metas.iter().map(|m| m.size).sum();
    let keys: Vec<Digest> = jobs.into_iter().map(|j| j.key).collect();
    let manifest_blob = store.put_blob(manifest, manifest_digest.algorithm())?;
    debug_assert_eq!(&manifest_blob, manifest_digest);
    let config_blob = store.put_blob(&config_bytes, Algorithm::Sha256)?;
    let mut labels = BTreeMap::new();
    labels.insert("os".to_string(), config.os().to_string());
    labels.insert("arch".to_string(), config.architecture().to_string());
    if let Some(t) = &name.tag {
        labels.insert("version".to_string(), t.clone());
    }
    let record = ImageRecord {
        id: config_blob.clone(),
        format: Format::Oci,
        name: name.repository.clone(),
        labels,
        layers: keys,
        dependencies: Vec::new(),
        path_whitelist: Vec::new(),
        size,
        imported: chrono::Utc::now(),
        source: name.source.clone(),
        manifest: manifest_blob,
        config: Some(config_blob),
    };
    let refs: Vec<String> = name
        .tag
        .iter()
        .map(|t| format!("{}:{t}", name.repository))
        .collect();
    store.commit_image(&record, &refs)?;
    super::trace::mark(|| format!("image {image}: committed"));
    // Same content imported before: keep the first record (its import time) but the new tag.
    store.image_record(&record.id)
}

/// A manifest for an image that came without one (docker-archive), so every image in the
/// store has a manifest blob.
pub fn synthesize_manifest(config: &[u8], layers: &[(Digest, u64)]) -> Vec<u8> {
    let v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config).oci(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|(d, n)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": d.oci(),
            "size": n,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&v).expect("serialisable")
}

/// Docker's short names: `busybox` is `docker.io/library/busybox`.
pub fn normalize_docker_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names() {
        assert_eq!(
            normalize_docker_name("busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(normalize_docker_name("me/app"), "docker.io/me/app");
        assert_eq!(
            normalize_docker_name("127.0.0.1:5000/a"),
            "127.0.0.1:5000/a"
        );
        assert_eq!(normalize_docker_name("localhost/a"), "localhost/a");
        assert_eq!(normalize_docker_name("quay.io/x/y"), "quay.io/x/y");
    }

    #[test]
    fn platform_selection_names_what_exists() {
        let idx = serde_json::json!({"manifests": [
            {"digest": format!("sha256:{}", "a".repeat(64)), "platform": {"os": "linux", "architecture": "arm64"}},
        ]});
        let err = select_platform(&idx, "x").unwrap_err().to_string();
        assert!(err.contains("linux/arm64"), "{err}");
    }
}
