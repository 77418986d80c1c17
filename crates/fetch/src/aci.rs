//! ACI import: placeholder until the appc manifest types land.

use std::path::Path;

use store::images::ImageRecord;
use store::{Store, StoreError};

pub fn import_aci_file(_store: &Store, _path: &Path, shown: &str) -> Result<ImageRecord, StoreError> {
    Err(StoreError::bad_image(shown, "ACI import is not implemented yet"))
}
