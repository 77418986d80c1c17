//! ACIs into the store, checked on the way: the signature (unless the user skipped it) is
//! verified over exactly the bytes the store reads, and, for discovered images, the name
//! and labels in the manifest must be those that were asked for. Nothing is committed
//! before both checks pass.

use std::collections::BTreeMap;
use std::io::Read;

use schema::ImageManifest;
use store::images::ImageRecord;
use store::import::aci::import_aci_checked;

use crate::error::{FetchError, Result};
use crate::trust::{parse_signature, SignerCheck};
use crate::Fetcher;

/// A detached signature and where it came from (for messages).
pub struct Signature {
    pub data: Vec<u8>,
    pub from: String,
}

/// What discovery asked for: the manifest must carry this name and these labels.
#[derive(Debug, Clone)]
pub struct Expected {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Imports the ACI read from `input`. `signature` is None only when the user passed
/// `--insecure-options=image`.
pub fn import_checked<R: Read + Send + 'static>(
    f: &Fetcher<'_>,
    input: R,
    shown: &str,
    signature: Option<Signature>,
    expected: Option<&Expected>,
) -> Result<ImageRecord> {
    let Some(sig) = signature else {
        return import_aci_checked(f.store, input, shown, |m| {
            check_expected(m, expected, shown)
        });
    };
    let parsed = parse_signature(&sig.data, shown, &sig.from)?;
    let all = f.keystore.list()?;
    let mut check = SignerCheck::start(&all, parsed);
    let input = check.tee(input);
    let mut verdict = None;
    let result = import_aci_checked(f.store, input, shown, |m: &ImageManifest| {
        check_expected(m, expected, shown)?;
        let v = check.judge(&all, m.name.as_str(), shown)?;
        verdict = Some(v);
        Ok::<(), FetchError>(())
    });
    let record = result?;
    if let Some(v) = verdict {
        f.say(&format!(
            "image {shown}: signature verified: signed by key {} (trusted for {})",
            v.fingerprint, v.scope
        ));
    }
    Ok(record)
}

fn check_expected(m: &ImageManifest, expected: Option<&Expected>, shown: &str) -> Result<()> {
    let Some(e) = expected else {
        return Ok(());
    };
    if m.name.as_str() != e.name {
        return Err(FetchError::refused(
            shown,
            format!(
                "the image's manifest names {}, not {} as discovered",
                m.name.as_str(),
                e.name
            ),
        ));
    }
    let labels: BTreeMap<String, String> = m
        .labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.clone()))
        .collect();
    // appc discovery.md: a label asked for matches only when the manifest has it with the
    // same value; one the manifest lacks does not match. os and arch are asked for too
    // (this host's, as the discovery templates were rendered with them).
    for (k, v) in &e.labels {
        match labels.get(k) {
            Some(have) if have == v => {}
            Some(have) => {
                return Err(FetchError::refused(
                    shown,
                    format!("the image's label {k} is {have:?}, not {v:?} as asked"),
                ))
            }
            None => {
                let has = if labels.is_empty() {
                    "no labels".to_string()
                } else {
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(FetchError::refused(
                    shown,
                    format!(
                        "{k}={v} was asked for, but the image's manifest has no {k} label (it has {has})"
                    ),
                ));
            }
        }
    }
    Ok(())
}
