//! Layers: each archive extracted once into `layers/<key>/rootfs`, where `key` is the digest
//! of the uncompressed archive (an OCI diff_id, or an ACI's image ID). Compressed and
//! uncompressed digests are computed while the archive streams through, on two threads, and
//! checked before the layer is committed.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::decompress::spawn_decompress;
use crate::digest::{Algorithm, Digest};
use crate::error::{IoContext, Result, StoreError};
use crate::extract::writer::{RootWriter, Whiteouts};
use crate::extract::{extract_tar, ExtractOptions, Extracted};
use crate::import::trace;
use crate::store::{Store, TmpDir};
use crate::{fsutil, tree};

/// Refuse a single layer that writes more than this (override: VESSEL_MAX_LAYER_BYTES).
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 64 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerMeta {
    pub key: Digest,
    /// Bytes of file data in the layer.
    pub size: u64,
    pub entries: u64,
    pub imported: chrono::DateTime<chrono::Utc>,
    /// The compressed blob it came from, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A layer extracted into a temporary directory, not yet visible in the store.
pub struct StagedLayer {
    pub tmp: TmpDir,
    pub key: Digest,
    pub meta: LayerMeta,
    /// For ACIs: the `manifest` entry, and the uncompressed archive saved as a blob.
    pub aci_manifest: Option<Vec<u8>>,
    pub aci_blob: Option<PathBuf>,
}

pub enum Kind<'a> {
    /// An OCI layer: whiteouts apply; its key (diff_id) and blob digest are known.
    Oci {
        key: &'a Digest,
        blob: Option<&'a Digest>,
    },
    /// An ACI: only rootfs/ is extracted; its key is the sha512 of the uncompressed
    /// archive, known only at the end. The archive is kept as a blob for export.
    Aci,
}

