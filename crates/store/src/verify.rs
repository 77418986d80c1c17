//! `image verify`: re-hash every blob and every layer's files and compare with what was
//! recorded at import.

use std::fs;
use std::io::Read;

use crate::digest::{Digest, Hasher};
use crate::error::{IoContext, Result};
use crate::store::Store;
use crate::tree;

#[derive(Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub blobs: usize,
    pub layers: usize,
    pub images: usize,
    /// One line per problem found; empty means the store is sound.
    pub problems: Vec<String>,
}

const MAX_DIFFS_SHOWN: usize = 10;

impl Store {
    pub fn verify(&self) -> Result<VerifyReport> {
        let _lock = self.lock_shared()?;
        let mut report = VerifyReport::default();
        for algo in ["sha256", "sha512"] {
            let dir = self.root().join("blobs").join(algo);
            for ent in fs::read_dir(&dir).at(&dir)? {
                let ent = ent.at(&dir)?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-") {
                    continue;
                }
                report.blobs += 1;
                let Ok(expected) = format!("{algo}:{name}").parse::<Digest>() else {
                    report
                        .problems
                        .push(format!("blob {algo}/{name}: not a digest name"));
                    continue;
                };
                let p = ent.path();
                let mut h = Hasher::new(expected.algorithm());
                let mut f = fs::File::open(&p).at(&p)?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f.read(&mut buf).at(&p)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                let actual = h.finish();
                if actual != expected {
                    report.problems.push(format!(
                        "blob {}: content hashes to {}",
                        expected.oci(),
                        actual.oci()
                    ));
                }
            }
        }
        let dir = self.root().join("layers");
        for ent in fs::read_dir(&dir).at(&dir)? {
            let ent = ent.at(&dir)?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Ok(key) = name.parse::<Digest>() else {
                report
                    .problems
                    .push(format!("layer {name}: not a digest name"));
                continue;
            };
            report.layers += 1;
            let recorded = match fs::read_to_string(ent.path().join("tree")) {
                Ok(t) => t,
                Err(e) => {
                    report
                        .problems
                        .push(format!("layer {}: tree record unreadable: {e}", key.key()));
                    continue;
                }
            };
            let rootfs = self.layer_rootfs(&key);
            match tree::record_text(&rootfs, &tree::Hashing::Recompute) {
                Ok(actual) => {
                    let diffs = tree::diff(&recorded, &actual);
                    for d in diffs.iter().take(MAX_DIFFS_SHOWN) {
                        report.problems.push(format!("layer {}: {d}", key.key()));
                    }
                    if diffs.len() > MAX_DIFFS_SHOWN {
                        report.problems.push(format!(
                            "layer {}: and {} more differences",
                            key.key(),
                            diffs.len() - MAX_DIFFS_SHOWN
                        ));
                    }
                }
                Err(e) => report.problems.push(format!("layer {}: {e}", key.key())),
            }
        }
        for r in self.images()? {
            report.images += 1;
            for l in &r.layers {
                if !self.has_layer(l) {
                    report.problems.push(format!(
                        "image {}: layer {} is missing",
                        r.id.key(),
                        l.key()
                    ));
                }
            }
            for b in std::iter::once(&r.manifest).chain(r.config.iter()) {
                if !self.blob_path(b).exists() {
                    report.problems.push(format!(
                        "image {}: blob {} is missing",
                        r.id.key(),
                        b.oci()
                    ));
                }
            }
        }
        Ok(report)
    }
}
