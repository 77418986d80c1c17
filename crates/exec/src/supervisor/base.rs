//! The base layer: the lowest overlay layer of every app, holding only the mount points
//! the executor needs (/proc, /dev, /sys) and the /etc files it binds over (hostname,
//! hosts, resolv.conf). With it, starting a pod writes nothing into the app's upper layer
//! for images that lack them, which keeps creating and removing pods cheap.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DIRS: &[&str] = &["proc", "dev", "sys", "etc"];
pub const ETC_FILES: &[&str] = &["hostname", "hosts", "resolv.conf"];

/// The base layer at `dest`, made once (atomically, beside it) and reused.
pub fn ensure(dest: &Path) -> io::Result<PathBuf> {
    let dest = dest.to_path_buf();
    if dest.join("etc/hosts").exists() {
        return Ok(dest);
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = parent.join(format!(".{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    for d in DIRS {
        fs::create_dir(tmp.join(d))?;
        fs::set_permissions(tmp.join(d), fs::Permissions::from_mode(0o755))?;
    }
    for f in ETC_FILES {
        fs::write(tmp.join("etc").join(f), b"")?;
        fs::set_permissions(tmp.join("etc").join(f), fs::Permissions::from_mode(0o644))?;
    }
    match fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        // Another vessel made it first.
        Err(_) if dest.join("etc/hosts").exists() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_with_mount_points_and_etc_files() {
        let t = tempfile::tempdir().unwrap();
        let a = ensure(&t.path().join("base-rootfs")).unwrap();
        for d in DIRS {
            assert!(a.join(d).is_dir());
        }
        assert_eq!(fs::read(a.join("etc/hosts")).unwrap(), b"");
        let b = ensure(&t.path().join("base-rootfs")).unwrap();
        assert_eq!(a, b);
    }
}
