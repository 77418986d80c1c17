//! `vessel trust` and signature checks of ACIs: keys and detached signatures made by real
//! gpg (RSA and Ed25519); untrusted, expired, revoked keys, keys for another prefix, bad
//! signatures; system keys and masking; `--list` and where each key came from.

use crate::common;

use std::path::PathBuf;

use common::aci::{busybox_aci, BuiltAci};
use common::compress::Compression;
use common::gpg::{Gpg, Key};
use common::Vessel;

const NAME: &str = "example.com/busybox";

struct Setup {
    v: Vessel,
    gpg: Gpg,
    aci: BuiltAci,
}

impl Setup {
    fn new() -> Setup {
        let v = Vessel::new();
        let aci = busybox_aci(v.work(), NAME, "1.0", Compression::Gzip);
        Setup {
            v,
            gpg: Gpg::new(),
            aci,
        }
    }

    fn local(&self) -> String {
        format!("--local-config={}", self.v.path("etc").display())
    }

    fn system(&self) -> String {
        format!("--system-config={}", self.v.path("usr-lib").display())
    }

    fn key_file(&self, key: &Key) -> String {
        let p = self.v.path(&format!("{}.asc", key.fingerprint));
        self.gpg.export(key, &p).to_string_lossy().into_owned()
    }

    fn trust(&self, flag: &str, key: &Key) {
        let file = self.key_file(key);
        self.v
            .run(&[
                &self.local(),
                &self.system(),
                "trust",
                flag,
                "--skip-fingerprint-review",
                &file,
            ])
            .success();
    }

    fn fetch(&self) -> common::Run {
        self.v.run(&[
            &self.local(),
            &self.system(),
            "fetch",
            "--full",
            &self.aci.path_str(),
        ])
    }

    fn refused(&self, needles: &[&str]) {
        let before = self.v.state();
        self.fetch().failure().stderr_names(needles);
        assert_eq!(self.v.state(), before, "a refused ACI changed the store");
        assert_eq!(self.v.tmp_entries(), Vec::<String>::new());
        self.v.assert_verify_clean();
    }
}

#[test]
fn acis_signed_with_rsa_and_ed25519_keys_are_verified_and_stored() {
    for algo in ["rsa2048", "ed25519"] {
        let s = Setup::new();
        let key = s
            .gpg
            .key(&format!("{algo} <{algo}@example.com>"), algo, "never");
        s.gpg.sign(&key, &s.aci.path);
        s.trust(&format!("--prefix={NAME}"), &key);
        let run = s.fetch().success();
        assert_eq!(run.stdout.trim(), s.aci.id, "{run}");
        assert!(run.stderr.contains(&key.fingerprint), "{run}");
        s.v.assert_verify_clean();
    }
}

#[test]
fn a_key_trusted_for_root_covers_every_name() {
    let s = Setup::new();
    let key = s.gpg.key("Root <root@example.com>", "ed25519", "never");
    s.gpg.sign(&key, &s.aci.path);
    s.trust("--root", &key);
    s.fetch().success();
}

