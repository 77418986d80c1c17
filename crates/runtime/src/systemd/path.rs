//! `linux.cgroupsPath` in the systemd driver's form, `slice:prefix:name`, as runc reads it:
//! the slice (default `system.slice`, `user.slice` for a rootless caller) whose
//! `-`-separated name places it under its parents as systemd does (`a-b.slice` lives in
//! `a.slice/a-b.slice`); the unit is the scope `prefix-name.scope`, or the slice `name`
//! itself when the name ends in `.slice`. Pure data: no systemd is asked.

use std::path::PathBuf;

/// Prefix of scopes made for a container whose config names no cgroupsPath.
pub const DEFAULT_PREFIX: &str = "vessel-runtime";
pub const DEFAULT_SLICE: &str = "system.slice";
pub const ROOTLESS_SLICE: &str = "user.slice";

/// The unit a container's processes live in, and where systemd puts its cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPath {
    /// The slice the unit goes in (its `Slice=`, or a new slice's `Wants=`).
    pub slice: String,
    /// The unit's name: `prefix-name.scope` or `name.slice`.
    pub unit: String,
    /// Its cgroup below each hierarchy's root, e.g. `system.slice/vessel-runtime-c1.scope`.
    pub cgroup: PathBuf,
}

impl UnitPath {
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {0:?} instead")]
    Form(String),
    #[error("invalid slice name {0:?}: {1}")]
    Slice(String, &'static str),
    #[error("invalid unit name {0:?}: {1}")]
    Unit(String, &'static str),
}

/// Reads `cgroups_path` (None: the config names none) for container `id`.
pub fn parse(cgroups_path: Option<&str>, id: &str, rootless: bool) -> Result<UnitPath, PathError> {
    let default_slice = if rootless {
        ROOTLESS_SLICE
    } else {
        DEFAULT_SLICE
    };
    let (slice, prefix, name) = match cgroups_path {
        None | Some("") => (default_slice, DEFAULT_PREFIX, id),
        Some(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(PathError::Form(text.to_string()));
            };
            let slice = if slice.is_empty() {
                default_slice
            } else {
                slice
            };
            (slice, prefix, name)
        }
    };
    if name.is_empty() {
        return Err(PathError::Form(
            cgroups_path.unwrap_or_default().to_string(),
        ));
    }
    let slice_dir = expand_slice(slice)?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    check_unit(&unit)?;
    let cgroup = if name.ends_with(".slice") {
        // systemd places a slice by its name, whatever slice wants it.
        expand_slice(name)?
    } else {
        slice_dir.join(&unit)
    };
    Ok(UnitPath {
        slice: slice.to_string(),
        unit,
        cgroup,
    })
}

/// Where systemd puts the slice's cgroup: `a-b-c.slice` is `a.slice/a-b.slice/a-b-c.slice`;
/// the root slice `-.slice` is the root itself (an empty path).
pub fn expand_slice(slice: &str) -> Result<PathBuf, PathError> {
    let bad = |why| Err(PathError::Slice(slice.to_string(), why));
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad("a slice's name ends in .slice");
    };
    if slice.contains('/') {
        return bad("a slice's name holds no '/'");
    }
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return bad("empty part between '-' separators");
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    check_unit(slice)?;
    Ok(path)
}

/// systemd's rule for unit names: letters, digits and `:-_.\@`, at most 255 bytes, not
/// starting with '.' (systemd would refuse it later, less clearly).
fn check_unit(unit: &str) -> Result<(), PathError> {
    let bad = |why| Err(PathError::Unit(unit.to_string(), why));
    if unit.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if unit.starts_with('.') {
        return bad("starts with '.'");
    }
    let ok = unit.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\' | b'@')
    });
    if !ok {
        return bad("systemd allows only letters, digits and \":-_.\\@\"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: Option<&str>) -> Result<UnitPath, PathError> {
        parse(path, "c1", false)
    }

    #[test]
    fn a_scope_in_a_slice() {
        let u = p(Some("system.slice:docker:abc")).unwrap();
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.unit, "docker-abc.scope");
        assert_eq!(u.cgroup, PathBuf::from("system.slice/docker-abc.scope"));
        assert!(!u.is_slice());
    }

    #[test]
    fn defaults() {
        let u = p(None).unwrap();
        assert_eq!(u.unit, "vessel-runtime-c1.scope");
        assert_eq!(
            u.cgroup,
            PathBuf::from("system.slice/vessel-runtime-c1.scope")
        );
        let u = p(Some(":cri-containerd:x")).unwrap();
        assert_eq!(
            u.cgroup,
            PathBuf::from("system.slice/cri-containerd-x.scope")
        );
        let u = parse(Some(":podman:x"), "c1", true).unwrap();
        assert_eq!(u.cgroup, PathBuf::from("user.slice/podman-x.scope"));
        // No prefix: the name alone.
        assert_eq!(p(Some("system.slice::x")).unwrap().unit, "x.scope");
    }

    #[test]
    fn dashes_nest_slices() {
        let u = p(Some("kubepods-besteffort-pod12.slice:cri-containerd:c")).unwrap();
        assert_eq!(
            u.cgroup,
            PathBuf::from(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-c.scope"
            )
        );
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::new());
        assert_eq!(
            p(Some("-.slice:p:n")).unwrap().cgroup,
            PathBuf::from("p-n.scope")
        );
    }

    #[test]
    fn a_name_ending_in_slice_makes_a_slice() {
        let u = p(Some("system.slice:ignored:machine-x.slice")).unwrap();
        assert!(u.is_slice());
        assert_eq!(u.unit, "machine-x.slice");
        assert_eq!(u.slice, "system.slice");
        assert_eq!(u.cgroup, PathBuf::from("machine.slice/machine-x.slice"));
    }

    #[test]
    fn bad_forms_are_refused_clearly() {
        for bad in ["/a/b", "a:b", "a:b:c:d", "system.slice:p:"] {
            let e = p(Some(bad)).unwrap_err();
            assert!(matches!(e, PathError::Form(_)), "{bad}: {e}");
            assert!(e.to_string().contains("slice:prefix:name"), "{e}");
        }
        for bad in [
            "system:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "a-.slice:p:n",
            "a/b.slice:p:n",
        ] {
            let e = p(Some(bad)).unwrap_err();
            assert!(matches!(e, PathError::Slice(..)), "{bad}: {e}");
        }
        for bad in [
            "system.slice:p:a/b",
            "system.slice:p q:n",
            "system.slice:p:é",
        ] {
            let e = p(Some(bad)).unwrap_err();
            assert!(matches!(e, PathError::Unit(..)), "{bad}: {e}");
        }
        let long = format!("system.slice:p:{}", "x".repeat(300));
        assert!(matches!(p(Some(&long)), Err(PathError::Unit(..))));
    }
}
