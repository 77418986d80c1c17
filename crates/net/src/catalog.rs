//! Every network a pod may join: the configuration files of `<system-config>/net.d` and
//! `<local-config>/net.d` (`*.conf`, `*.conflist`; a local file of the same name replaces
//! a system one, and an empty local file masks it), plus the built-in `default` and
//! `default-restricted` unless a file defines a network of that name. Networks are
//! ordered by file name, as rkt ordered them: that order gives the interface names.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::builtin;
use crate::config::{ConfKind, ConfList};
use crate::error::{NetError, Result};
use crate::selection::NetSelection;

/// One network definition.
#[derive(Debug, Clone)]
pub struct NetworkDef {
    pub name: String,
    /// The file it came from; None for a built-in network.
    pub file: Option<PathBuf>,
    pub kind: ConfKind,
    /// The file's bytes (for a built-in, its full configuration).
    pub bytes: Vec<u8>,
    pub list: ConfList,
    /// The file name it sorts under.
    pub sort_name: String,
}

impl NetworkDef {
    /// What rkt's `netConf` shows: the file, or `builtin:NAME`.
    pub fn origin(&self) -> String {
        match &self.file {
            Some(f) => f.display().to_string(),
            None => format!("builtin:{}", self.name),
        }
    }

    /// Whether the pod's traffic leaving the network is masqueraded (by a plugin, or for a
    /// built-in network by the subnet's rules).
    pub fn masquerades(&self) -> bool {
        self.list.masquerades()
            || (self.file.is_none() && builtin::masqueraded_subnet(&self.name).is_some())
    }
}

#[derive(Debug, Clone)]
pub struct Catalog {
    defs: Vec<NetworkDef>,
    dirs: Vec<PathBuf>,
    /// Files skipped, said once to the user (a network defined twice).
    pub warnings: Vec<String>,
}

impl Catalog {
    /// Reads the `net.d` directories `dirs`, lowest precedence first (system, then local).
    /// A file that is not a valid configuration is an error naming it: a network the
    /// operator meant to define must not silently be missing.
    pub fn load(dirs: &[PathBuf]) -> Result<Catalog> {
        // File name -> the path that wins (the last directory holding it).
        let mut files: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
        for dir in dirs {
            let rd = match std::fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(NetError::io(dir.display().to_string(), e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| NetError::io(dir.display().to_string(), e))?;
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if ConfKind::of_file(&name).is_none() {
                    continue;
                }
                let path = ent.path();
                let meta = std::fs::metadata(&path)
                    .map_err(|e| NetError::io(path.display().to_string(), e))?;
                if !meta.is_file() {
                    continue;
                }
                // An empty file masks the one of the same name in a lower directory.
                files.insert(name, (meta.len() > 0).then_some(path));
            }
        }
        let mut defs: Vec<NetworkDef> = Vec::new();
        let mut warnings = Vec::new();
        for (file_name, path) in files {
            let Some(path) = path else { continue };
            let kind = ConfKind::of_file(&file_name).expect("filtered above");
            let bytes = read_limited(&path)?;
            let list = ConfList::parse(&bytes, kind).map_err(|reason| NetError::Config {
                file: path.clone(),
                reason,
            })?;
            if let Some(first) = defs.iter().find(|d| d.name == list.name) {
                warnings.push(format!(
                    "network {:?} is defined in {} and again in {}; using the first",
                    list.name,
                    first.origin(),
                    path.display()
                ));
                continue;
            }
            defs.push(NetworkDef {
                name: list.name.clone(),
                file: Some(path),
                kind,
                bytes,
                list,
                sort_name: file_name,
            });
        }
        for name in [builtin::DEFAULT, builtin::DEFAULT_RESTRICTED] {
            if defs.iter().any(|d| d.name == name) {
                continue;
            }
            let bytes = builtin::conflist(name, true).expect("a built-in network");
            let list = ConfList::parse(&bytes, ConfKind::Conflist).expect("built-ins parse");
            defs.push(NetworkDef {
                name: name.into(),
                file: None,
                kind: ConfKind::Conflist,
                bytes,
                list,
                sort_name: builtin::sort_name(name),
            });
        }
        defs.sort_by(|a, b| a.sort_name.cmp(&b.sort_name));
        Ok(Catalog {
            defs,
            dirs: dirs.to_vec(),
            warnings,
        })
    }

    pub fn get(&self, name: &str) -> Option<&NetworkDef> {
        self.defs.iter().find(|d| d.name == name)
    }

    pub fn all(&self) -> &[NetworkDef] {
        &self.defs
    }

