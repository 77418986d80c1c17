//! Tar archives of images: `oci-archive:FILE[:REF]` (an OCI layout in a tar) and
//! `docker-archive:FILE[:REF]` (`docker save`). The archive is indexed once; blobs are then
//! read in place by offset, never copied out first.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::layout::{pick_from_index, REF_ANNOTATION};
use super::oci::{
    check_digest, import_manifest, normalize_docker_name, resolve_manifest, synthesize_manifest,
    BlobSource, ImportName,
};
use crate::digest::{sha256, Algorithm, Digest};
use crate::error::{IoContext, Result, StoreError};
use crate::extract::path::EntryPath;
use crate::images::{split_tag, ImageRecord};
use crate::store::Store;

/// Regular files of a tar archive by normalised name: (data offset, size).
pub struct TarIndex {
    path: PathBuf,
    file: Arc<File>,
    members: HashMap<Vec<u8>, (u64, u64)>,
}

impl TarIndex {
    pub fn open(path: &Path, image: &str) -> Result<TarIndex> {
        let file = File::open(path).at(path)?;
        let mut head = [0u8; 6];
        let n = file.read_at(&mut head, 0).at(path)?;
        let kind = crate::decompress::Compression::detect(&head[..n]);
        if kind != crate::decompress::Compression::None {
            return Err(StoreError::bad_image(
                image,
                format!(
                    "{} is {}-compressed; decompress it first (image archives are plain tar)",
                    path.display(),
                    kind.name()
                ),
            ));
        }
        let mut archive = tar::Archive::new(&file);
        let mut members = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek().at(path)? {
            let entry = entry.map_err(|e| {
                StoreError::bad_image(image, format!("reading {}: {e}", path.display()))
            })?;
            let raw = entry.path_bytes().into_owned();
            let Ok(Some(name)) = EntryPath::parse(&raw, None) else {
                continue; // names that climb out are never looked up
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(
                        name.as_bytes().to_vec(),
                        (entry.raw_file_position(), entry.size()),
                    );
                }
                // docker save links identical layers to one another.
                tar::EntryType::Link | tar::EntryType::Symlink => {
                    if let Some(t) = entry.link_name_bytes() {
                        links.push((
                            name.as_bytes().to_vec(),
                            t.into_owned(),
                            entry.header().entry_type(),
                        ));
                    }
                }
                _ => {}
            }
        }
        for (name, target, kind) in links {
            let resolved = if kind == tar::EntryType::Symlink {
                let (parent, _) = EntryPath::parse(&name, None)
                    .ok()
                    .flatten()
                    .map(|p| p.split_last().0.to_vec())
                    .map(|p| (p, ()))
                    .unwrap_or_default();
                let mut joined = parent;
                if !joined.is_empty() {
                    joined.push(b'/');
                }
                joined.extend_from_slice(&target);
                joined
            } else {
                target
            };
            if let Ok(Some(t)) = EntryPath::parse(&resolved, None) {
                if let Some(v) = members.get(t.as_bytes()).copied() {
                    members.insert(name, v);
                }
            }
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            file: Arc::new(file),
            members,
        })
    }

    pub fn open_member(&self, name: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let key = match EntryPath::parse(name.as_bytes(), None) {
            Ok(Some(p)) => p.as_bytes().to_vec(),
            _ => return Ok(None),
        };
        let Some(&(offset, size)) = self.members.get(&key) else {
            return Ok(None);
        };
        let mut f = self.file.try_clone().at(&self.path)?;
        f.seek(SeekFrom::Start(offset)).at(&self.path)?;
        Ok(Some(Box::new(f.take(size))))
    }

    pub fn read_member(&self, name: &str, image: &str) -> Result<Vec<u8>> {
        let mut r = self.open_member(name)?.ok_or_else(|| {
            StoreError::bad_image(
                image,
                format!("{name} is missing from {}", self.path.display()),
            )
        })?;
        let mut data = Vec::new();
        r.by_ref()
            .take(64 << 20)
            .read_to_end(&mut data)
            .at(&self.path)?;
        Ok(data)
    }
}

struct ArchiveBlobs<'a>(&'a TarIndex);

