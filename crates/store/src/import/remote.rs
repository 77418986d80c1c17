//! What a remote source said about an image when it was fetched: its ETag and how long it
//! may be cached (Cache-Control max-age). `--pull-policy=update` uses it to skip asking
//! while the copy is fresh, and to ask with If-None-Match after that.
//!
//! One small JSON file per source URL under `store/remote/`. It only points at an image;
//! a record whose image is gone is ignored.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::images::escape_ref;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RemoteRecord {
    /// The URL the image was fetched from.
    pub url: String,
    pub image: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub fetched: chrono::DateTime<chrono::Utc>,
    /// Until when the copy may be used without asking (from Cache-Control max-age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl RemoteRecord {
    pub fn is_fresh(&self) -> bool {
        self.fresh_until.is_some_and(|t| t > chrono::Utc::now())
    }
}

impl Store {
    fn remote_path(&self, url: &str) -> PathBuf {
        self.root().join("remote").join(escape_ref(url))
    }

    /// The record for `url`, if there is one and its image is still in the store.
    pub fn remote_record(&self, url: &str) -> Option<RemoteRecord> {
        let data = fs::read(self.remote_path(url)).ok()?;
        let record: RemoteRecord = serde_json::from_slice(&data).ok()?;
        self.image_record(&record.image).ok()?;
        Some(record)
    }

    pub fn set_remote_record(&self, record: &RemoteRecord) -> Result<()> {
        let p = self.remote_path(&record.url);
        let dir = p.parent().expect("under remote/");
        fs::create_dir_all(dir).at(dir)?;
        fsutil::write_replace(
            &p,
            &serde_json::to_vec_pretty(record).expect("serialisable"),
        )
    }
}
