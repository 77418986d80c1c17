//! Local sources: ACI files, OCI layouts and archives, docker-archive tarballs.

use store::images::ImageRecord;
use store::import::{archive, layout};
use store::StoreError;

use crate::aci::{import_checked, Signature};
use crate::error::{FetchError, Result};
use crate::reference::ImageRef;
use crate::{FetchOptions, Fetcher};

/// Imports a local image after checking the signature policy.
pub fn import(f: &Fetcher<'_>, r: &ImageRef, shown: &str) -> Result<ImageRecord> {
    import_unnamed(f, r, shown).map_err(|e| name_the_image(e, shown))
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

fn import_unnamed(f: &Fetcher<'_>, r: &ImageRef, shown: &str) -> Result<ImageRecord> {
    let store = f.store;
    let opts = f.opts;
    match r {
        ImageRef::AciFile(path) => {
            if !path.is_file() {
                return Err(FetchError::Refused {
                    image: shown.to_string(),
                    reason: format!("{} is not a file", path.display()),
                });
            }
            let signature = if opts.insecure_skip_verify {
                None
            } else {
                Some(match &opts.signature {
                    Some(sig) => read_signature(sig, shown)?,
                    None => local_signature(path, shown)?,
                })
            };
            let file = std::fs::File::open(path).map_err(|e| FetchError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            import_checked(f, file, shown, signature, None)
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

/// `FILE.aci.asc`, next to the ACI.
fn local_signature(path: &std::path::Path, shown: &str) -> Result<Signature> {
    let mut sig_path = path.as_os_str().to_os_string();
    sig_path.push(".asc");
    read_signature(&std::path::PathBuf::from(sig_path), shown)
}

/// A detached signature in a local file (next to an ACI, or given with --signature).
pub fn read_signature(sig_path: &std::path::Path, shown: &str) -> Result<Signature> {
    let sig_path = sig_path.to_path_buf();
    match std::fs::read(&sig_path) {
        Ok(data) => Ok(Signature {
            data,
            from: sig_path.display().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FetchError::refused(
            shown,
            format!(
                "no signature at {}: sign the image (gpg --armor --detach-sign) or pass --insecure-options=image to import it unverified",
                sig_path.display()
            ),
        )),
        Err(e) => Err(FetchError::File {
            path: sig_path,
            reason: e.to_string(),
        }),
    }
}

/// OCI and Docker images carry no signature Vessel can check, as in rkt.
pub fn require_insecure(shown: &str, opts: &FetchOptions) -> Result<()> {
    if opts.insecure_skip_verify {
        return Ok(());
    }
    Err(FetchError::Refused {
        image: shown.to_string(),
        reason: "OCI and Docker images carry no signature vessel can verify; pass --insecure-options=image to use it unverified".into(),
    })
}