fn max_layer_bytes() -> u64 {
    std::env::var("VESSEL_MAX_LAYER_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_LAYER_BYTES)
}

impl Store {
    pub fn has_layer(&self, key: &Digest) -> bool {
        self.layer_dir(key).join("rootfs").is_dir()
    }

    pub fn layer_rootfs(&self, key: &Digest) -> PathBuf {
        self.layer_dir(key).join("rootfs")
    }

    pub fn layer_meta(&self, key: &Digest) -> Result<LayerMeta> {
        let p = self.layer_dir(key).join("meta.json");
        let data = fs::read(&p).at(&p)?;
        serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Extracts `input` (compressed or not) into a temporary directory, checking digests.
    pub fn stage_layer<R: Read + Send + 'static>(
        &self,
        image: &str,
        input: R,
        kind: Kind<'_>,
    ) -> Result<StagedLayer> {
        let tmp = self.tmp_dir("layer")?;
        trace::mark(|| format!("image {image}: staging a layer"));
        let rootfs = tmp.path().join("rootfs");
        fs::create_dir(&rootfs).at(&rootfs)?;
        let mut writer = RootWriter::new(&rootfs, Whiteouts::Overlay, true).at(&rootfs)?;
        let (blob_algo, key_algo, aci) = match &kind {
            Kind::Oci { key, blob } => (blob.map(|b| b.algorithm()), key.algorithm(), false),
            Kind::Aci => (None, Algorithm::Sha512, true),
        };
        let what = match &kind {
            Kind::Oci { blob: Some(b), .. } => format!("image {image}: layer {}", b.oci()),
            Kind::Oci { key, .. } => format!("image {image}: layer {}", key.oci()),
            Kind::Aci => format!("image {image}"),
        };
        // The decompressor's messages are prefixed with the layer (OCI) or nothing (ACI);
        // the image is named once, by bad_image.
        let label = match &kind {
            Kind::Oci { blob: Some(b), .. } => format!("layer {}", b.oci()),
            Kind::Oci { key, .. } => format!("layer {}", key.oci()),
            Kind::Aci => String::new(),
        };
        let (plain, decompressor) = spawn_decompress(input, blob_algo, key_algo, label);
        let shown = match &kind {
            Kind::Oci { blob: Some(b), .. } => format!("{image} (layer {})", b.oci()),
            Kind::Oci { key, .. } => format!("{image} (layer {})", key.oci()),
            Kind::Aci => image.to_string(),
        };
        let opts = ExtractOptions {
            image: &shown,
            aci,
            whiteouts: !aci,
            max_bytes: max_layer_bytes(),
        };
        // An ACI's uncompressed archive is kept as a blob (export gives back the same ID).
        let aci_blob = aci.then(|| tmp.path().join("aci"));
        let copy_error = TeeError::default();
        let outcome: Result<Extracted> = (|| {
            let mut archive: Box<dyn Read> = match &aci_blob {
                Some(p) => Box::new(Tee::new(
                    plain,
                    fs::File::create(p).at(p)?,
                    copy_error.clone(),
                )),
                None => Box::new(plain),
            };
            let extracted = extract_tar(&mut archive, &mut writer, &opts)?;
            // What follows the archive's end (padding) is part of the digested stream, and
            // of an ACI's blob: read it, so the decompressor reaches the end.
            std::io::copy(&mut archive, &mut std::io::sink())
                .map_err(|e| StoreError::bad_image(image, format!("reading the archive: {e}")))?;
            Ok(extracted)
        })();
        // The decompressor's own error is the real cause when extraction failed from it.
        let stream = decompressor.join().expect("decompressor thread panicked");
        let (extracted, uncompressed) = match outcome {
            // The archive's copy could not be written: the reader saw that as a read
            // error, but the cause is the write (a full disk), not the archive.
            Err(_) if copy_error.is_set() => {
                let path = aci_blob.expect("only an ACI is copied");
                return Err::<StagedLayer, _>(copy_error.take()).at(path);
            }
            Err(e) => {
                return Err(match stream {
                    Err(ce) if ce.kind() != std::io::ErrorKind::BrokenPipe => {
                        StoreError::bad_image(image, ce.to_string())
                    }
                    _ => e,
                })
            }
            Ok(extracted) => {
                let digests = stream.map_err(|e| StoreError::bad_image(image, e.to_string()))?;
                if let (
                    Kind::Oci {
                        blob: Some(expected),
                        ..
                    },
                    Some(actual),
                ) = (&kind, digests.compressed)
                {
                    if &actual != *expected {
                        return Err(StoreError::DigestMismatch {
                            what: what.clone(),
                            expected: expected.oci(),
                            actual: actual.oci(),
                        });
                    }
                }
                (extracted, digests.plain)
            }
        };
        trace::mark(|| format!("{what}: extracted and both digests checked"));
        let key = match kind {
            Kind::Oci { key, .. } => {
                if &uncompressed != key {
                    return Err(StoreError::DigestMismatch {
                        what: format!("{what} (uncompressed, the config's diff_id)"),
                        expected: key.oci(),
                        actual: uncompressed.oci(),
                    });
                }
                key.clone()
            }
            Kind::Aci => uncompressed,
        };
        let tree_path = tmp.path().join("tree");
        let scan = if writer.xattrs_written || tree::has_xattrs(&rootfs).at(&rootfs)? {
            tree::Xattrs::List
        } else {
            tree::Xattrs::NoneOnFiles
        };
        {
            let file = fs::File::create(&tree_path).at(&tree_path)?;
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
            tree::write(
                &rootfs,
                &tree::Hashing::Known(&writer.file_hashes),
                scan,
                &mut out,
            )
            .at(&rootfs)?;
            std::io::Write::flush(&mut out).at(&tree_path)?;
        }
        drop(writer);
        trace::mark(|| format!("{what}: tree recorded"));
        let meta = LayerMeta {
            key: key.clone(),
            size: extracted.bytes,
            entries: extracted.entries,
            imported: chrono::Utc::now(),
            blob: match &kind {
                Kind::Oci { blob, .. } => blob.cloned(),
                Kind::Aci => None,
            },
            warnings: extracted.warnings,
        };
        let meta_path = tmp.path().join("meta.json");
        fs::write(
            &meta_path,
            serde_json::to_vec_pretty(&meta).expect("serialisable"),
        )
        .at(&meta_path)?;
        Ok(StagedLayer {
            tmp,
            key,
            meta,
            aci_manifest: extracted.manifest,
            aci_blob,
        })
    }

    /// Makes a staged layer visible. If the same layer was committed meanwhile, ours is
    /// dropped. The caller holds the layer's key lock.
    pub fn commit_layer(&self, staged: StagedLayer) -> Result<LayerMeta> {
        if let Some(blob) = &staged.aci_blob {
            let dest = self.blob_path(&staged.key);
            if !dest.exists() {
                fs::rename(blob, &dest).at(&dest)?;
            }
        }
        if self.has_layer(&staged.key) {
            return self.layer_meta(&staged.key);
        }
        // One syncfs for the whole tree instead of an fsync per file, then the rename
        // publishes it: a crash before the rename leaves only a stale tmp directory.
        fsutil::syncfs(staged.tmp.path())?;
        trace::mark(|| format!("layer {}: synced", staged.key));
        let dest = self.layer_dir(&staged.key);
        let from = staged.tmp.path().to_path_buf();
        if let Some(b) = &staged.aci_blob {
            let _ = fs::remove_file(b);
        }
        self.commit_dir(&from, &dest)?;
        trace::mark(|| format!("layer {}: committed", staged.key));
        Ok(staged.meta)
    }
}

/// Copies what it reads into a file.
struct Tee<R> {
    inner: R,
    out: std::io::BufWriter<fs::File>,
    error: TeeError,
}

/// Where a [`Tee`] keeps its write error: its reader only sees that reading failed.
#[derive(Clone, Default)]
struct TeeError(std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>);

impl TeeError {
    fn is_set(&self) -> bool {
        self.0.borrow().is_some()
    }

    fn take(&self) -> std::io::Error {
        self.0.borrow_mut().take().expect("checked by is_set")
    }
}

impl<R> Tee<R> {
    fn new(inner: R, f: fs::File, error: TeeError) -> Self {
        Tee {
            inner,
            out: std::io::BufWriter::with_capacity(256 * 1024, f),
            error,
        }
    }

    fn copy(&mut self, data: &[u8], end: bool) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self.out, data)?;
        if end {
            std::io::Write::flush(&mut self.out)?;
        }
        Ok(())
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.copy(&buf[..n], n == 0) {
            let kind = e.kind();
            *self.error.0.borrow_mut() = Some(e);
            return Err(std::io::Error::new(kind, "writing the archive's copy"));
        }
        Ok(n)
    }
}
