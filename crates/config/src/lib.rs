//! rkt's configuration files: `auth.d/` (kinds `auth` and `dockerAuth`), `paths.d/`
//! (`paths`) and `stage1.d/` (`stage1`), each a directory of `*.json` files, under the
//! system, local and (if given) user configuration directories.
//!
//! As rkt (Documentation/configuration.md): every file names its `rktKind` and
//! `rktVersion` (only `v1` exists); within one directory a domain, registry, path or stage1
//! field may be set by one file only; a later directory (local over system, user over
//! local) overrides per domain, per registry, per path and per stage1 field, whatever the
//! files are called. A bad file is refused with its path and the field at fault.

mod kinds;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use kinds::{Auth, BasicCredentials};

/// The subdirectories read, and the kinds each may hold.
/// `logs.d` (kind `logs`) is Vessel's own: the cap on each app's log.
pub const SUBDIRS: [(&str, &[&str]); 4] = [
    ("auth.d", &["auth", "dockerAuth"]),
    ("paths.d", &["paths"]),
    ("stage1.d", &["stage1"]),
    ("logs.d", &["logs"]),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}: field {field:?}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
    /// The same setting made twice within one configuration directory.
    #[error("{path}: {what} is already set by {other} (in one configuration directory, only one file may set it)")]
    Duplicate {
        path: PathBuf,
        what: String,
        other: PathBuf,
    },
}

pub type Result<T> = std::result::Result<T, ConfigError>;

/// A value and the file that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub file: PathBuf,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `auth`: credentials for web servers (HTTPS fetches, discovery), by domain.
    pub auth: BTreeMap<String, Sourced<Auth>>,
    /// `dockerAuth`: credentials for registries, by registry (`host[:port]`).
    pub docker_auth: BTreeMap<String, Sourced<BasicCredentials>>,
    /// `paths`: `data`.
    pub data: Option<Sourced<PathBuf>>,
    /// `paths`: `stage1-images`.
    pub stage1_images: Option<Sourced<PathBuf>>,
    /// `stage1`: `name` and `version`, set together.
    pub stage1_name_version: Option<Sourced<(String, String)>>,
    /// `stage1`: `location`.
    pub stage1_location: Option<Sourced<String>>,
    /// `logs`: `maxSize`, the cap on each app's log in bytes (0: none).
    pub log_max_size: Option<Sourced<u64>>,
}

/// Where Vessel looks when nothing is configured.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/vessel";
pub const DEFAULT_STAGE1_IMAGES_DIR: &str = "/usr/lib/vessel/stage1-images";

impl Config {
    /// Reads the configuration directories, lowest precedence first (system, local,
    /// user). A directory that does not exist adds nothing.
    pub fn load(dirs: &[PathBuf]) -> Result<Config> {
        Config::load_only(dirs, &SUBDIRS.map(|(d, _)| d))
    }

    /// Only the given subdirectories (`"paths.d"`, ...): a command that needs the data
    /// directory is not stopped by a bad auth file it would never use.
    pub fn load_only(dirs: &[PathBuf], subdirs: &[&str]) -> Result<Config> {
        let mut merged = Config::default();
        for dir in dirs {
            merged.override_with(Config::load_dir(dir, subdirs)?);
        }
        Ok(merged)
    }

    /// One configuration directory on its own.
    fn load_dir(dir: &Path, only: &[&str]) -> Result<Config> {
        let mut cfg = Config::default();
        for (sub, kinds) in SUBDIRS.iter().filter(|(d, _)| only.contains(d)) {
            let d = dir.join(sub);
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ConfigError::File {
                        path: d,
                        reason: e.to_string(),
                    })
                }
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                .collect();
            // In name order, so that a duplicate is reported the same way every time.
            files.sort();
            for f in files {
                kinds::parse_file(&mut cfg, &f, kinds)?;
            }
        }
        Ok(cfg)
    }

    /// `other` (a directory of higher precedence) wins per domain, registry and field.
    fn override_with(&mut self, other: Config) {
        self.auth.extend(other.auth);
        self.docker_auth.extend(other.docker_auth);
        if other.data.is_some() {
            self.data = other.data;
        }
        if other.stage1_images.is_some() {
            self.stage1_images = other.stage1_images;
        }
        if other.stage1_name_version.is_some() {
            self.stage1_name_version = other.stage1_name_version;
        }
        if other.stage1_location.is_some() {
            self.stage1_location = other.stage1_location;
        }
        if other.log_max_size.is_some() {
            self.log_max_size = other.log_max_size;
        }
    }

    /// The data directory `paths.d` names, if any.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data.as_ref().map(|s| s.value.as_path())
    }

    /// What `vessel config` prints: rkt's `{"stage0": [...]}`, one entry per auth domain
    /// and per registry, then the paths and the default stage1, each a valid
    /// configuration file of its kind. `data_dir` is the data directory in effect.
    pub fn to_rkt_json(&self, data_dir: &Path) -> serde_json::Value {
        use serde_json::json;
        let mut stage0 = Vec::new();
        for (domain, a) in &self.auth {
            let (kind, credentials) = a.value.to_json();
            stage0.push(json!({
                "rktVersion": "v1",
                "rktKind": "auth",
                "domains": [domain],
                "type": kind,
                "credentials": credentials,
            }));
        }
        for (registry, c) in &self.docker_auth {
            stage0.push(json!({
                "rktVersion": "v1",
                "rktKind": "dockerAuth",
                "registries": [registry],
                "credentials": {"user": c.value.user, "password": c.value.password},
            }));
        }
        let stage1_images = self
            .stage1_images
            .as_ref()
            .map(|s| s.value.display().to_string())
            .unwrap_or_else(|| DEFAULT_STAGE1_IMAGES_DIR.into());
        stage0.push(json!({
            "rktVersion": "v1",
            "rktKind": "paths",
            "data": data_dir.display().to_string(),
            "stage1-images": stage1_images,
        }));
        let (name, version) = self
            .stage1_name_version
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_default();
        stage0.push(json!({
            "rktVersion": "v1",
            "rktKind": "stage1",
            "name": name,
            "version": version,
            "location": self.stage1_location.as_ref().map(|s| s.value.clone()).unwrap_or_default(),
        }));
        if let Some(l) = &self.log_max_size {
            stage0.push(json!({
                "rktVersion": "v1",
                "rktKind": "logs",
                "maxSize": l.value,
            }));
        }
        json!({ "stage0": stage0 })
    }
}

/// A size as `--log-size` takes it: bytes, or with a unit (K, M, G as powers of 1000;
/// Ki, Mi, Gi as powers of 1024; a trailing B allowed: 100MiB, 50MB). 0: no cap.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (write it as 100MiB, 50M or 1048576)"))?;
    let unit = unit.trim();
    let unit = unit.strip_suffix('B').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "K" | "k" => 1000,
        "M" => 1000 * 1000,
        "G" => 1000 * 1000 * 1000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (use K, M, G, Ki, Mi or Gi)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100MiB").unwrap(), 100 << 20);
        assert_eq!(parse_size("100Mi").unwrap(), 100 << 20);
        assert_eq!(parse_size("50M").unwrap(), 50_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("lots").unwrap_err().contains("lots"));
        assert!(parse_size("5T").unwrap_err().contains("unit"));
    }
}
