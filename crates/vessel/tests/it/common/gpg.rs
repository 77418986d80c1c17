//! OpenPGP keys and detached signatures made by real `gpg --batch` in a temporary
//! GNUPGHOME.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::oci::run_tool;

pub struct Gpg {
    home: tempfile::TempDir,
}

/// A key made by gpg: its fingerprint (lower-case hex, as vessel names key files).
#[derive(Debug, Clone)]
pub struct Key {
    pub fingerprint: String,
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("vessel-gnupg-")
            .tempdir()
            .unwrap();
        let mut perm = std::fs::metadata(home.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o700);
        std::fs::set_permissions(home.path(), perm).unwrap();
        Gpg { home }
    }

    fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--yes",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    /// A signing key: `algo` is `ed25519` or `rsa2048`; `expire` is gpg's (`never`, `1d`).
    pub fn key(&self, uid: &str, algo: &str, expire: &str) -> Key {
        self.key_at(uid, algo, expire, None)
    }

    /// A key made as if the clock said `time` (gpg's --faked-system-time, `20200101T000000`).
    pub fn key_at(&self, uid: &str, algo: &str, expire: &str, time: Option<&str>) -> Key {
        let mut c = self.gpg();
        if let Some(t) = time {
            c.arg(format!("--faked-system-time={t}!"));
        }
        run_tool(c.args(["--quick-gen-key", uid, algo, "sign", expire]));
        let out = run_tool(self.gpg().args(["--with-colons", "--fingerprint", uid]));
        let fingerprint = out
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("gpg printed a fingerprint")
            .to_ascii_lowercase();
        Key { fingerprint }
    }

    /// The armored public key, written to `out`.
    pub fn export(&self, key: &Key, out: &Path) -> PathBuf {
        let data = run_tool(self.gpg().args(["--armor", "--export", &key.fingerprint]));
        std::fs::write(out, data).unwrap();
        out.to_path_buf()
    }

    /// Signs `file` into `file.asc` (armored, detached).
    pub fn sign(&self, key: &Key, file: &Path) -> PathBuf {
        self.sign_at(key, file, None)
    }

    pub fn sign_at(&self, key: &Key, file: &Path, time: Option<&str>) -> PathBuf {
        let mut out = file.as_os_str().to_os_string();
        out.push(".asc");
        let out = PathBuf::from(out);
        let mut c = self.gpg();
        if let Some(t) = time {
            c.arg(format!("--faked-system-time={t}!"));
        }
        run_tool(
            c.args([
                "--armor",
                "--detach-sign",
                "--local-user",
                &key.fingerprint,
                "--output",
            ])
            .arg(&out)
            .arg(file),
        );
        out
    }

    /// Revokes the key with the revocation certificate gpg made for it.
    pub fn revoke(&self, key: &Key) {
        let cert = self
            .home
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", key.fingerprint.to_ascii_uppercase()));
        // gpg prefixes the armor line with ':' so the file is not imported by accident.
        let text = std::fs::read_to_string(&cert)
            .unwrap()
            .replace(":-----BEGIN", "-----BEGIN");
        let fixed = self.home.path().join("revocation.asc");
        std::fs::write(&fixed, text).unwrap();
        run_tool(self.gpg().arg("--import").arg(&fixed));
    }
}

impl Default for Gpg {
    fn default() -> Self {
        Gpg::new()
    }
}
