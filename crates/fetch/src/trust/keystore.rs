//! The trust store, laid out as rkt lays it out:
//!
//! ```text
//! <config>/trustedkeys/root.d/<fingerprint>                 trusted for every image
//! <config>/trustedkeys/prefix.d/<prefix>/<fingerprint>      for names under <prefix>
//! <config>/trustedkeys/.../<fingerprint>.origin             where vessel got it (JSON)
//! ```
//!
//! Keys in the system config count as well; a file of the same path in the local config
//! replaces one, and an empty one masks it.

use std::fs;
use std::path::{Path, PathBuf};

use pgp::composed::SignedPublicKey;
use serde::{Deserialize, Serialize};

use super::keys::{armored, fingerprint_hex, parse_keys};
use crate::error::{FetchError, Result};

/// Which images a key is trusted for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Root,
    Prefix(String),
}

impl Scope {
    /// Whether an image named `name` falls under this scope: the prefix is the name or a
    /// parent of it, component by component (`example.com/app` covers
    /// `example.com/app/web`, not `example.com/apple`).
    pub fn covers(&self, name: &str) -> bool {
        match self {
            Scope::Root => true,
            Scope::Prefix(p) => {
                let p = p.trim_end_matches('/');
                name == p
                    || name
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }

    /// The `vessel trust` flag that gives this scope.
    pub fn flag(&self) -> String {
        match self {
            Scope::Root => "--root".into(),
            Scope::Prefix(p) => format!("--prefix={p}"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Root => write!(f, "every image (root)"),
            Scope::Prefix(p) => write!(f, "prefix {p}"),
        }
    }
}

/// Where a key came from, recorded when it was added.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Origin {
    /// The file or URL the key was read from.
    pub source: String,
    /// `file`, `https`, `http`, `discovery`, or `discovery (trust on first use)`.
    pub how: String,
    pub added: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub fingerprint: String,
    pub scope: Scope,
    /// The file it was read from.
    pub path: PathBuf,
    /// Whether it comes from the system config (a distribution's keys).
    pub system: bool,
    /// The configuration it comes from: `user`, `local` or `system`.
    pub config: &'static str,
    pub origin: Option<Origin>,
    pub key: SignedPublicKey,
}

/// Trusted keys in up to three configuration directories, highest precedence first; keys
/// are added to the first.
pub struct Keystore {
    /// (`<config>/trustedkeys`, its name), highest precedence first.
    layers: Vec<(PathBuf, &'static str)>,
}

/// Checks a prefix is an appc name prefix that is safe as a relative path.
pub fn validate_prefix(prefix: &str) -> Result<String> {
    let p = prefix.trim().trim_end_matches('/');
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~/".contains(&b));
    if !ok {
        return Err(FetchError::Invalid(format!(
            "{prefix:?} is not a valid image name prefix (lower-case letters, digits, '-', '.', '_', '~' and '/' between components)"
        )));
    }
    Ok(p.to_string())
}

fn is_fingerprint_name(name: &str) -> bool {
    (name.len() == 40 || name.len() == 64) && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Keystore {
    /// `<local-config>/trustedkeys` and `<system-config>/trustedkeys`.
    pub fn new(local_config: &Path, system_config: &Path) -> Keystore {
        Keystore {
            layers: vec![
                (local_config.join("trustedkeys"), "local"),
                (system_config.join("trustedkeys"), "system"),
            ],
        }
    }

    /// A rootless user's: `<user-config>/trustedkeys` (where keys are added), over the
    /// local and system ones (root's /etc/vessel and /usr/lib/vessel, still read).
    pub fn for_user(user_config: &Path, local_config: &Path, system_config: &Path) -> Keystore {
        let mut k = Keystore::new(local_config, system_config);
        k.layers
            .insert(0, (user_config.join("trustedkeys"), "user"));
        k
    }

    /// Where keys are added.
    pub fn writable(&self) -> &Path {
        &self.layers[0].0
    }

    fn scope_dir(base: &Path, scope: &Scope) -> PathBuf {
        match scope {
            Scope::Root => base.join("root.d"),
            Scope::Prefix(p) => base.join("prefix.d").join(p),
        }
    }

    /// Stores `key` for `scope` in the local config; returns where.
    pub fn add(&self, key: &SignedPublicKey, scope: &Scope, origin: &Origin) -> Result<PathBuf> {
        let dir = Keystore::scope_dir(self.writable(), scope);
        let io = |p: &Path, e: std::io::Error| FetchError::File {
            path: p.to_path_buf(),
            reason: e.to_string(),
        };
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let fp = fingerprint_hex(key);
        let path = dir.join(&fp);
        write_file(&path, &armored(key)).map_err(|e| io(&path, e))?;
        let side = dir.join(format!("{fp}.origin"));
        let json = serde_json::to_vec_pretty(origin).expect("serialisable");
        write_file(&side, &json).map_err(|e| io(&side, e))?;
        Ok(path)
    }

    /// Every usable trusted key, user's and local ones first; a key file replaced or
    /// masked (by an empty file) in a configuration of higher precedence left out.
    pub fn list(&self) -> Result<Vec<TrustedKey>> {
        let mut out = Vec::new();
        for (i, (base, name)) in self.layers.iter().enumerate() {
            for (rel, scope) in collect(base)? {
                if self.layers[..i].iter().any(|(b, _)| b.join(&rel).exists()) {
                    continue; // replaced, or masked by an empty file
                }
                if let Some(mut k) = load(&base.join(&rel), scope, *name == "system")? {
                    k.config = name;
                    out.push(k);
                }
            }
        }
        Ok(out)
    }

    /// Keys trusted for an image named `name`.
    pub fn keys_for(&self, name: &str) -> Result<Vec<TrustedKey>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|k| k.scope.covers(name))
            .collect())
    }
}

fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

/// (path relative to the trustedkeys dir, scope) of every key file under `base`.
fn collect(base: &Path) -> Result<Vec<(PathBuf, Scope)>> {
    let mut out = Vec::new();
    let root = base.join("root.d");
    for name in fingerprint_files(&root)? {
        out.push((Path::new("root.d").join(name), Scope::Root));
    }
    let prefixes = base.join("prefix.d");
    walk_prefixes(&prefixes, &prefixes, &mut out)?;
    Ok(out)
}

fn walk_prefixes(top: &Path, dir: &Path, out: &mut Vec<(PathBuf, Scope)>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            subdirs.push(e.path());
        }
    }
    if dir != top {
        let prefix = dir
            .strip_prefix(top)
            .expect("under prefix.d")
            .to_string_lossy()
            .into_owned();
        for name in fingerprint_files(dir)? {
            out.push((
                Path::new("prefix.d").join(&prefix).join(name),
                Scope::Prefix(prefix.clone()),
            ));
        }
    }
    subdirs.sort();
    for d in subdirs {
        walk_prefixes(top, &d, out)?;
    }
    Ok(())
}

