//! Images: one directory per image holding its record; names by tag in `refs/`.

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::fsutil;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Aci,
    Oci,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    pub format: Format,
    /// ACI name, or OCI repository (`docker.io/library/busybox`, `localhost/app`).
    pub name: String,
    /// ACI labels (version, os, arch, ...). For OCI images, `version` is the tag it was
    /// imported under, and os/arch come from its config.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Layer keys, bottom first; for an ACI, its dependencies' layers come first.
    pub layers: Vec<Digest>,
    /// An ACI's dependencies as resolved at import, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Digest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_whitelist: Vec<String>,
    /// Bytes of file data in the image's own layers.
    pub size: u64,
    pub imported: chrono::DateTime<chrono::Utc>,
    /// What the user fetched it as.
    pub source: String,
    /// The manifest blob: appc ImageManifest or OCI manifest.
    pub manifest: Digest,
    /// OCI only: the config blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Digest>,
}

impl ImageRecord {
    /// `name:version` for ACIs, `repo:tag` for OCI images.
    pub fn display_name(&self) -> String {
        match self.labels.get("version") {
            Some(v) => format!("{}:{v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Splits `name[:tag]`; a ':' before the last '/' belongs to a registry port.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], Some(&reference[slash + i + 1..])),
        None => (reference, None),
    }
}

pub(crate) fn escape_ref(r: &str) -> String {
    let mut s = String::new();
    for b in r.bytes() {
        if b.is_ascii_alphanumeric() || b"._-:".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn unescape_ref(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_id_query(q: &str) -> bool {
    let rest = q
        .strip_prefix("sha256-")
        .or_else(|| q.strip_prefix("sha256:"))
        .or_else(|| q.strip_prefix("sha512-"))
        .or_else(|| q.strip_prefix("sha512:"));
    matches!(rest, Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Store {
    pub fn image_record(&self, id: &Digest) -> Result<ImageRecord> {
        let p = self.image_dir(id).join("record.json");
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.key()))
            }
            Err(e) => return Err(e).at(&p),
        };
        serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Every image in the store, oldest import first.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root().join("images");
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).at(&dir)? {
            let ent = ent.at(&dir)?;
            let Some(id) = ent
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Digest>().ok())
            else {
                continue;
            };
            match self.image_record(&id) {
                Ok(r) => out.push(r),
                // Removed by another process while we listed: not an error.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.imported.cmp(&b.imported).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Publishes an image whose layers and blobs are already committed, and points `refs`
    /// at it. Importing the same image twice (even at once) keeps one copy.
    pub fn commit_image(&self, record: &ImageRecord, refs: &[String]) -> Result<()> {
        let _lock = self.lock_key("image", &record.id)?;
        let dest = self.image_dir(&record.id);
        if !dest.join("record.json").exists() {
            let tmp = self.tmp_dir("image")?;
            let p = tmp.path().join("record.json");
            fs::write(&p, serde_json::to_vec_pretty(record).expect("serialisable")).at(&p)?;
            fs::File::open(&p).at(&p)?.sync_all().at(&p)?;
            self.commit_dir(tmp.path(), &dest)?;
        }
        for r in refs {
            self.set_ref(r, &record.id)?;
        }
        Ok(())
    }

    pub fn set_ref(&self, reference: &str, id: &Digest) -> Result<()> {
        let p = self.refs_dir().join(escape_ref(reference));
        fsutil::write_atomic(&p, id.key().as_bytes())
    }

    /// (reference, image ID) for every tag in the store.
    pub fn refs(&self) -> Result<Vec<(String, Digest)>> {
        let dir = self.refs_dir();
        let mut out = Vec::new();
        for ent in fs::read_dir(&dir).at(&dir)? {
            let ent = ent.at(&dir)?;
            let fname = ent.file_name();
            let Some(name) = fname
                .to_str()
                .filter(|n| !n.starts_with(".tmp-"))
                .and_then(unescape_ref)
            else {
                continue;
            };
            let Ok(content) = fs::read_to_string(ent.path()) else {
                continue;
            };
            if let Ok(id) = content.trim().parse::<Digest>() {
                out.push((name, id));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Finds one image by ID (or unique ID prefix), tag, or ACI name[:version].
    pub fn resolve(&self, query: &str) -> Result<ImageRecord> {
        let query = query.trim();
        if query.is_empty() {
            return Err(StoreError::Invalid("empty image name".into()));
        }
        let images = self.images()?;
        if is_id_query(query) {
            let norm = query.replacen(':', "-", 1);
            let hits: Vec<&ImageRecord> = images
                .iter()
                .filter(|r| r.id.key().starts_with(&norm))
                .collect();
            return match hits.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(StoreError::NotFound(query.to_string())),
                many => Err(StoreError::Ambiguous {
                    query: query.into(),
                    candidates: many.iter().map(|r| r.id.key()).collect(),
                }),
            };
        }
        let (name, tag) = split_tag(query);
        // Tags: exact first, then a unique repository whose last components match
        // ("busybox" finds "docker.io/library/busybox:latest").
        let refs = self.refs()?;
        let want_tag = tag.unwrap_or("latest");
        let exact: Vec<&Digest> = refs
            .iter()
            .filter(|(r, _)| split_tag(r) == (name, Some(want_tag)))
            .map(|(_, id)| id)
            .collect();
        if let Some(id) = exact.first() {
            return self.image_record(id);
        }
        let suffix = format!("/{name}");
        let mut partial: Vec<(&String, &Digest)> = refs
            .iter()
            .filter(|(r, _)| {
                let (repo, t) = split_tag(r);
                t == Some(want_tag) && repo.ends_with(&suffix)
            })
            .map(|(r, id)| (r, id))
            .collect();
        partial.dedup_by(|a, b| a.1 == b.1);
        match partial.as_slice() {
            [(_, id)] => return self.image_record(id),
            [] => {}
            many => {
                return Err(StoreError::Ambiguous {
                    query: query.into(),
                    candidates: many.iter().map(|(r, _)| (*r).clone()).collect(),
                })
            }
        }
        // ACIs by name, and version if given; the newest import wins.
        let mut labels = BTreeMap::new();
        if let Some(v) = tag {
            labels.insert("version".to_string(), v.to_string());
        }
        self.find_aci(name, &labels)?
            .ok_or_else(|| StoreError::NotFound(query.to_string()))
    }

    /// The newest ACI named `name` whose labels include all of `labels`.
    pub fn find_aci(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<ImageRecord>> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|r| r.format == Format::Aci && r.name == name)
            .filter(|r| labels.iter().all(|(k, v)| r.labels.get(k) == Some(v)))
            .max_by(|a, b| a.imported.cmp(&b.imported)))
    }

    /// Names an image is known by: its tags, or an ACI's name:version.
    pub fn names_of(&self, record: &ImageRecord, refs: &[(String, Digest)]) -> Vec<String> {
        match record.format {
            Format::Aci => vec![record.display_name()],
            Format::Oci => refs
                .iter()
                .filter(|(_, id)| id == &record.id)
                .map(|(r, _)| r.clone())
                .collect(),
        }
    }

    /// Records a use of the image as the mtime of an empty file: a metadata update, no
    /// data written (this is on every `run`'s path).
    pub fn touch_last_used(&self, id: &Digest) -> Result<()> {
        let p = self.image_dir(id).join("last-used");
        let f = match fs::OpenOptions::new().write(true).open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::File::create(&p).at(&p)?,
            Err(e) => return Err(e).at(&p),
        };
        f.set_modified(std::time::SystemTime::now()).at(&p)
    }

    pub fn last_used(&self, id: &Digest) -> Option<chrono::DateTime<chrono::Utc>> {
        let meta = fs::metadata(self.image_dir(id).join("last-used")).ok()?;
        meta.modified()
            .ok()
            .map(chrono::DateTime::<chrono::Utc>::from)
    }

    /// Removes an image and the tags pointing at it. Its layers stay until `gc`.
    pub fn remove_image(&self, id: &Digest) -> Result<()> {
        let _lock = self.lock_key("image", id)?;
        for (r, target) in self.refs()? {
            if &target == id {
                let p = self.refs_dir().join(escape_ref(&r));
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at(&p),
                }
            }
        }
        let dir = self.image_dir(id);
        if !dir.exists() {
            return Err(StoreError::NotFound(id.key()));
        }
        // Rename first so the image disappears atomically, then delete at leisure.
        let tmp = self.tmp_dir("removed")?;
        let graveyard = tmp.path().join("image");
        fs::rename(&dir, &graveyard).at(&dir)?;
        drop(tmp);
        let rendered = self.rendered_dir(id);
        if rendered.exists() {
            fsutil::remove_tree(&rendered)?;
        }
        Ok(())
    }

    /// Total bytes of file data in an image's layers, its dependencies' included.
    pub fn image_size(&self, record: &ImageRecord) -> u64 {
        record
            .layers
            .iter()
            .filter_map(|k| self.layer_meta(k).ok())
            .map(|m| m.size)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("busybox"), ("busybox", None));
        assert_eq!(split_tag("busybox:1.36"), ("busybox", Some("1.36")));
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", None)
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b:v2"),
            ("127.0.0.1:5000/a/b", Some("v2"))
        );
    }

    #[test]
    fn refs_escape_round_trip() {
        for r in [
            "docker.io/library/busybox:latest",
            "127.0.0.1:5000/x/y:tag",
            "a%b",
        ] {
            assert_eq!(unescape_ref(&escape_ref(r)).as_deref(), Some(r));
            assert!(!escape_ref(r).contains('/'));
        }
    }

    #[test]
    fn id_queries() {
        assert!(is_id_query("sha512-abc"));
        assert!(is_id_query("sha256:0f"));
        assert!(!is_id_query("sha256-"));
        assert!(!is_id_query("busybox"));
    }
}