#[test]
fn an_unsigned_aci_is_refused_with_the_way_out() {
    let s = Setup::new();
    s.refused(&[&s.aci.path_str(), ".aci.asc", "--insecure-options=image"]);
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused_naming_key_and_command() {
    let s = Setup::new();
    let key = s.gpg.key("Nobody <n@example.com>", "ed25519", "never");
    s.gpg.sign(&key, &s.aci.path);
    s.refused(&[
        &key.fingerprint,
        &format!("vessel trust --prefix={NAME}"),
        &s.aci.path_str(),
    ]);
}

#[test]
fn a_key_trusted_for_another_prefix_is_refused() {
    let s = Setup::new();
    let key = s.gpg.key("Other <o@example.org>", "ed25519", "never");
    s.gpg.sign(&key, &s.aci.path);
    s.trust("--prefix=example.org/other", &key);
    s.refused(&[
        &key.fingerprint,
        "trusted only for prefix example.org/other",
        &format!("vessel trust --prefix={NAME}"),
    ]);
    // A prefix must match whole components: example.com/busy is not a parent.
    s.trust("--prefix=example.com/busy", &key);
    s.refused(&[&key.fingerprint, "trusted only for"]);
    s.trust("--prefix=example.com", &key);
    s.fetch().success();
}

#[test]
fn an_expired_key_is_refused() {
    let s = Setup::new();
    let when = "20200101T000000";
    let key = s
        .gpg
        .key_at("Old <old@example.com>", "ed25519", "1d", Some(when));
    s.gpg.sign_at(&key, &s.aci.path, Some(when));
    s.trust(&format!("--prefix={NAME}"), &key);
    s.refused(&[&key.fingerprint, "expired", &s.aci.path_str()]);
}

#[test]
fn a_revoked_key_is_refused() {
    let s = Setup::new();
    let key = s.gpg.key("Revoked <r@example.com>", "rsa2048", "never");
    s.gpg.sign(&key, &s.aci.path);
    s.gpg.revoke(&key);
    s.trust(&format!("--prefix={NAME}"), &key);
    s.refused(&[&key.fingerprint, "revoked"]);
}

#[test]
fn a_signature_of_other_content_is_refused_as_bad() {
    let s = Setup::new();
    let key = s.gpg.key("Signer <s@example.com>", "ed25519", "never");
    let other = s.v.path("other.bin");
    std::fs::write(&other, b"not the image").unwrap();
    let sig = s.gpg.sign(&key, &other);
    let mut target = s.aci.path.as_os_str().to_os_string();
    target.push(".asc");
    std::fs::copy(sig, PathBuf::from(target)).unwrap();
    s.trust(&format!("--prefix={NAME}"), &key);
    s.refused(&[&key.fingerprint, "bad signature"]);
}

#[test]
fn system_keys_count_unless_masked_by_an_empty_local_file() {
    let s = Setup::new();
    let key = s.gpg.key("Distro <d@example.com>", "ed25519", "never");
    s.gpg.sign(&key, &s.aci.path);
    let sys_dir = s.v.path("usr-lib/trustedkeys/prefix.d").join(NAME);
    std::fs::create_dir_all(&sys_dir).unwrap();
    s.gpg.export(&key, &sys_dir.join(&key.fingerprint));
    let listed =
        s.v.run(&[&s.local(), &s.system(), "trust", "--list", "--format=json"])
            .success()
            .json();
    assert_eq!(listed[0]["fingerprint"], key.fingerprint.as_str());
    assert_eq!(listed[0]["config"], "system");
    let local_dir = s.v.path("etc/trustedkeys/prefix.d").join(NAME);
    std::fs::create_dir_all(&local_dir).unwrap();
    std::fs::write(local_dir.join(&key.fingerprint), b"").unwrap();
    s.refused(&[&key.fingerprint, "not trusted"]);
    std::fs::remove_file(local_dir.join(&key.fingerprint)).unwrap();
    s.fetch().success();
}

#[test]
fn trust_list_shows_each_key_and_where_it_came_from() {
    let s = Setup::new();
    let a = s.gpg.key("A <a@example.com>", "ed25519", "never");
    let b = s.gpg.key("B <b@example.com>", "rsa2048", "never");
    s.trust("--root", &a);
    s.trust(&format!("--prefix={NAME}"), &b);
    let table = s.v.run(&[&s.local(), "trust", "--list"]).success().stdout;
    for needle in [
        &a.fingerprint,
        &b.fingerprint,
        "(root)",
        NAME,
        "file ",
        "A <a@example.com>",
    ] {
        assert!(table.contains(needle), "{needle:?} missing from:\n{table}");
    }
    let key_file = s.v.path(&format!("{}.asc", b.fingerprint));
    assert!(table.contains(key_file.to_str().unwrap()), "{table}");
    assert!(s
        .v
        .path("etc/trustedkeys/prefix.d")
        .join(NAME)
        .join(&b.fingerprint)
        .is_file());
    assert!(s
        .v
        .path("etc/trustedkeys/root.d")
        .join(&a.fingerprint)
        .is_file());
}

#[test]
fn trust_asks_on_a_terminal_only_and_checks_its_input() {
    let s = Setup::new();
    let key = s.gpg.key("K <k@example.com>", "ed25519", "never");
    let file = s.key_file(&key);
    // stdin is not a terminal here: vessel refuses to guess.
    s.v.run(&[&s.local(), "trust", "--root", &file])
        .failure()
        .stderr_names(&["--skip-fingerprint-review", &key.fingerprint]);
    s.v.run(&[
        &s.local(),
        "trust",
        "--prefix=../../etc",
        "--skip-fingerprint-review",
        &file,
    ])
    .failure()
    .stderr_names(&["not a valid image name prefix"]);
    let junk = s.v.path("junk.asc");
    std::fs::write(&junk, "hello").unwrap();
    s.v.run(&[
        &s.local(),
        "trust",
        "--root",
        "--skip-fingerprint-review",
        junk.to_str().unwrap(),
    ])
    .failure()
    .stderr_names(&["junk.asc", "OpenPGP"]);
    s.v.run(&[
        &s.local(),
        "trust",
        "--root",
        "--skip-fingerprint-review",
        "http://127.0.0.1:1/key",
    ])
    .failure()
    .stderr_names(&["--insecure-allow-http"]);
    assert!(!s.v.path("etc/trustedkeys").exists());
}