fn fingerprint_files(dir: &Path) -> Result<Vec<String>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| is_fingerprint_name(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Reads one key file; `None` for an empty (masking) file.
fn load(path: &Path, scope: Scope, system: bool) -> Result<Option<TrustedKey>> {
    let data = fs::read(path).map_err(|e| FetchError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    let mut keys = parse_keys(&data).map_err(|reason| FetchError::File {
        path: path.to_path_buf(),
        reason: format!("trusted key file {reason}"),
    })?;
    let key = keys.remove(0);
    let origin = fs::read(path.with_file_name(format!(
        "{}.origin",
        path.file_name().unwrap().to_string_lossy()
    )))
    .ok()
    .and_then(|d| serde_json::from_slice(&d).ok());
    Ok(Some(TrustedKey {
        fingerprint: fingerprint_hex(&key),
        scope,
        path: path.to_path_buf(),
        system,
        config: if system { "system" } else { "local" },
        origin,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_by_component() {
        let p = Scope::Prefix("example.com/app".into());
        assert!(p.covers("example.com/app"));
        assert!(p.covers("example.com/app/web"));
        assert!(!p.covers("example.com/apple"));
        assert!(!p.covers("example.com"));
        assert!(Scope::Root.covers("anything"));
    }

    #[test]
    fn prefixes_are_safe_paths() {
        assert!(validate_prefix("example.com/app").is_ok());
        assert!(validate_prefix("../etc").is_err());
        assert!(validate_prefix("/abs").is_err());
        assert!(validate_prefix("a//b").is_err());
        assert!(validate_prefix("Example.com").is_err());
    }
}
