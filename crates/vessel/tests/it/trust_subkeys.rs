//! Signatures made by signing subkeys (real gpg: a certify-only primary key with an
//! Ed25519 signing subkey), and trust stores that hold several copies of one key: a
//! revoked or expired subkey is refused whichever copy the signature's key is found in,
//! a revocation in any trusted copy counts, and copies with different subkeys never make
//! vessel mix up (or index past) the subkeys of one with those of another.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::aci::{busybox_aci, BuiltAci};
use common::compress::Compression;
use common::oci::run_tool;
use common::Vessel;

const NAME: &str = "example.com/busybox";

/// A publisher's GNUPGHOME: one certify-only primary key and its signing subkeys.
struct Publisher {
    home: tempfile::TempDir,
    primary: String,
}

impl Publisher {
    /// The primary key, made as if the clock said `time` (gpg's --faked-system-time).
    fn new(time: Option<&str>) -> Publisher {
        let home = tempfile::Builder::new()
            .prefix("vessel-gnupg-")
            .tempdir()
            .unwrap();
        let mut perm = std::fs::metadata(home.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o700);
        std::fs::set_permissions(home.path(), perm).unwrap();
        let mut p = Publisher {
            home,
            primary: String::new(),
        };
        let uid = "Publisher <publisher@example.com>";
        run_tool(
            p.gpg(time)
                .args(["--quick-gen-key", uid, "ed25519", "cert", "never"]),
        );
        p.primary = p.fingerprints()[0].clone();
        p
    }

    fn gpg(&self, time: Option<&str>) -> Command {
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
        if let Some(t) = time {
            c.arg(format!("--faked-system-time={t}!"));
        }
        c
    }

    /// Fingerprints, lower-case: the primary key's first, then its subkeys' in order.
    fn fingerprints(&self) -> Vec<String> {
        let out = run_tool(self.gpg(None).args([
            "--with-colons",
            "--fingerprint",
            "--fingerprint",
            "--list-keys",
        ]));
        out.lines()
            .filter(|l| l.starts_with("fpr:"))
            .filter_map(|l| l.split(':').nth(9))
            .map(str::to_ascii_lowercase)
            .collect()
    }

    /// Adds a signing subkey (`expire` as gpg takes it) and returns its fingerprint.
    fn add_signing_subkey(&self, expire: &str, time: Option<&str>) -> String {
        run_tool(self.gpg(time).args([
            "--quick-add-key",
            &self.primary,
            "ed25519",
            "sign",
            expire,
        ]));
        self.fingerprints().last().unwrap().clone()
    }

    /// Signs `file` into `file.asc` with exactly the subkey `sub` (gpg's `!`).
    fn sign_with(&self, sub: &str, file: &Path, time: Option<&str>) {
        let mut out = file.as_os_str().to_os_string();
        out.push(".asc");
        run_tool(
            self.gpg(time)
                .args([
                    "--armor",
                    "--detach-sign",
                    "--local-user",
                    &format!("{sub}!"),
                    "--output",
                ])
                .arg(PathBuf::from(out))
                .arg(file),
        );
    }

    /// Revokes the subkey at position `n` (1 = the first subkey) with gpg's `revkey`.
    fn revoke_subkey(&self, n: usize) {
        let mut c = self.gpg(None);
        c.args(["--command-fd", "0", "--edit-key", &self.primary])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("key {n}\nrevkey\ny\n0\n\ny\nsave\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "gpg revkey: {out:?}");
    }

    /// The public key as it is now, armored, written to `out`.
    fn export(&self, out: &Path) {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let data = run_tool(self.gpg(None).args(["--armor", "--export", &self.primary]));
        std::fs::write(out, data).unwrap();
    }
}

struct Setup {
    v: Vessel,
    aci: BuiltAci,
}

impl Setup {
    fn new() -> Setup {
        let v = Vessel::new();
        let aci = busybox_aci(v.work(), NAME, "1.0", Compression::Gzip);
        Setup { v, aci }
    }

    /// Where a key file goes: `config` is `etc` (local) or `usr-lib` (system); `scope`
    /// is `root.d` or `prefix.d/<prefix>`.
    fn key_path(&self, config: &str, scope: &str, fingerprint: &str) -> PathBuf {
        self.v
            .path(config)
            .join("trustedkeys")
            .join(scope)
            .join(fingerprint)
    }

    fn fetch(&self) -> common::Run {
        self.v.run(&[
            &format!("--local-config={}", self.v.path("etc").display()),
            &format!("--system-config={}", self.v.path("usr-lib").display()),
            "fetch",
            "--full",
            &self.aci.path_str(),
        ])
    }

