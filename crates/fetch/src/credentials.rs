//! Credentials for servers, from rkt's `auth.d/*.json` files (the `config` crate reads
//! and merges them: user over local over system, per domain and per registry) and from
//! Docker's `config.json`.
//!
//! ```json
//! {"rktKind": "auth", "rktVersion": "v1", "domains": ["example.com"],
//!  "type": "basic", "credentials": {"user": "u", "password": "p"}}
//! {"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["127.0.0.1:5000"],
//!  "credentials": {"user": "u", "password": "p"}}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::error::{FetchError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        user: String,
        password: String,
    },
    /// rkt's `oauth` type: a bearer token sent as it is.
    Token(String),
}

impl Credential {
    pub fn basic_header(user: &str, password: &str) -> String {
        let raw = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The Authorization header for a server that accepts these credentials directly.
    pub fn header(&self) -> String {
        match self {
            Credential::Basic { user, password } => Credential::basic_header(user, password),
            Credential::Token(t) => format!("Bearer {t}"),
        }
    }
}

/// Every credential configured, by the kind of server it is for.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// For HTTPS fetches and discovery (rkt `auth`), by domain.
    pub web: BTreeMap<String, Credential>,
    /// For registries (rkt `dockerAuth`, Docker config.json), by `host[:port]`.
    pub registries: BTreeMap<String, Credential>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl Credentials {
    /// Loads `<dir>/auth.d/*.json` from the configuration directories, lowest
    /// precedence first (system, local, user), then the Docker config files that exist
    /// (for registries no auth.d file names).
    pub fn load(config_dirs: &[PathBuf]) -> Result<Credentials> {
        let cfg =
            config::Config::load(config_dirs).map_err(|e| FetchError::Invalid(e.to_string()))?;
        let mut c = Credentials::from_config(&cfg);
        for p in docker_config_paths() {
            if p.is_file() {
                c.add_docker_config(&p)?;
            }
        }
        Ok(c)
    }

    /// The credentials of a merged configuration. AWS request signing is not done: such
    /// domains get no credentials.
    pub fn from_config(cfg: &config::Config) -> Credentials {
        let mut c = Credentials::default();
        for (domain, a) in &cfg.auth {
            let cred = match &a.value {
                config::Auth::Basic(b) => Credential::Basic {
                    user: b.user.clone(),
                    password: b.password.clone(),
                },
                config::Auth::OAuth { token } => Credential::Token(token.clone()),
                config::Auth::Aws { .. } => continue,
            };
            c.web.insert(domain.clone(), cred);
        }
        for (registry, b) in &cfg.docker_auth {
            c.registries
                .entry(normalize_registry(registry))
                .or_insert_with(|| Credential::Basic {
                    user: b.value.user.clone(),
                    password: b.value.password.clone(),
                });
        }
        c
    }

    fn add_docker_config(&mut self, path: &Path) -> Result<()> {
        let bad = |reason: String| FetchError::File {
            path: path.to_path_buf(),
            reason,
        };
        let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let cfg: DockerConfig = serde_json::from_slice(&data)
            .map_err(|e| bad(format!("not a valid Docker config: {e}")))?;
        for (server, a) in cfg.auths {
            let cred = if let (Some(u), Some(p)) = (&a.username, &a.password) {
                Credential::Basic {
                    user: u.clone(),
                    password: p.clone(),
                }
            } else if let Some(auth) = &a.auth {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| bad(format!("auth of {server} is not base64: {e}")))?;
                let raw = String::from_utf8_lossy(&raw).into_owned();
                let (u, p) = raw
                    .split_once(':')
                    .ok_or_else(|| bad(format!("auth of {server} is not user:password")))?;
                Credential::Basic {
                    user: u.to_string(),
                    password: p.to_string(),
                }
            } else if let Some(t) = &a.identitytoken {
                Credential::Token(t.clone())
            } else {
                continue;
            };
            self.registries
                .entry(normalize_registry(&server))
                .or_insert(cred);
        }
        Ok(())
    }

