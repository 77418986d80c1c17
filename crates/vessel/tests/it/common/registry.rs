//! Debian's `docker-registry` run by a test on 127.0.0.1 (a free port, its own storage
//! directory), optionally with htpasswd or bearer-token auth and TLS from a test CA made by
//! `openssl`; images pushed into it by `skopeo copy`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::httpd::{free_port, wait_for_port};
use super::oci::run_tool;
use super::token::{TokenService, ISSUER, SERVICE};

/// A certificate authority for one test, and a server certificate for 127.0.0.1.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("vessel-ca-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        run_tool(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=vessel test CA"])
                .arg("-keyout")
                .arg(d.join("ca.key"))
                .arg("-out")
                .arg(d.join("ca.crt")),
        );
        run_tool(
            Command::new("openssl")
                .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
                .args(["-subj", "/CN=127.0.0.1"])
                .arg("-keyout")
                .arg(d.join("server.key"))
                .arg("-out")
                .arg(d.join("server.csr")),
        );
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run_tool(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(d.join("server.csr"))
                .arg("-CA")
                .arg(d.join("ca.crt"))
                .arg("-CAkey")
                .arg(d.join("ca.key"))
                .arg("-extfile")
                .arg(d.join("ext.cnf"))
                .arg("-out")
                .arg(d.join("server.crt")),
        );
        TestCa { dir }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// Installs the CA as `<config>/certs.d/<authority>/ca.crt`.
    pub fn install(&self, config: &Path, authority: &str) {
        let d = config.join("certs.d").join(authority);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(self.ca_cert(), d.join("ca.crt")).unwrap();
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

#[derive(Default)]
pub struct RegistryOptions<'a> {
    /// htpasswd auth with this user and password (with `token`, the credentials the
    /// test's own pushes and inspections send to the token service).
    pub auth: Option<(&'a str, &'a str)>,
    /// TLS with this CA's server certificate.
    pub tls: Option<&'a TestCa>,
    /// Bearer-token auth: clients get their tokens from this service.
    pub token: Option<&'a TokenService>,
}

pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    creds: Option<(String, String)>,
}

impl Registry {
    /// A plain-HTTP registry without auth.
    pub fn start() -> Registry {
        Registry::start_with(RegistryOptions::default())
    }

    pub fn start_with(opts: RegistryOptions<'_>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("vessel-registry-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(ca) = opts.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.server_cert().display(),
                ca.server_key().display()
            ));
        }
        if let (Some((user, password)), None) = (opts.auth, opts.token) {
            let out = run_tool(Command::new("htpasswd").args(["-Bbn", user, password]));
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: vessel-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(t) = opts.token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                t.realm(),
                t.key().cert().display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("running docker-registry");
        wait_for_port(port);
        Registry {
            child,
            port,
            dir,
            creds: opts.auth.map(|(u, p)| (u.to_string(), p.to_string())),
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/REPO:TAG`
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("docker://{}/{repo_tag}", self.host())
    }

    /// `skopeo copy SRC docker://HOST/REPO:TAG` (all platforms of an index).
    pub fn push(&self, src: &str, repo_tag: &str) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
        if let Some((u, p)) = &self.creds {
            c.arg(format!("--dest-creds={u}:{p}"));
        }
        c.arg(src).arg(self.reference(repo_tag));
        run_tool(&mut c);
    }

    /// The manifest the registry holds for `repo_tag` (`skopeo inspect --raw`).
    pub fn manifest(&self, repo_tag: &str) -> serde_json::Value {
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((u, p)) = &self.creds {
            c.arg(format!("--creds={u}:{p}"));
        }
        let out = run_tool(c.arg(self.reference(repo_tag)));
        serde_json::from_str(&out).unwrap()
    }

    /// Hex digests of the layers of `repo_tag`, bottom first.
    pub fn layer_hexes(&self, repo_tag: &str) -> Vec<String> {
        self.manifest(repo_tag)["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
                    .to_string()
            })
            .collect()
    }

    /// The file the registry serves a blob from (filesystem storage driver).
    pub fn blob_file(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&digest_hex[..2])
            .join(digest_hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