    fn refused(&self, needles: &[&str]) {
        let before = self.v.state();
        self.fetch().failure().stderr_names(needles);
        assert_eq!(self.v.state(), before, "a refused ACI changed the store");
        self.v.assert_verify_clean();
    }
}

#[test]
fn an_image_signed_by_a_good_signing_subkey_is_verified() {
    let s = Setup::new();
    let p = Publisher::new(None);
    let sub = p.add_signing_subkey("never", None);
    p.sign_with(&sub, &s.aci.path, None);
    p.export(&s.key_path("etc", &format!("prefix.d/{NAME}"), &p.primary));
    let run = s.fetch().success();
    assert_eq!(run.stdout.trim(), s.aci.id, "{run}");
    assert!(run.stderr.contains(&p.primary), "{run}");
}

#[test]
fn an_image_signed_by_a_revoked_subkey_is_refused() {
    let s = Setup::new();
    let p = Publisher::new(None);
    let sub = p.add_signing_subkey("never", None);
    p.sign_with(&sub, &s.aci.path, None);
    p.revoke_subkey(1);
    p.export(&s.key_path("etc", &format!("prefix.d/{NAME}"), &p.primary));
    s.refused(&[&s.aci.path_str(), &sub, &p.primary, "revoked"]);
}

#[test]
fn a_revocation_in_any_trusted_copy_of_the_key_counts() {
    // Where the old copy (no revocation) and the updated copy (with it) are kept, as
    // (config, scope) each. In each case the old copy alone covers the image; the updated
    // copy must count all the same, whether it covers the image or not.
    let layouts = [
        (
            "etc",
            "prefix.d/example.com",
            "etc",
            "prefix.d/example.com/busybox",
        ),
        ("etc", "prefix.d/example.com/busybox", "etc", "root.d"),
        (
            "etc",
            "prefix.d/example.com/busybox",
            "etc",
            "prefix.d/example.org/other",
        ),
        ("etc", "prefix.d/example.com/busybox", "usr-lib", "root.d"),
        ("usr-lib", "root.d", "etc", "prefix.d/example.org/other"),
    ];
    let p = Publisher::new(None);
    let sub = p.add_signing_subkey("never", None);
    let setups: Vec<Setup> = layouts.iter().map(|_| Setup::new()).collect();
    for s in &setups {
        p.sign_with(&sub, &s.aci.path, None);
    }
    let keys = tempfile::tempdir().unwrap();
    let old = keys.path().join("old.asc");
    p.export(&old);
    p.revoke_subkey(1);
    let new = keys.path().join("new.asc");
    p.export(&new);
    for (s, (old_config, old_scope, new_config, new_scope)) in setups.iter().zip(layouts) {
        let dest = s.key_path(old_config, old_scope, &p.primary);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&old, dest).unwrap();
        let dest = s.key_path(new_config, new_scope, &p.primary);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&new, dest).unwrap();
        s.refused(&[&s.aci.path_str(), &sub, &p.primary, "revoked"]);
    }
}

#[test]
fn an_image_signed_by_an_expired_subkey_is_refused() {
    let s = Setup::new();
    let when = "20200101T000000";
    let p = Publisher::new(Some(when));
    let sub = p.add_signing_subkey("1d", Some(when));
    p.sign_with(&sub, &s.aci.path, Some(when));
    p.export(&s.key_path("etc", &format!("prefix.d/{NAME}"), &p.primary));
    s.refused(&[&s.aci.path_str(), &sub, &p.primary, "expired"]);
}

#[test]
fn copies_with_different_subkeys_are_not_mixed_up() {
    let p = Publisher::new(None);
    let first = p.add_signing_subkey("never", None);
    let keys = tempfile::tempdir().unwrap();
    // The old copy knows only the first subkey; the images are signed by the second.
    let old = keys.path().join("old.asc");
    p.export(&old);
    let second = p.add_signing_subkey("never", None);
    assert_ne!(first, second);
    let good = Setup::new();
    let revoked = Setup::new();
    p.sign_with(&second, &good.aci.path, None);
    p.sign_with(&second, &revoked.aci.path, None);
    let new = keys.path().join("new.asc");
    p.export(&new);
    p.revoke_subkey(2);
    let newest = keys.path().join("newest.asc");
    p.export(&newest);

    let place = |s: &Setup, file: &Path, config: &str, scope: &str| {
        let dest = s.key_path(config, scope, &p.primary);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(file, dest).unwrap();
    };
    // The old copy for every image, the new one for the image's prefix: the signing
    // subkey is in the new copy only (second there, absent from the old), and is good.
    place(&good, &old, "etc", "root.d");
    place(&good, &new, "etc", &format!("prefix.d/{NAME}"));
    let run = good.fetch().success();
    assert_eq!(run.stdout.trim(), good.aci.id, "{run}");
    assert!(run.stderr.contains(&p.primary), "{run}");

    // The same with the copy that revokes the second subkey: refused, naming it.
    place(&revoked, &old, "etc", "root.d");
    place(&revoked, &newest, "etc", &format!("prefix.d/{NAME}"));
    revoked.refused(&[&revoked.aci.path_str(), &second, &p.primary, "revoked"]);
}
