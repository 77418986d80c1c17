//! Garbage collection: layers, blobs and rendered trees that no image (and no pod the
//! caller names) uses. Runs under the store's exclusive lock, so it never races an import.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::images::Format;
use crate::store::Store;

#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub layers: Vec<String>,
    pub blobs: Vec<String>,
    pub rendered: Vec<String>,
    pub refs: Vec<String>,
    pub tmp: usize,
}

fn older_than(path: &Path, grace: Duration) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    let Ok(mtime) = meta.modified() else {
        return false;
    };
    SystemTime::now()
        .duration_since(mtime)
        .map(|age| age >= grace)
        .unwrap_or(false)
}

fn entries(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(dir).at(dir)? {
        let ent = ent.at(dir)?;
        if let Some(name) = ent.file_name().to_str() {
            if !name.starts_with(".tmp-") {
                out.push((name.to_string(), ent.path()));
            }
        }
    }
    Ok(out)
}

impl Store {
    /// `keep`: layers and image IDs pinned by pods (the store knows nothing of pods; the
    /// caller does).
    pub fn gc(&self, grace: Duration, keep: &HashSet<Digest>) -> Result<GcReport> {
        let _lock = self.lock_exclusive()?;
        let mut report = GcReport {
            tmp: self.clean_tmp()?,
            ..Default::default()
        };
        let images = self.images()?;
        let ids: HashSet<Digest> = images.iter().map(|r| r.id.clone()).collect();
        let mut layers: HashSet<Digest> = keep.clone();
        let mut blobs: HashSet<Digest> = HashSet::new();
        for r in &images {
            layers.extend(r.layers.iter().cloned());
            blobs.insert(r.manifest.clone());
            blobs.extend(r.config.iter().cloned());
            if r.format == Format::Aci {
                blobs.insert(r.id.clone());
            }
        }
        for (name, path) in entries(&self.root().join("layers"))? {
            let used = name
                .parse::<Digest>()
                .map(|d| layers.contains(&d))
                .unwrap_or(false);
            if !used && older_than(&path, grace) {
                self.discard(&path)?;
                report.layers.push(name);
            }
        }
        for algo in ["sha256", "sha512"] {
            for (hex, path) in entries(&self.root().join("blobs").join(algo))? {
                let used = format!("{algo}:{hex}")
                    .parse::<Digest>()
                    .map(|d| blobs.contains(&d))
                    .unwrap_or(false);
                if !used && older_than(&path, grace) {
                    fs::remove_file(&path).at(&path)?;
                    report.blobs.push(format!("{algo}:{hex}"));
                }
            }
        }
        for (name, path) in entries(&self.root().join("rendered"))? {
            let used = name
                .parse::<Digest>()
                .map(|d| ids.contains(&d) || keep.contains(&d))
                .unwrap_or(false);
            if !used {
                self.discard(&path)?;
                report.rendered.push(name);
            }
        }
        for (name, id) in self.refs()? {
            if !ids.contains(&id) {
                let p = self.refs_dir().join(crate::images::escape_ref(&name));
                let _ = fs::remove_file(&p);
                report.refs.push(name);
            }
        }
        Ok(report)
    }

    /// Moves a directory out of sight atomically, then deletes it.
    fn discard(&self, path: &Path) -> Result<()> {
        let tmp = self.tmp_dir("gc")?;
        let dest = tmp.path().join("x");
        fs::rename(path, &dest).at(path)?;
        fsutil::remove_tree(&dest)
    }
}