impl BlobSource for ArchiveBlobs<'_> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let name = format!("blobs/{}/{}", digest.algorithm().name(), digest.hex());
        self.0.open_member(&name)?.ok_or_else(|| {
            StoreError::Invalid(format!(
                "blob {} is missing from {}",
                digest.oci(),
                self.0.path.display()
            ))
        })
    }
}

pub fn import_oci_archive(
    store: &Store,
    file: &Path,
    reference: Option<&str>,
    source: &str,
) -> Result<ImageRecord> {
    let index = TarIndex::open(file, source)?;
    if index.open_member("oci-layout")?.is_none() {
        return Err(StoreError::bad_image(
            source,
            format!("{} is not an OCI archive (no oci-layout)", file.display()),
        ));
    }
    let idx: Value = serde_json::from_slice(&index.read_member("index.json", source)?)
        .map_err(|e| StoreError::bad_image(source, format!("index.json is not valid JSON: {e}")))?;
    let (digest, ref_name) = pick_from_index(&idx, reference, source)?;
    let blobs = ArchiveBlobs(&index);
    let (manifest_digest, manifest) = resolve_manifest(&blobs, digest, source)?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "image".into());
    let stem = stem.strip_suffix(".tar").unwrap_or(&stem).to_string();
    let name = match ref_name.as_deref().or(reference) {
        Some(r) if r.contains('/') => {
            let (n, t) = split_tag(r);
            ImportName {
                shown: source.into(),
                repository: normalize_docker_name(n),
                tag: Some(t.unwrap_or("latest").into()),
                source: source.into(),
            }
        }
        t => ImportName {
            shown: source.into(),
            repository: format!("localhost/{stem}"),
            tag: Some(t.unwrap_or("latest").to_string()),
            source: source.into(),
        },
    };
    let _ = REF_ANNOTATION;
    import_manifest(store, &blobs, &manifest_digest, &manifest, &name)
}

/// Layers of a `docker save` archive are named by path, not digest: the source maps each
/// layer's diff_id (its uncompressed digest) to its member.
struct DockerArchiveBlobs<'a> {
    index: &'a TarIndex,
    by_digest: HashMap<Digest, String>,
}

impl BlobSource for DockerArchiveBlobs<'_> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let name = self.by_digest.get(digest).ok_or_else(|| {
            StoreError::Invalid(format!(
                "blob {} is not in {}",
                digest.oci(),
                self.index.path.display()
            ))
        })?;
        self.index.open_member(name)?.ok_or_else(|| {
            StoreError::Invalid(format!(
                "{name} is missing from {}",
                self.index.path.display()
            ))
        })
    }
}

