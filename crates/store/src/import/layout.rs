//! `oci:DIR[:REF]`: an OCI image layout directory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde_json::Value;

use super::oci::{import_manifest, resolve_manifest, BlobSource, ImportName};
use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::images::ImageRecord;
use crate::store::Store;

/// Blobs under `DIR/blobs/<alg>/<hex>`, opened beneath DIR only.
pub struct LayoutDir {
    dir: PathBuf,
    fd: std::os::fd::OwnedFd,
}

impl LayoutDir {
    pub fn open(dir: &Path) -> Result<LayoutDir> {
        let fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .at(dir)?;
        Ok(LayoutDir {
            dir: dir.to_path_buf(),
            fd,
        })
    }

    fn open_rel(&self, rel: &str) -> Result<File> {
        let fd = rustix::fs::openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        );
        let fd = match fd {
            Err(rustix::io::Errno::XDEV) | Err(rustix::io::Errno::LOOP) => {
                return Err(StoreError::Invalid(format!(
                    "{} is a symlink that leads out of the layout",
                    self.dir.join(rel).display()
                )))
            }
            other => other.at(self.dir.join(rel))?,
        };
        Ok(File::from(fd))
    }

    pub fn read_small(&self, rel: &str) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_rel(rel)?
            .take(8 << 20)
            .read_to_end(&mut data)
            .at(self.dir.join(rel))?;
        Ok(data)
    }
}

impl BlobSource for LayoutDir {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        // The digest was validated as hex of the right length: safe as a path.
        Ok(Box::new(self.open_rel(&format!(
            "blobs/{}/{}",
            digest.algorithm().name(),
            digest.hex()
        ))?))
    }
}

pub const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Chooses the manifest descriptor in `index.json` named `reference`, or the only one.
pub fn pick_from_index(
    index: &Value,
    reference: Option<&str>,
    image: &str,
) -> Result<(Digest, Option<String>)> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| StoreError::bad_image(image, "index.json has no manifests list"))?;
    let name_of = |m: &Value| {
        m.get("annotations")
            .and_then(|a| a.get(REF_ANNOTATION))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let chosen = match reference {
        Some(r) => manifests
            .iter()
            .find(|m| name_of(m).as_deref() == Some(r))
            .ok_or_else(|| {
                let names: Vec<String> = manifests.iter().filter_map(name_of).collect();
                StoreError::bad_image(
                    image,
                    format!(
                        "no image named {r:?} in the layout (it has: {})",
                        names.join(", ")
                    ),
                )
            })?,
        None => match manifests.as_slice() {
            [one] => one,
            [] => return Err(StoreError::bad_image(image, "the layout holds no image")),
            many => {
                let names: Vec<String> = many.iter().filter_map(name_of).collect();
                return Err(StoreError::bad_image(
                    image,
                    format!(
                        "the layout holds {} images; name one as oci:DIR:REF (refs: {})",
                        many.len(),
                        names.join(", ")
                    ),
                ));
            }
        },
    };
    let digest = chosen
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| StoreError::bad_image(image, "index.json entry has no digest"))?
        .parse()
        .map_err(|e: String| StoreError::bad_image(image, e))?;
    Ok((digest, name_of(chosen)))
}

/// Name and tag for an image from a layout: a full reference in its ref annotation is used
/// as is; a bare tag names it `localhost/<dir name>:<tag>`.
pub fn layout_name(dir: &Path, ref_name: Option<&str>, source: &str) -> ImportName {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_else(|| "image".into());
    let (repository, tag) = match ref_name {
        Some(r) if r.contains('/') => {
            let (n, t) = crate::images::split_tag(r);
            (
                super::oci::normalize_docker_name(n),
                Some(t.unwrap_or("latest").to_string()),
            )
        }
        Some(t) => (format!("localhost/{base}"), Some(t.to_string())),
        None => (format!("localhost/{base}"), Some("latest".to_string())),
    };
    ImportName {
        shown: source.to_string(),
        repository,
        tag,
        source: source.to_string(),
    }
}

pub fn import_layout(
    store: &Store,
    dir: &Path,
    reference: Option<&str>,
    source: &str,
) -> Result<ImageRecord> {
    let layout = LayoutDir::open(dir)?;
    let marker = layout.read_small("oci-layout").map_err(|_| {
        StoreError::bad_image(
            source,
            format!(
                "{} is not an OCI image layout (no oci-layout file)",
                dir.display()
            ),
        )
    })?;
    let marker: Value = serde_json::from_slice(&marker)
        .map_err(|e| StoreError::bad_image(source, format!("oci-layout is not valid JSON: {e}")))?;
    if marker.get("imageLayoutVersion").and_then(Value::as_str) != Some("1.0.0") {
        return Err(StoreError::bad_image(
            source,
            "unsupported imageLayoutVersion in oci-layout",
        ));
    }
    let index: Value = serde_json::from_slice(&layout.read_small("index.json")?)
        .map_err(|e| StoreError::bad_image(source, format!("index.json is not valid JSON: {e}")))?;
    let (digest, ref_name) = pick_from_index(&index, reference, source)?;
    let (manifest_digest, manifest) = resolve_manifest(&layout, digest, source)?;
    let name = layout_name(dir, ref_name.as_deref().or(reference), source);
    import_manifest(store, &layout, &manifest_digest, &manifest, &name)
}
