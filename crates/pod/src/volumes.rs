//! Volumes (ace.md, "Volume Setup"): which pod volume each app mounts where, from `--mount`
//! and from the image's declared mount points, with the checks the spec asks for.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use schema::{ImageManifest, Volume, VolumeKind};

use crate::error::{PodError, Result};
use crate::request::AppRequest;

/// One mount of a volume into an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppMount {
    pub volume: String,
    pub target: String,
    pub read_only: bool,
}

fn normalize(target: &str) -> String {
    let mut parts = Vec::new();
    for c in Path::new(target).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// The mounts of one app. Image mount points that no pod volume fulfils get an empty
/// volume of the same name, added to `implicit` (shared by every app declaring it).
pub fn app_mounts(
    app_name: &str,
    volumes: &[Volume],
    req: &AppRequest,
    image: &ImageManifest,
    implicit: &mut Vec<Volume>,
) -> Result<Vec<AppMount>> {
    let mut out: Vec<AppMount> = Vec::new();
    for m in &req.mounts {
        let v = volumes.iter().find(|v| v.name == m.volume).ok_or_else(|| {
            PodError::Invalid(format!(
                "app {app_name}: --mount names volume {:?}, which no --volume defines",
                m.volume.as_str()
            ))
        })?;
        out.push(AppMount {
            volume: v.name.to_string(),
            target: normalize(&m.path),
            read_only: v.is_read_only(),
        });
    }
    let app = req.app.as_ref().or(image.app.as_ref());
    for mp in app.iter().flat_map(|a| a.mount_points.iter()) {
        let target = normalize(&mp.path);
        if out.iter().any(|m| m.target == target) {
            continue; // the user's --mount wins
        }
        let known = volumes
            .iter()
            .chain(implicit.iter())
            .find(|v| v.name == mp.name)
            .cloned();
        let v = match known {
            Some(v) => v,
            None => {
                let v = Volume::empty(mp.name.clone());
                implicit.push(v.clone());
                v
            }
        };
        out.push(AppMount {
            volume: v.name.to_string(),
            target,
            read_only: v.is_read_only() || mp.read_only,
        });
    }
    check_overlaps(app_name, &out)?;
    Ok(out)
}

/// Two mounts of one app may not share a target, nor lie one inside the other.
fn check_overlaps(app_name: &str, mounts: &[AppMount]) -> Result<()> {
    for (i, a) in mounts.iter().enumerate() {
        for b in &mounts[i + 1..] {
            let inside = |x: &str, y: &str| x == y || y == "/" || x.starts_with(&format!("{y}/"));
            if inside(&a.target, &b.target) || inside(&b.target, &a.target) {
                return Err(PodError::Invalid(format!(
                    "app {app_name}: volumes {:?} at {} and {:?} at {} overlap",
                    a.volume, a.target, b.volume, b.target
                )));
            }
        }
    }
    Ok(())
}

/// Checks the pod's volumes: names unique, each mounted by some app, host sources absolute,
/// existing, and reached through no symlink.
pub fn check_volumes(volumes: &[Volume], used: &BTreeSet<String>) -> Result<()> {
    let mut names = BTreeSet::new();
    for v in volumes {
        if !names.insert(v.name.to_string()) {
            return Err(PodError::Invalid(format!(
                "volume {:?} is defined twice",
                v.name.as_str()
            )));
        }
        if !used.contains(v.name.as_str()) {
            return Err(PodError::Invalid(format!(
                "volume {:?} is not mounted by any app (add --mount volume={},target=PATH)",
                v.name.as_str(),
                v.name.as_str()
            )));
        }
        if v.kind == VolumeKind::Host {
            let src = v.source.as_deref().unwrap_or("");
            check_host_source(v.name.as_str(), src)?;
        }
    }
    Ok(())
}

/// With `--private-users`, an empty volume is owned by the host id its uid and gid map to:
/// both must lie in the pod's range (0 to `range` - 1), or the volume would belong to
/// another pod's ids, or to a real host user.
pub fn check_userns_owners(volumes: &[Volume], range: u32) -> Result<()> {
    for v in volumes.iter().filter(|v| v.kind == VolumeKind::Empty) {
        for (what, id) in [("uid", v.uid_or_default()), ("gid", v.gid_or_default())] {
            if id >= range {
                return Err(PodError::Invalid(format!(
                    "volume {:?}: {what} {id} is out of the pod's user namespace with \
                     --private-users (it maps ids 0 to {})",
                    v.name.as_str(),
                    range - 1
                )));
            }
        }
    }
    Ok(())
}

/// A host source must exist and be reached without following any symlink: a symlink there
/// could be swapped to point anywhere between this check and the mount.
pub fn check_host_source(volume: &str, src: &str) -> Result<()> {
    if !src.starts_with('/') {
        return Err(PodError::Invalid(format!(
            "volume {volume:?}: source {src:?} is not an absolute path"
        )));
    }
    let mut p = std::path::PathBuf::from("/");
    for c in Path::new(src).components() {
        if let Component::Normal(n) = c {
            p.push(n);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(PodError::Invalid(format!(
                        "volume {volume:?}: source {src} passes through a symlink ({})",
                        p.display()
                    )))
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(PodError::Invalid(format!(
                        "volume {volume:?}: source {src} does not exist"
                    )))
                }
            }
        } else if matches!(c, Component::ParentDir) {
            return Err(PodError::Invalid(format!(
                "volume {volume:?}: source {src} contains '..'"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str, t: &str) -> AppMount {
        AppMount {
            volume: v.into(),
            target: t.into(),
            read_only: false,
        }
    }

    #[test]
    fn overlaps_are_refused() {
        assert!(check_overlaps("a", &[m("x", "/data"), m("y", "/data/sub")]).is_err());
        assert!(check_overlaps("a", &[m("x", "/data"), m("y", "/data")]).is_err());
        assert!(check_overlaps("a", &[m("x", "/data"), m("y", "/database")]).is_ok());
    }

    #[test]
    fn userns_owners_stay_in_the_range() {
        let v = |uid: u32, gid: u32| {
            let mut v = Volume::empty("data".parse().unwrap());
            v.uid = Some(uid);
            v.gid = Some(gid);
            v
        };
        assert!(check_userns_owners(&[v(65535, 0)], 65536).is_ok());
        let e = check_userns_owners(&[v(65536, 0)], 65536)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"data\"") && e.contains("uid 65536"), "{e}");
        let e = check_userns_owners(&[v(0, u32::MAX)], 65536)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gid 4294967295"), "{e}");
    }

    #[test]
    fn normalizes_targets() {
        assert_eq!(normalize("data//x/"), "/data/x");
        assert_eq!(normalize("/a/../b"), "/b");
    }

    #[test]
    fn host_sources_without_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let base = t.path().canonicalize().unwrap();
        assert!(check_host_source("v", base.join("real").to_str().unwrap()).is_ok());
        let e = check_host_source("v", base.join("link").to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("symlink"), "{e}");
        let e = check_host_source("v", base.join("missing").to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
