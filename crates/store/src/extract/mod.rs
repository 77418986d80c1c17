//! Safe extraction of image archives (ACI rootfs and OCI layers) into a directory.

pub mod meta;
pub mod path;
pub mod writer;

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io::Read;

use tar::EntryType;

use crate::error::{Result, StoreError};
use path::EntryPath;
use writer::{Meta, RootWriter};

/// What an archive is and what to do with names outside the part we extract.
pub struct ExtractOptions<'a> {
    /// Shown in errors: the image being imported.
    pub image: &'a str,
    /// For ACIs: only `rootfs/...` is extracted, and `manifest` is captured.
    pub aci: bool,
    /// Interpret OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`).
    pub whiteouts: bool,
    /// Refuse an archive that writes more than this many bytes of file data.
    pub max_bytes: u64,
}

#[derive(Debug, Default)]
pub struct Extracted {
    pub entries: u64,
    pub bytes: u64,
    /// Hostile entries neutralised rather than refused (device nodes, say).
    pub warnings: Vec<String>,
    /// An ACI's `manifest`, as found in the archive.
    pub manifest: Option<Vec<u8>>,
}

const MAX_MANIFEST: u64 = 1 << 20;
const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

pub fn extract_tar<R: Read>(
    reader: R,
    writer: &mut RootWriter,
    opts: &ExtractOptions<'_>,
) -> Result<Extracted> {
    let mut archive = tar::Archive::new(reader);
    let mut out = Extracted::default();
    let strip: Option<&[u8]> = if opts.aci { Some(b"rootfs") } else { None };
    // An ACI names each path once (appc's image layout is a directory tree). Tools differ
    // on which of two entries wins (rkt and actool take the first, tar semantics the
    // last), so an ACI that names one twice is ambiguous and refused. OCI layers keep tar
    // semantics: a later entry replaces an earlier one.
    let mut seen = opts.aci.then(SeenPaths::new);
    let bad = |entry: &str, reason: String| StoreError::hostile(opts.image, entry, reason);
    let entries = archive
        .entries()
        .map_err(|e| StoreError::bad_image(opts.image, format!("reading the archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            StoreError::bad_image(
                opts.image,
                format!("reading the archive (truncated or corrupt?): {e}"),
            )
        })?;
        out.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        let path = match EntryPath::parse(&raw, strip).map_err(|r| bad(&shown, r))? {
            Some(p) => p,
            None => {
                // Outside rootfs/ in an ACI: only the manifest belongs there.
                if EntryPath::parse(&raw, None)
                    .ok()
                    .flatten()
                    .map(|p| p.as_bytes() == b"manifest")
                    == Some(true)
                {
                    if out.manifest.is_some() {
                        return Err(bad(
                            &shown,
                            "the ACI has more than one manifest; refusing an ambiguous image"
                                .into(),
                        ));
                    }
                    if entry.size() > MAX_MANIFEST {
                        return Err(bad(
                            &shown,
                            format!("manifest is larger than {MAX_MANIFEST} bytes"),
                        ));
                    }
                    let mut m = Vec::new();
                    entry
                        .read_to_end(&mut m)
                        .map_err(|e| bad(&shown, format!("reading: {e}")))?;
                    out.manifest = Some(m);
                    continue;
                }
                if kind.is_dir() && raw.iter().all(|&b| b == b'.' || b == b'/') {
                    continue; // "./" itself
                }
                return Err(bad(&shown, "entry outside rootfs/ in an ACI".into()));
            }
        };
        if let Some(seen) = seen.as_mut() {
            if !seen.insert(path.as_bytes()) {
                return Err(bad(
                    &shown,
                    format!(
                        "the ACI names rootfs/{} twice; refusing an ambiguous image",
                        path.display().trim_start_matches('/')
                    ),
                ));
            }
        }
        let meta = meta_of(&mut entry).map_err(|r| bad(&shown, r))?;
        let (parent, name) = path.split_last();
        if opts.whiteouts && name.starts_with(WHITEOUT) {
            let parent = EntryPath::parse(parent, None)
                .map_err(|r| bad(&shown, r))?
                .expect("no strip");
            if name == OPAQUE {
                writer.opaque(&parent).map_err(|e| bad(&e.path, e.reason))?;
            } else if name.starts_with(b".wh..wh.") {
                // aufs bookkeeping (.wh..wh.plnk and friends): nothing to extract.
            } else {
                let hidden = &name[WHITEOUT.len()..];
                if hidden.is_empty() || hidden == b"." || hidden == b".." {
                    return Err(bad(&shown, "whiteout names no entry".into()));
                }
                writer
                    .whiteout(&parent.join(hidden))
                    .map_err(|e| bad(&e.path, e.reason))?;
            }
            continue;
        }
        let res = match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let size = entry.size();
                if writer.bytes_written.saturating_add(size) > opts.max_bytes {
                    return Err(bad(
                        &shown,
                        format!(
                            "the archive expands beyond {} bytes; refusing it",
                            opts.max_bytes
                        ),
                    ));
                }
                writer.file(&path, &meta, &mut entry, size)
            }
            EntryType::Directory => writer.dir(&path, &meta),
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                if target.is_empty() {
                    return Err(bad(&shown, "symlink without a target".into()));
                }
                writer.symlink(&path, &target, &meta)
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let target = EntryPath::parse(&raw_target, strip)
                    .map_err(|r| {
                        bad(
                            &shown,
                            format!(
                                "hard link target {:?}: {r}",
                                String::from_utf8_lossy(&raw_target)
                            ),
                        )
                    })?
                    .ok_or_else(|| bad(&shown, "hard link target outside rootfs/".into()))?;
                writer.hardlink(&path, &target)
            }
            EntryType::Fifo => writer.fifo(&path, &meta),
            EntryType::Char | EntryType::Block => {
                // Device nodes would give a pod's root raw access to host devices: never
                // created from an image. /dev in a pod is built by the executor.
                out.warnings.push(format!("{shown}: device node skipped"));
                continue;
            }
            other => {
                out.warnings
                    .push(format!("{shown}: entry type {other:?} skipped"));
                continue;
            }
        };
        res.map_err(|e| bad(&e.path, e.reason))?;
    }
    writer.finish().map_err(|e| bad(&e.path, e.reason))?;
    out.bytes = writer.bytes_written;
    Ok(out)
}

