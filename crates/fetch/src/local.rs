//! Local sources: ACI files, OCI layouts and archives, docker-archive tarballs.

use store::images::ImageRecord;
use store::import::{archive, layout};
use store::{Store, StoreError};

use crate::error::{FetchError, Result};
use crate::reference::ImageRef;
use crate::FetchOptions;

/// Imports a local image after checking the signature policy.
pub fn import(
    store: &Store,
    r: &ImageRef,
    shown: &str,
    opts: &FetchOptions,
) -> Result<ImageRecord> {
    import_unnamed(store, r, shown, opts).map_err(|e| name_the_image(e, shown))
}

/// Errors about a file or a member say where, but not which image: add it.
fn name_the_image(e: FetchError, shown: &str) -> FetchError {
    match e {
        FetchError::Store(StoreError::Io { .. }) | FetchError::Store(StoreError::Invalid(_)) => {
            FetchError::Refused {
                image: shown.to_string(),
                reason: e.to_string(),
            }
        }
        other => other,
    }
}

fn import_unnamed(
    store: &Store,
    r: &ImageRef,
    shown: &str,
    opts: &FetchOptions,
) -> Result<ImageRecord> {
    match r {
        ImageRef::AciFile(path) => {
            if !opts.insecure_skip_verify {
                return Err(FetchError::Refused {
                    image: shown.to_string(),
                    reason: "signature verification of ACIs is not available yet; pass --insecure-options=image to import it without verification".into(),
                });
            }
            if !path.is_file() {
                return Err(FetchError::Refused {
                    image: shown.to_string(),
                    reason: format!("{} is not a file", path.display()),
                });
            }
            Ok(crate::aci::import_aci_file(store, path, shown)?)
        }
        ImageRef::OciLayout { dir, reference } => {
            require_insecure(shown, opts)?;
            Ok(layout::import_layout(
                store,
                dir,
                reference.as_deref(),
                shown,
            )?)
        }
        ImageRef::OciArchive { file, reference } => {
            require_insecure(shown, opts)?;
            Ok(archive::import_oci_archive(
                store,
                file,
                reference.as_deref(),
                shown,
            )?)
        }
        ImageRef::DockerArchive { file, reference } => {
            require_insecure(shown, opts)?;
            Ok(archive::import_docker_archive(
                store,
                file,
                reference.as_deref(),
                shown,
            )?)
        }
        _ => Err(FetchError::Invalid(format!("{shown} is not a local image"))),
    }
}

/// OCI and Docker images carry no signature Vessel can check, as in rkt.
fn require_insecure(shown: &str, opts: &FetchOptions) -> Result<()> {
    if opts.insecure_skip_verify {
        return Ok(());
    }
    Err(FetchError::Refused {
        image: shown.to_string(),
        reason: "OCI and Docker images carry no signature vessel can verify; pass --insecure-options=image to use it".into(),
    })
}
