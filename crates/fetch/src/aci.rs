//! ACI files from the local filesystem.

use std::path::Path;

use store::error::IoContext;
use store::images::ImageRecord;
use store::{Store, StoreError};

pub fn import_aci_file(store: &Store, path: &Path, shown: &str) -> Result<ImageRecord, StoreError> {
    let file = std::fs::File::open(path).at(path)?;
    store::import::aci::import_aci(store, file, shown)
}