/// The paths an archive has named so far, as 128-bit keyed hashes (two SipHashes with
/// random keys): 16 bytes a path instead of the path itself, so an ACI of a million
/// entries costs 16 MB here, not 60. Random keys mean no archive can be built to collide,
/// and by chance two of a million paths collide with odds of about 2^-88.
struct SeenPaths {
    keys: (RandomState, RandomState),
    set: HashSet<u128>,
}

impl SeenPaths {
    fn new() -> SeenPaths {
        SeenPaths {
            keys: (RandomState::new(), RandomState::new()),
            set: HashSet::new(),
        }
    }

    /// False if `path` was seen before.
    fn insert(&mut self, path: &[u8]) -> bool {
        let high = u128::from(self.keys.0.hash_one(path));
        let low = u128::from(self.keys.1.hash_one(path));
        self.set.insert((high << 64) | low)
    }
}

fn meta_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::result::Result<Meta, String> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode().map_err(|e| format!("bad mode: {e}"))? & 0o7777,
        uid: u32::try_from(h.uid().map_err(|e| format!("bad uid: {e}"))?)
            .map_err(|_| "uid out of range".to_string())?,
        gid: u32::try_from(h.gid().map_err(|e| format!("bad gid: {e}"))?)
            .map_err(|_| "gid out of range".to_string())?,
        mtime: h.mtime().unwrap_or(0).min(i64::MAX as u64) as i64,
        mtime_nsec: 0,
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| format!("bad PAX header: {e}"))?
    {
        for ext in pax {
            let ext = ext.map_err(|e| format!("bad PAX header: {e}"))?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let num = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            match key {
                b"uid" => {
                    meta.uid = num()
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or("bad PAX uid")?
                }
                b"gid" => {
                    meta.gid = num()
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or("bad PAX gid")?
                }
                b"mtime" => {
                    if let Some((s, ns)) = std::str::from_utf8(value).ok().and_then(parse_pax_time)
                    {
                        meta.mtime = s;
                        meta.mtime_nsec = ns;
                    }
                }
                k if k.starts_with(b"SCHILY.xattr.") => {
                    meta.xattrs
                        .push((k[b"SCHILY.xattr.".len()..].to_vec(), value.to_vec()));
                }
                _ => {}
            }
        }
    }
    // Rootless, an owner the user namespace does not map is refused or becomes its root.
    (meta.uid, meta.gid) = crate::userns::IdView::current().fit(meta.uid, meta.gid)?;
    Ok(meta)
}

fn parse_pax_time(v: &str) -> Option<(i64, u32)> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    let mut ns = 0u32;
    for (i, c) in frac.chars().take(9).enumerate() {
        ns += c.to_digit(10)? * 10u32.pow(8 - i as u32);
    }
    Some((secs, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time("12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time("7"), Some((7, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
