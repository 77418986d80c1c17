//! `Volumes` paths → mount points with names derived from the path.

use crate::error::SchemaError;
use crate::mount_point::MountPoint;
use crate::name::AcName;

fn normalise(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// `(name, path)` for each volume path, sorted by path: `/var/lib/data` →
/// `volume-var-lib-data`. Paths whose names collide after sanitising get
/// `-2`, `-3`, ... in that order.
pub fn mount_point_names(paths: &[String]) -> Result<Vec<(AcName, String)>, SchemaError> {
    let mut paths: Vec<String> = paths.iter().map(|p| normalise(p)).collect();
    paths.sort();
    paths.dedup();
    let mut out: Vec<(AcName, String)> = Vec::with_capacity(paths.len());
    for path in paths {
        if path.contains('\0') {
            return Err(SchemaError::invalid_because(
                "volume path",
                path,
                "contains a NUL byte",
            ));
        }
        let base = AcName::sanitize(&format!("volume-{path}"))?;
        let mut name = base.clone();
        let mut n = 2;
        while out.iter().any(|(taken, _)| *taken == name) {
            name = format!("{base}-{n}").parse()?;
            n += 1;
        }
        out.push((name, path));
    }
    Ok(out)
}

pub(crate) fn mount_points(paths: &[String]) -> Result<Vec<MountPoint>, SchemaError> {
    Ok(mount_point_names(paths)?
        .into_iter()
        .map(|(name, path)| MountPoint {
            name,
            path,
            read_only: false,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[&str]) -> Vec<(String, String)> {
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        mount_point_names(&paths)
            .unwrap()
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect()
    }

    #[test]
    fn derives_names() {
        let t = |n: &str, p: &str| (n.to_string(), p.to_string());
        assert_eq!(
            names(&["/var/lib/data"]),
            [t("volume-var-lib-data", "/var/lib/data")]
        );
        assert_eq!(
            names(&["/data/", "/Data", "/data"]),
            [t("volume-data", "/Data"), t("volume-data-2", "/data")]
        );
        assert_eq!(
            names(&["/a_b", "/a-b", "/a.b"]),
            [
                t("volume-a-b", "/a-b"),
                t("volume-a-b-2", "/a.b"),
                t("volume-a-b-3", "/a_b")
            ]
        );
        assert_eq!(names(&["/"]), [t("volume", "/")]);
        assert_eq!(
            names(&["relative/dir"]),
            [t("volume-relative-dir", "/relative/dir")]
        );
    }
}
