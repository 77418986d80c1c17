//! Rendering an image's root filesystem. For pods, the image's layers are stacked as
//! overlayfs lower directories, so starting a pod copies nothing. Where overlay cannot
//! express the image (an ACI pathWhitelist, more layers than one overlay mount takes),
//! the layers are merged once into `rendered/<id>/rootfs` (hard links, no data copied)
//! and that one tree is the lower directory.

use std::collections::HashSet;
use std::ffi::CStr;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{openat, AtFlags, FileType, Mode, OFlags};

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::extract::path::EntryPath;
use crate::extract::writer::{opaque_xattr, Meta, RootWriter, Whiteouts};
use crate::images::ImageRecord;
use crate::store::Store;

/// overlayfs stacks at most 500 lower layers; stay well below to leave room for mount
/// options and for the rare kernel with a lower limit.
pub const MAX_OVERLAY_LAYERS: usize = 120;

/// How merged files reach the destination.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Materialize {
    /// Hard links to the layer's files: instant; only for read-only use inside the store.
    Hardlink,
    /// Full copies: for directories handed to the user.
    Copy,
}

impl Store {
    /// The overlay lower directories for a pod running this image, topmost first.
    pub fn lower_dirs(&self, record: &ImageRecord) -> Result<Vec<PathBuf>> {
        for key in &record.layers {
            if !self.has_layer(key) {
                return Err(StoreError::Corrupt {
                    path: self.layer_dir(key),
                    reason: format!(
                        "layer {} of image {} is missing; fetch the image again",
                        key.key(),
                        record.id.key()
                    ),
                });
            }
        }
        let stack = dedup_top(&record.layers);
        if record.path_whitelist.is_empty()
            && stack.len() <= MAX_OVERLAY_LAYERS
            && !stack.is_empty()
        {
            return Ok(stack.iter().rev().map(|k| self.layer_rootfs(k)).collect());
        }
        Ok(vec![self.rendered_rootfs(record)?])
    }

    /// The cached merged tree of an image, built on first use.
    pub fn rendered_rootfs(&self, record: &ImageRecord) -> Result<PathBuf> {
        let dest = self.rendered_dir(&record.id);
        let rootfs = dest.join("rootfs");
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        let _lock = self.lock_key("render", &record.id)?;
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        let tmp = self.tmp_dir("render")?;
        let out = tmp.path().join("rootfs");
        fs::create_dir(&out).at(&out)?;
        self.merge_layers(record, &record.layers, &out, Materialize::Hardlink)?;
        crate::fsutil::syncfs(&out)?;
        self.commit_dir(tmp.path(), &dest)?;
        Ok(rootfs)
    }

    /// Merges `layers` (bottom first) into the empty directory `out`, applying whiteouts
    /// and the image's pathWhitelist.
    pub fn merge_layers(
        &self,
        record: &ImageRecord,
        layers: &[Digest],
        out: &Path,
        how: Materialize,
    ) -> Result<()> {
        let allow = whitelist_set(&record.path_whitelist);
        let mut writer = RootWriter::new(out, Whiteouts::Apply, false).at(out)?;
        for key in dedup_top(layers) {
            let src = self.layer_rootfs(&key);
            let fd = rustix::fs::open(
                &src,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .at(&src)?;
            copy_dir(
                &fd,
                &src,
                EntryPath::root(),
                &mut writer,
                how,
                allow.as_ref(),
            )
            .map_err(|e| {
                StoreError::bad_image(
                    record.id.key(),
                    format!("rendering layer {}: {e}", key.key()),
                )
            })?;
        }
        writer.finish().map_err(|e| {
            StoreError::bad_image(
                record.id.key(),
                format!("rendering {}: {}", e.path, e.reason),
            )
        })?;
        Ok(())
    }

    /// `image render`: the full root filesystem, dependencies included, copied to `dir`.
    pub fn render_to(&self, record: &ImageRecord, dir: &Path) -> Result<()> {
        prepare_output(dir)?;
        self.merge_layers(record, &record.layers, dir, Materialize::Copy)
    }

    /// `image extract`: the image's own content without its dependencies (for OCI images,
    /// all their layers, which are one image).
    pub fn extract_to(&self, record: &ImageRecord, dir: &Path) -> Result<()> {
        prepare_output(dir)?;
        let own: Vec<Digest> = match record.format {
            crate::images::Format::Aci => record.layers.last().cloned().into_iter().collect(),
            crate::images::Format::Oci => record.layers.clone(),
        };
        let mut plain = record.clone();
        plain.path_whitelist.clear();
        self.merge_layers(&plain, &own, dir, Materialize::Copy)
    }
}

/// Keeps the topmost occurrence of a layer listed twice (a shared ACI dependency):
/// overlayfs refuses the same directory twice, and the topmost one decides anyway.
fn dedup_top(layers: &[Digest]) -> Vec<Digest> {
    let mut seen = HashSet::new();
    let mut out: Vec<Digest> = layers
        .iter()
        .rev()
        .filter(|k| seen.insert((*k).clone()))
        .cloned()
        .collect();
    out.reverse();
    out
}

/// The whitelisted paths and every directory leading to them; None means all paths.
fn whitelist_set(list: &[String]) -> Option<HashSet<Vec<u8>>> {
    if list.is_empty() {
        return None;
    }
    let mut set = HashSet::new();
    set.insert(Vec::new());
    for p in list {
        let Ok(Some(path)) = EntryPath::parse(p.trim_start_matches('/').as_bytes(), None) else {
            continue;
        };
        let bytes = path.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'/' {
                set.insert(bytes[..i].to_vec());
            }
        }
        set.insert(bytes.to_vec());
    }
    Some(set)
}