    /// The networks `sel` joins, in joining order. An unknown name is an error naming it,
    /// the directories searched and the networks known.
    pub fn select(&self, sel: &NetSelection) -> Result<Vec<&NetworkDef>> {
        if !sel.uses_cni() {
            return Ok(Vec::new());
        }
        let wanted = sel.explicit_names();
        for name in &wanted {
            if self.get(name).is_none() {
                return Err(NetError::UnknownNetwork {
                    name: name.clone(),
                    searched: self.searched(),
                    known: self
                        .defs
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(self
            .defs
            .iter()
            .filter(|d| sel.is_all() || wanted.contains(&d.name))
            .collect())
    }

    fn searched(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// The `net.d` directories of a system and a local configuration directory, lowest
/// precedence first.
pub fn config_dirs(system_config: &Path, local_config: &Path) -> Vec<PathBuf> {
    vec![system_config.join("net.d"), local_config.join("net.d")]
}

fn read_limited(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| NetError::io(path.display().to_string(), e))?;
    let mut bytes = Vec::new();
    f.take(crate::config::MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| NetError::io(path.display().to_string(), e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), body).unwrap();
    }

    fn conf(name: &str, plugin: &str) -> String {
        format!(r#"{{"cniVersion":"0.4.0","name":"{name}","type":"{plugin}"}}"#)
    }

    #[test]
    fn local_files_win_and_empty_ones_mask() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("sys/net.d");
        let local = t.path().join("local/net.d");
        write(&sys, "10-a.conf", &conf("a", "bridge"));
        write(&local, "10-a.conf", &conf("a", "ptp"));
        write(&sys, "20-b.conf", &conf("b", "bridge"));
        write(&local, "20-b.conf", "");
        write(
            &sys,
            "30-c.conflist",
            r#"{"name":"c","plugins":[{"type":"macvlan"}]}"#,
        );
        write(&local, "README", "not a network");
        let c = Catalog::load(&[sys, local]).unwrap();
        assert_eq!(c.get("a").unwrap().list.types(), ["ptp"]);
        assert!(c.get("b").is_none());
        assert_eq!(c.get("c").unwrap().kind, ConfKind::Conflist);
        let order: Vec<&str> = c.all().iter().map(|d| d.name.as_str()).collect();
        // rkt's file names: 99-default-restricted.conf sorts before 99-default.conf.
        assert_eq!(order, ["a", "c", "default-restricted", "default"]);
    }

    #[test]
    fn a_file_overrides_a_built_in_network() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "50-mine.conf", &conf("default", "bridge"));
        let c = Catalog::load(&[t.path().to_path_buf()]).unwrap();
        let d = c.get("default").unwrap();
        assert!(d.file.is_some());
        assert_eq!(d.list.types(), ["bridge"]);
        assert!(c.get("default-restricted").unwrap().file.is_none());
    }

    #[test]
    fn selection_follows_file_order_and_rkt_rules() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "10-x.conf", &conf("x", "bridge"));
        write(t.path(), "05-y.conf", &conf("y", "bridge"));
        let c = Catalog::load(&[t.path().to_path_buf()]).unwrap();
        let names = |sel: &[&str]| -> Vec<String> {
            c.select(&NetSelection::parse(sel).unwrap())
                .unwrap()
                .iter()
                .map(|d| d.name.clone())
                .collect()
        };
        assert_eq!(names(&[]), ["default"]);
        assert_eq!(names(&["x"]), ["x", "default-restricted"]);
        assert_eq!(names(&["default,x,y"]), ["y", "x", "default"]);
        assert_eq!(names(&["all"]), ["y", "x", "default-restricted", "default"]);
        assert!(names(&["none"]).is_empty());
        let e = c
            .select(&NetSelection::parse(&["nope"]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown network \"nope\""), "{e}");
        assert!(
            e.contains("known: y, x, default-restricted, default"),
            "{e}"
        );
    }

    #[test]
    fn bad_files_and_duplicates() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "10-bad.conf", "{not json");
        let e = Catalog::load(&[t.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10-bad.conf") && e.contains("not valid JSON"),
            "{e}"
        );
        std::fs::remove_file(t.path().join("10-bad.conf")).unwrap();
        write(t.path(), "10-a.conf", &conf("same", "bridge"));
        write(t.path(), "20-a.conf", &conf("same", "ptp"));
        let c = Catalog::load(&[t.path().to_path_buf()]).unwrap();
        assert_eq!(c.get("same").unwrap().list.types(), ["bridge"]);
        assert_eq!(c.warnings.len(), 1);
    }
}