pub fn import_docker_archive(
    store: &Store,
    file: &Path,
    reference: Option<&str>,
    source: &str,
) -> Result<ImageRecord> {
    let index = TarIndex::open(file, source)?;
    let manifest: Value =
        serde_json::from_slice(&index.read_member("manifest.json", source).map_err(|_| {
            StoreError::bad_image(
                source,
                format!(
                    "{} is not a docker-archive (no manifest.json)",
                    file.display()
                ),
            )
        })?)
        .map_err(|e| {
            StoreError::bad_image(source, format!("manifest.json is not valid JSON: {e}"))
        })?;
    let entries = manifest
        .as_array()
        .ok_or_else(|| StoreError::bad_image(source, "manifest.json is not a list"))?;
    let tags_of = |e: &Value| -> Vec<String> {
        e.get("RepoTags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let entry =
        match reference {
            Some(r) => entries
                .iter()
                .find(|e| {
                    tags_of(e).iter().any(|t| {
                        t == r
                            || normalize_docker_name(split_tag(t).0)
                                == normalize_docker_name(split_tag(r).0)
                                && split_tag(t).1 == split_tag(r).1
                    })
                })
                .ok_or_else(|| {
                    StoreError::bad_image(source, format!("no image tagged {r:?} in the archive"))
                })?,
            None => match entries.as_slice() {
                [one] => one,
                [] => return Err(StoreError::bad_image(source, "the archive holds no image")),
                _ => return Err(StoreError::bad_image(
                    source,
                    "the archive holds several images; name one as docker-archive:FILE:REPO:TAG",
                )),
            },
        };
    let config_name = entry
        .get("Config")
        .and_then(Value::as_str)
        .ok_or_else(|| StoreError::bad_image(source, "manifest.json entry has no Config"))?;
    let config = index.read_member(config_name, source)?;
    let config_v: Value = serde_json::from_slice(&config).map_err(|e| {
        StoreError::bad_image(
            source,
            format!("config {config_name} is not valid JSON: {e}"),
        )
    })?;
    // Newer `docker save` names the config by digest; older by "<hex>.json". Either way the
    // image ID is the config's digest, checked here.
    if let Some(hex) = Path::new(config_name).file_stem().and_then(|s| s.to_str()) {
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            check_digest(
                &config,
                &Digest::new(Algorithm::Sha256, hex).map_err(StoreError::Invalid)?,
                &format!("image {source}: config"),
            )?;
        }
    }
    let layer_names: Vec<String> = entry
        .get("Layers")
        .and_then(Value::as_array)
        .ok_or_else(|| StoreError::bad_image(source, "manifest.json entry has no Layers"))?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let diff_ids: Vec<Digest> = config_v
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| StoreError::bad_image(source, "config has no rootfs.diff_ids"))?
        .iter()
        .map(|d| {
            d.as_str()
                .unwrap_or("")
                .parse::<Digest>()
                .map_err(|e| StoreError::bad_image(source, format!("config diff_id: {e}")))
        })
        .collect::<Result<_>>()?;
    if diff_ids.len() != layer_names.len() {
        return Err(StoreError::bad_image(
            source,
            format!(
                "{} layers listed but the config has {} diff_ids",
                layer_names.len(),
                diff_ids.len()
            ),
        ));
    }
    // docker save writes uncompressed layers, so each layer's blob digest is its diff_id;
    // the import checks that as it extracts.
    let mut by_digest = HashMap::new();
    let mut layers = Vec::new();
    for (name, d) in layer_names.iter().zip(&diff_ids) {
        let size = index
            .members
            .get(
                EntryPath::parse(name.as_bytes(), None)
                    .ok()
                    .flatten()
                    .map(|p| p.as_bytes().to_vec())
                    .unwrap_or_default()
                    .as_slice(),
            )
            .map(|m| m.1)
            .unwrap_or(0);
        by_digest.insert(d.clone(), name.clone());
        layers.push((d.clone(), size));
    }
    let manifest_bytes = synthesize_manifest(&config, &layers);
    let manifest_digest = sha256(&manifest_bytes);
    let config_digest = sha256(&config);
    let blobs = DockerArchiveBlobs {
        index: &index,
        by_digest,
    };
    let mut with_config = SmallBlobs {
        inner: &blobs,
        extra: vec![(config_digest, config.clone())],
    };
    with_config
        .extra
        .push((manifest_digest.clone(), manifest_bytes.clone()));
    let tag = reference
        .map(str::to_string)
        .or_else(|| tags_of(entry).into_iter().next());
    let name = match tag {
        Some(t) => {
            let (n, tg) = split_tag(&t);
            ImportName {
                shown: source.into(),
                repository: normalize_docker_name(n),
                tag: Some(tg.unwrap_or("latest").into()),
                source: source.into(),
            }
        }
        None => {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().to_lowercase())
                .unwrap_or_else(|| "image".into());
            ImportName {
                shown: source.into(),
                repository: format!("localhost/{stem}"),
                tag: Some("latest".into()),
                source: source.into(),
            }
        }
    };
    import_manifest(
        store,
        &with_config,
        &manifest_digest,
        &manifest_bytes,
        &name,
    )
}

/// A blob source with a few in-memory blobs in front of another.
struct SmallBlobs<'a> {
    inner: &'a dyn BlobSource,
    extra: Vec<(Digest, Vec<u8>)>,
}

impl BlobSource for SmallBlobs<'_> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        if let Some((_, data)) = self.extra.iter().find(|(d, _)| d == digest) {
            return Ok(Box::new(std::io::Cursor::new(data.clone())));
        }
        self.inner.open(digest)
    }
}
