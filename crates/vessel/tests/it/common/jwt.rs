//! JSON Web Tokens as docker-registry's token auth checks them (distribution's token spec,
//! "Docker Registry v2 Bearer token specification"): RS256, signed by
//! `openssl dgst -sha256 -sign` with an RSA key whose self-signed certificate, made by
//! `openssl req`, is the registry's `rootcertbundle`. The header names the key by `kid`, its
//! libtrust fingerprint, which docker-registry 2.8 looks up among the bundle's keys.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::encoding::{base32, base64url};
use super::oci::run_tool;

/// An RSA key and its self-signed certificate, in a temporary directory.
pub struct SigningKey {
    dir: tempfile::TempDir,
    key_id: String,
}

impl SigningKey {
    pub fn new() -> SigningKey {
        let dir = tempfile::Builder::new()
            .prefix("vessel-token-key-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        run_tool(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=vessel test token issuer"])
                .arg("-keyout")
                .arg(d.join("key.pem"))
                .arg("-out")
                .arg(d.join("cert.pem")),
        );
        let spki = output_bytes(
            Command::new("openssl")
                .args(["pkey", "-pubout", "-outform", "DER", "-in"])
                .arg(d.join("key.pem")),
        );
        let key_id = libtrust_key_id(&spki);
        SigningKey { dir, key_id }
    }

    /// The certificate to give the registry as its `rootcertbundle`.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// `header.claims.signature`, each part base64url.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.key_id});
        let input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(self.dir.path().join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{input}.{}", base64url(&out.stdout))
    }
}

impl Default for SigningKey {
    fn default() -> Self {
        SigningKey::new()
    }
}

/// libtrust's key ID: the sha256 of the DER public key, cut to 240 bits, in base32, in
/// twelve groups of four joined by `:`.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = base32(&digest[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn output_bytes(cmd: &mut Command) -> Vec<u8> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