    /// Credentials for a registry at `authority` (`host[:port]`).
    pub fn for_registry(&self, authority: &str) -> Option<&Credential> {
        let host = authority.split(':').next().unwrap_or(authority);
        self.registries
            .get(authority)
            .or_else(|| self.registries.get(host))
            .or_else(|| {
                // Docker Hub is written several ways.
                (authority == "registry-1.docker.io").then(|| self.registries.get("docker.io"))?
            })
    }

    /// Credentials for a web server at `authority`.
    pub fn for_host(&self, authority: &str) -> Option<&Credential> {
        let host = authority.split(':').next().unwrap_or(authority);
        self.web.get(authority).or_else(|| self.web.get(host))
    }
}

/// `https://index.docker.io/v1/` and `docker.io` are one registry; `host:port` otherwise.
fn normalize_registry(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        other => other.to_string(),
    }
}

/// Docker's and podman's credential files, in the order they are consulted.
fn docker_config_paths() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(f) = std::env::var("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(f));
    }
    if let Ok(d) = std::env::var("DOCKER_CONFIG") {
        v.push(Path::new(&d).join("config.json"));
    } else if let Some(home) = std::env::var_os("HOME") {
        v.push(Path::new(&home).join(".docker/config.json"));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_d_and_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let authd = dir.path().join("auth.d");
        std::fs::create_dir(&authd).unwrap();
        std::fs::write(
            authd.join("a.json"),
            r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["127.0.0.1:5000"],"credentials":{"user":"u","password":"p"}}"#,
        )
        .unwrap();
        std::fs::write(
            authd.join("b.json"),
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["example.com"],"type":"oauth","credentials":{"token":"t"}}"#,
        )
        .unwrap();
        let c = Credentials::load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            c.for_registry("127.0.0.1:5000"),
            Some(&Credential::Basic {
                user: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(c.for_registry("127.0.0.1:5001"), None);
        assert_eq!(
            c.for_host("example.com"),
            Some(&Credential::Token("t".into()))
        );

        let cfg = dir.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"}}}"#,
        )
        .unwrap();
        let mut c = Credentials::default();
        c.add_docker_config(&cfg).unwrap();
        assert_eq!(
            c.for_registry("registry-1.docker.io"),
            Some(&Credential::Basic {
                user: "user".into(),
                password: "pass".into()
            })
        );
    }

    /// rkt's documented example (configuration.md, auth override semantics): the local
    /// file wins for the domain it names, whatever the files are called; the system
    /// file still serves the others.
    #[test]
    fn local_auth_overrides_system_per_domain() {
        let dir = tempfile::tempdir().unwrap();
        let (system, local) = (dir.path().join("system"), dir.path().join("local"));
        for d in [&system, &local] {
            std::fs::create_dir_all(d.join("auth.d")).unwrap();
        }
        std::fs::write(
            system.join("auth.d/coreos.json"),
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["coreos.com","tectonic.com","kubernetes.io"],"type":"oauth","credentials":{"token":"common-token"}}"#,
        )
        .unwrap();
        std::fs::write(
            local.join("auth.d/specific-coreos.json"),
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["coreos.com"],"type":"basic","credentials":{"user":"foo","password":"bar"}}"#,
        )
        .unwrap();
        std::fs::write(
            local.join("auth.d/specific-tectonic.json"),
            r#"{"rktKind":"auth","rktVersion":"v1","domains":["tectonic.com"],"type":"oauth","credentials":{"token":"tectonic-token"}}"#,
        )
        .unwrap();
        let c = Credentials::load(&[system, local]).unwrap();
        assert_eq!(
            c.for_host("coreos.com").unwrap().header(),
            "Basic Zm9vOmJhcg=="
        );
        assert_eq!(
            c.for_host("tectonic.com").unwrap().header(),
            "Bearer tectonic-token"
        );
        assert_eq!(
            c.for_host("kubernetes.io").unwrap().header(),
            "Bearer common-token"
        );
    }

    #[test]
    fn bad_auth_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let authd = dir.path().join("auth.d");
        std::fs::create_dir(&authd).unwrap();
        std::fs::write(authd.join("x.json"), "{").unwrap();
        let e = Credentials::load(&[dir.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json"), "{e}");
    }
}