fn prepare_output(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(StoreError::Invalid(format!(
                    "{} is not empty",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(dir).at(dir),
        Err(e) => Err(e).at(dir),
    }
}

fn meta_of(st: &rustix::fs::Stat, xattrs: Vec<(Vec<u8>, Vec<u8>)>) -> Meta {
    Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        xattrs,
    }
}

fn copy_dir(
    dir: &OwnedFd,
    shown: &Path,
    prefix: EntryPath,
    w: &mut RootWriter,
    how: Materialize,
    allow: Option<&HashSet<Vec<u8>>>,
) -> std::result::Result<(), String> {
    let mut names: Vec<std::ffi::CString> = Vec::new();
    let d = rustix::fs::Dir::read_from(dir).map_err(|e| format!("{}: {e}", shown.display()))?;
    for ent in d {
        let ent = ent.map_err(|e| format!("{}: {e}", shown.display()))?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(ent.file_name().to_owned());
        }
    }
    names.sort();
    let werr = |e: crate::extract::writer::WriteError| format!("{}: {}", e.path, e.reason);
    for name in names {
        let path = prefix.join(name.to_bytes());
        if let Some(set) = allow {
            if !set.contains(path.as_bytes()) {
                continue;
            }
        }
        let st = rustix::fs::statat(dir, &*name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let child = openat(
                    dir,
                    &*name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
                let xattrs = read_xattrs(&child);
                let opaque = xattrs.iter().any(|(k, v)| {
                    k.as_slice() == opaque_xattr().as_bytes() && v.as_slice() == b"y"
                });
                w.dir(&path, &meta_of(&st, xattrs)).map_err(werr)?;
                if opaque {
                    w.opaque(&path).map_err(werr)?;
                }
                copy_dir(&child, shown, path, w, how, allow)?;
            }
            FileType::RegularFile => {
                let f = openat(
                    dir,
                    &*name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
                let meta = meta_of(&st, read_xattrs(&f));
                match how {
                    Materialize::Hardlink => link_into(w, dir, &name, &path).map_err(werr)?,
                    Materialize::Copy => {
                        let mut file = fs::File::from(f);
                        w.file(&path, &meta, &mut file, st.st_size as u64)
                            .map_err(werr)?
                    }
                }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, &*name, Vec::new())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                w.symlink(&path, target.as_bytes(), &meta_of(&st, Vec::new()))
                    .map_err(werr)?;
            }
            FileType::CharacterDevice if st.st_rdev == 0 => w.whiteout(&path).map_err(werr)?,
            FileType::Fifo => w.fifo(&path, &meta_of(&st, Vec::new())).map_err(werr)?,
            _ => {}
        }
    }
    Ok(())
}

fn link_into(
    w: &mut RootWriter,
    src_dir: &OwnedFd,
    name: &CStr,
    path: &EntryPath,
) -> std::result::Result<(), crate::extract::writer::WriteError> {
    w.link_from(src_dir, name, path)
}

fn read_xattrs(fd: &OwnedFd) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut list = vec![0u8; 4096];
    let Ok(n) = rustix::fs::flistxattr(fd, &mut list[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut val = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::fgetxattr(fd, name, &mut val[..]) {
            val.truncate(len);
            out.push((name.to_vec(), val));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_includes_parents() {
        let s = whitelist_set(&["/bin/sh".into(), "/etc/passwd".into()]).unwrap();
        for p in ["", "bin", "bin/sh", "etc", "etc/passwd"] {
            assert!(s.contains(p.as_bytes()), "{p}");
        }
        assert!(!s.contains(&b"etc/shadow"[..]));
        assert!(whitelist_set(&[]).is_none());
    }

    #[test]
    fn dedup_keeps_topmost() {
        let d = |c: char| {
            Digest::new(crate::digest::Algorithm::Sha256, &c.to_string().repeat(64)).unwrap()
        };
        let got = dedup_top(&[d('a'), d('b'), d('a'), d('c')]);
        assert_eq!(got, vec![d('b'), d('a'), d('c')]);
    }
}
