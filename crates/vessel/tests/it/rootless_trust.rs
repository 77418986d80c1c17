//! `vessel trust` as a rootless user (issue 14): keys go to the user's configuration
//! directory; root's keys (the local and system configuration) are still read. Keys and
//! signatures made by real gpg, as in trust_signatures.

use std::os::unix::fs::MetadataExt;

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::gpg::Gpg;
use crate::common::Vessel;
use crate::rootless::User;

#[test]
fn a_user_trusts_keys_of_their_own_and_roots_still_count() {
    let v = Vessel::new();
    let u = User::new(true);
    let gpg = Gpg::new();
    let mine = gpg.key("User <u@example.com>", "ed25519", "never");
    let roots = gpg.key("Root <r@example.com>", "ed25519", "never");
    let aci_mine = busybox_aci(v.work(), "example.com/busybox", "1", Compression::Gzip);
    let aci_roots = busybox_aci(v.work(), "example.org/tools", "1", Compression::Gzip);
    gpg.sign(&mine, &aci_mine.path);
    let asc_roots = gpg.sign(&roots, &aci_roots.path);
    // Root trusts its key in a local configuration the user may read (as /etc/vessel).
    let local = v.path("etc-vessel");
    let local_flag = format!("--local-config={}", local.display());
    let roots_key = gpg.export(&roots, &v.path("roots.asc"));
    v.run(&[
        &local_flag,
        "trust",
        "--prefix=example.org/tools",
        "--skip-fingerprint-review",
        roots_key.to_str().unwrap(),
    ])
    .success();
    let walk = |p: &std::path::Path| -> Vec<String> {
        let out = std::process::Command::new("find").arg(p).output().unwrap();
        let mut l: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let roots_files = walk(&local);
    std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&local)
        .status()
        .unwrap();
    let mut dir = local.clone();
    while let Some(parent) = dir.parent() {
        // The user must reach it: the test's work directory may be closed.
        let mode = std::fs::metadata(parent).unwrap().mode();
        if mode & 0o001 == 0 {
            std::process::Command::new("chmod")
                .arg("o+x")
                .arg(parent)
                .status()
                .unwrap();
        }
        dir = parent.to_path_buf();
    }

    // Unsigned by a trusted key: refused, naming the way out.
    let aci_path = u.give(&aci_mine.path);
    u.give(&v.work().join(format!(
        "{}.asc",
        aci_mine.path.file_name().unwrap().to_string_lossy()
    )));
    u.run(&[&local_flag, "fetch", &aci_path])
        .failure()
        .stderr_names(&[&mine.fingerprint, "vessel trust"]);
    let key_file = u.give(&gpg.export(&mine, &v.path("mine.asc")));
    let r = u
        .run(&[
            &local_flag,
            "trust",
            "--prefix=example.com/busybox",
            "--skip-fingerprint-review",
            &key_file,
        ])
        .success();
    let stored = std::path::PathBuf::from(r.stdout.trim());
    assert!(
        stored.starts_with(u.home.join(".config/vessel/trustedkeys")),
        "{r}"
    );
    assert_eq!(std::fs::metadata(&stored).unwrap().uid(), u.uid);
    // Root's configuration is untouched.
    assert_eq!(walk(&local), roots_files);

    let r = u
        .run(&[&local_flag, "fetch", "--full", &aci_path])
        .success();
    assert_eq!(r.stdout.trim(), aci_mine.id, "{r}");
    // Root's key still counts for its prefix.
    let roots_path = u.give(&aci_roots.path);
    u.give(&asc_roots);
    let r = u
        .run(&[&local_flag, "fetch", "--full", &roots_path])
        .success();
    assert_eq!(r.stdout.trim(), aci_roots.id, "{r}");

    let list = u
        .run(&[&local_flag, "trust", "--list", "--format=json"])
        .success()
        .json();
    let keys = list.as_array().cloned().unwrap_or_default();
    let config_of = |fp: &str| {
        keys.iter()
            .find(|k| k.to_string().contains(fp))
            .map(|k| k["config"].clone())
    };
    assert_eq!(config_of(&mine.fingerprint), Some("user".into()), "{list}");
    assert_eq!(
        config_of(&roots.fingerprint),
        Some("local".into()),
        "{list}"
    );
}
