//! Every on-disk path of the runtime, in one place.
//!
//! ```text
//! <root>/                    --root, default /run/vessel-runtime, mode 0700
//!   <id>/                    one directory per container, made under a hidden name and
//!                            renamed into place when its state is first written
//!     state.json             the container's record (see state.rs), replaced atomically
//!     exec.fifo              created: the container's process waits to read a byte from
//!                            it; `start` writes one (removed once started)
//!     lock                   flock taken by every command that changes the container
//! ```

use std::path::{Path, PathBuf};

/// runc's default is /run/runc; ours sits beside it.
pub const DEFAULT_ROOT: &str = "/run/vessel-runtime";

/// The runtime's state directory (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
    /// `--systemd-cgroup`: new containers' cgroups are systemd units.
    systemd_cgroup: bool,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root {
            dir: dir.into(),
            systemd_cgroup: false,
        }
    }

    pub fn with_systemd_cgroup(mut self, on: bool) -> Root {
        self.systemd_cgroup = on;
        self
    }

    pub fn systemd_cgroup(&self) -> bool {
        self.systemd_cgroup
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the container `id` (an id already checked by `check_id`).
    pub fn container(&self, id: &str) -> ContainerDir {
        ContainerDir {
            dir: self.dir.join(id),
        }
    }

    /// Where a container's directory is built before it is renamed into place: hidden
    /// names are never listed.
    pub fn staging(&self, id: &str) -> PathBuf {
        self.dir.join(format!(".{id}.creating"))
    }
}

/// One container's directory.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    dir: PathBuf,
}

impl ContainerDir {
    pub fn at(dir: impl Into<PathBuf>) -> ContainerDir {
        ContainerDir { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    pub fn exec_fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
}

/// runc's rule for container ids: letters, digits, `_`, `+`, `-` and `.`, not `.` or
/// `..`, at most 1024 bytes (the id names a directory and a cgroup).
pub fn check_id(id: &str) -> Result<(), crate::error::RuntimeError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(crate::error::RuntimeError::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_runc_takes_them() {
        for good in ["a", "abc-123", "x_y.z+1", "0123456789abcdef"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        let long = "a".repeat(1025);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a b",
            "a\0b",
            "é",
            long.as_str(),
        ] {
            let e = check_id(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid id format"), "{e}");
        }
    }

    #[test]
    fn paths() {
        let root = Root::new("/run/x");
        assert_eq!(
            root.container("c1").state(),
            PathBuf::from("/run/x/c1/state.json")
        );
        assert_eq!(root.staging("c1"), PathBuf::from("/run/x/.c1.creating"));
    }
}
