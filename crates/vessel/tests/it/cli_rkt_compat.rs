//! rkt's commands and flags that docs/rkt-compat.md marks "same" and no other module
//! exercises: config, image list --fields/--sort/--order, image gc --grace-period, image
//! verify IMAGE..., run --uuid-file-save; and what a user meets first: the non-root
//! message, and a --private-users pod under a directory its root cannot pass.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::{Vessel, VESSEL};
use crate::podkit::PodEnv;

/// rkt's config.md: one auth entry per domain, the local directory overriding the
/// system one for a domain both name; paths with the data directory in effect.
#[test]
fn config_prints_the_merged_configuration() {
    let v = Vessel::new();
    let (system, local) = (v.path("system"), v.path("local"));
    for (dir, domains, user) in [
        (&system, r#"["foo.com","bar.com"]"#, "sysUser"),
        (&local, r#"["foo.com"]"#, "user"),
    ] {
        std::fs::create_dir_all(dir.join("auth.d")).unwrap();
        std::fs::write(
            dir.join("auth.d/basic.json"),
            format!(
                r#"{{"rktKind":"auth","rktVersion":"v1","domains":{domains},"type":"basic","credentials":{{"user":"{user}","password":"pw"}}}}"#
            ),
        )
        .unwrap();
    }
    let sys = format!("--system-config={}", system.display());
    let loc = format!("--local-config={}", local.display());
    let r = v.run(&[&sys, &loc, "config"]).success();
    let json = r.json();
    let stage0 = json["stage0"].as_array().expect("stage0 entries");
    let auth = |domain: &str| {
        stage0
            .iter()
            .find(|e| e["rktKind"] == "auth" && e["domains"] == serde_json::json!([domain]))
            .unwrap_or_else(|| panic!("no auth entry for {domain}:\n{r}"))
    };
    assert_eq!(auth("foo.com")["credentials"]["user"], "user", "{r}");
    assert_eq!(auth("bar.com")["credentials"]["user"], "sysUser", "{r}");
    let paths = stage0
        .iter()
        .find(|e| e["rktKind"] == "paths")
        .expect("a paths entry");
    assert_eq!(paths["data"], v.dir().display().to_string(), "{r}");
    // A bad file is named, with its field.
    std::fs::write(
        local.join("auth.d/bad.json"),
        r#"{"rktKind":"auth","rktVersion":"v1","domains":"x.com","type":"basic"}"#,
    )
    .unwrap();
    v.run(&[&sys, &loc, "config"])
        .failure()
        .stderr_names(&["bad.json", "domains"]);
}

fn two_images(v: &Vessel) -> (String, String) {
    let a = busybox_aci(v.work(), "example.com/aaa", "1", Compression::None);
    let id_a = v.fetch(&a.path_str());
    let b = busybox_aci(v.work(), "example.com/bbb", "1", Compression::None);
    let id_b = v.fetch(&b.path_str());
    (id_a, id_b)
}

#[test]
fn image_list_fields_sort_and_order() {
    let v = Vessel::new();
    two_images(&v);
    let r = v
        .run(&["image", "list", "--fields=name,latest", "--sort=name"])
        .success();
    let lines = r.stdout_lines();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "LATEST"],
        "{r}"
    );
    assert!(lines[1].starts_with("example.com/aaa:1"), "{r}");
    assert!(lines[2].starts_with("example.com/bbb:1"), "{r}");
    assert_eq!(lines[1].split_whitespace().nth(1), Some("false"), "{r}");
    let r = v
        .run(&[
            "image",
            "list",
            "--fields=name",
            "--sort=name",
            "--order=desc",
            "--no-legend",
        ])
        .success();
    assert_eq!(
        r.stdout_lines(),
        ["example.com/bbb:1", "example.com/aaa:1"],
        "{r}"
    );
    // Import time is the default sort: the first fetched first.
    let r = v
        .run(&["image", "list", "--fields=name", "--no-legend"])
        .success();
    assert_eq!(
        r.stdout_lines(),
        ["example.com/aaa:1", "example.com/bbb:1"],
        "{r}"
    );
    let r = v.run(&["image", "list", "--fields=name,colour"]);
    assert_eq!(r.code(), Some(2), "{r}");
    assert!(r.stderr.contains("colour"), "{r}");
}

/// rkt's image gc: images unused for the grace period go (default 24h), those a pod
/// uses stay, then the layers no image uses.
#[test]
fn image_gc_removes_images_unused_for_the_grace_period() {
    let p = PodEnv::new();
    let other = busybox_aci(p.v.work(), "example.com/other", "1", Compression::None);
    let other_id = p.v.fetch(&other.path_str());
    let uuid = p
        .run(&["prepare", "--net=none", &p.image, "--exec=/bin/true"])
        .success()
        .stdout
        .trim()
        .to_string();
    let r = p.run(&["image", "gc"]).success();
    assert_eq!(
        r.stdout, "",
        "fresh images are within the default 24h:\n{r}"
    );
    let r = p.run(&["image", "gc", "--grace-period=0s"]).success();
    assert!(
        r.stdout.contains(&format!("removed image {other_id}")),
        "{r}"
    );
    let names: Vec<String> = p
        .run(&["image", "list", "--fields=name", "--no-legend"])
        .success()
        .stdout_lines()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        names,
        ["example.com/busybox:1"],
        "the prepared pod's image stays"
    );
    // The pod still runs, and once it is gone its image may go too.
    p.run(&["run-prepared", &uuid]).success();
    p.run(&["rm", &uuid]).success();
    p.run(&["image", "gc", "--grace-period=0s"]).success();
    assert!(p
        .run(&["image", "list", "--no-legend"])
        .success()
        .stdout
        .trim()
        .is_empty());
    p.v.assert_verify_clean();
}

#[test]
fn image_verify_checks_the_named_images() {
    let v = Vessel::new();
    let a = busybox_aci(v.work(), "example.com/aaa", "1", Compression::None);
    let id_a = v.fetch(&a.path_str());
    let before = v.layer_dirs();
    let b = busybox_aci(v.work(), "example.com/bbb", "1", Compression::None);
    v.fetch(&b.path_str());
    let key_b = v
        .layer_dirs()
        .into_iter()
        .find(|k| !before.contains(k))
        .expect("bbb has a layer of its own");
    let passwd = v.layer_rootfs(&key_b).join("etc/passwd");
    let mut content = std::fs::read(&passwd).unwrap();
    content[0] ^= 0x20;
    std::fs::write(&passwd, content).unwrap();

    let r = v.run(&["image", "verify", "example.com/aaa:1"]).success();
    assert!(
        r.stdout.contains(&format!(
            "successfully verified checksum for image: \"example.com/aaa:1\" (\"{id_a}\")"
        )),
        "{r}"
    );
    let r = v.run(&["image", "verify", "example.com/aaa:1", "example.com/bbb:1"]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(
        r.stdout.contains(&key_b) && r.stdout.contains("etc/passwd"),
        "{r}"
    );
    assert!(r.stdout.contains("example.com/aaa:1"), "{r}");
    assert!(!r.stdout.contains("example.com/bbb:1\" ("), "{r}");
    v.run(&["image", "verify", "example.com/nothing"])
        .failure()
        .stderr_names(&["example.com/nothing"]);
}

#[test]
fn uuid_file_save_on_run() {
    let p = PodEnv::new();
    let f = p.v.path("uuid");
    let arg = format!("--uuid-file-save={}", f.display());
    p.run(&["run", &arg, &p.image, "--exec=/bin/true"])
        .success();
    let uuid = std::fs::read_to_string(&f).unwrap().trim().to_string();
    assert_eq!(p.status(&uuid)["state"], "exited");
}

/// Not root: rootless mode, and a --dir the user cannot reach is named before anything
/// is read or written (tests/it/rootless.rs has the rest).
#[test]
fn a_non_root_user_is_told_which_dir_it_cannot_use() {
    let v = Vessel::new();
    let dir = v.path("never-made");
    for args in [&["list"][..], &["fetch", "example.com/x"], &["image", "gc"]] {
        let out = Command::new(VESSEL)
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .env("HOME", "/nonexistent")
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("vessel: rootless: the data directory ")
                && stderr.contains(dir.to_str().unwrap())
                && stderr.contains("ermission denied"),
            "{args:?}: {stderr}"
        );
        assert!(!dir.exists(), "{args:?} made {}", dir.display());
    }
    // What needs no data directory still works.
    let out = Command::new(VESSEL)
        .arg("version")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A --dir under a 0700 directory (`mktemp -d`): the pod's root could not pass it.
#[test]
fn private_users_names_a_directory_that_blocks_it() {
    let v = Vessel::new();
    // Under /tmp, which every user may pass, as `mktemp -d` makes it.
    let tmp = tempfile::Builder::new()
        .prefix("vessel-test-closed-")
        .tempdir()
        .unwrap();
    let closed = tmp.path().to_path_buf();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = closed.join("vessel");
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
    let out = Command::new(VESSEL)
        .arg("--dir")
        .arg(&dir)
        .args([
            "--insecure-options=image",
            "run",
            "--net=none",
            "--private-users",
            &aci.path_str(),
            "--exec=/bin/true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("through {}", closed.display()))
            && stderr.contains("0700")
            && stderr.contains("chmod o+x"),
        "{stderr}"
    );
    assert!(!dir.join("pods").exists(), "a pod was begun");
    // Opened for passing, the same command runs.
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
    let out = Command::new(VESSEL)
        .arg("--dir")
        .arg(&dir)
        .args([
            "--insecure-options=image",
            "run",
            "--rm",
            "--net=none",
            "--private-users",
            &aci.path_str(),
            "--exec=/bin/true",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// rkt's export: an exited pod's app, with what it wrote, as an ACI that imports and
/// runs; the app's overrides become the image's app.
/// An app of an OCI image exports too: its layers and what it changed, under the image's
/// config converted to an appc manifest (as rkt gave a Docker image), the app as it ran.
#[test]
fn export_of_an_oci_images_app() {
    let p = PodEnv::new();
    let layout = crate::common::oci::busybox_layout(&p.v.path("layout"), "oci");
    let id =
        p.v.run(&["fetch", "--insecure-options=image", &layout.reference()])
            .success()
            .stdout
            .trim()
            .to_string();
    let uuid_file = p.v.path("uuid");
    p.run(&[
        "run",
        "--net=none",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &id,
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo from-oci >/hello",
    ])
    .success();
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let out = p.v.path("oci-app.aci");
    p.run(&["export", uuid.trim(), out.to_str().unwrap()])
        .success();
    let other = Vessel::new();
    let aci = other.fetch(out.to_str().unwrap());
    let r = other
        .run(&[
            "run",
            "--rm",
            "--net=none",
            &aci,
            "--exec=/bin/cat",
            "--",
            "/hello",
        ])
        .success();
    assert_eq!(r.stdout, "from-oci\n", "{r}");
}

#[test]
fn export_writes_an_exited_pods_app_as_an_aci() {
    let p = PodEnv::new();
    let uuid_file = p.v.path("uuid");
    let save = format!("--uuid-file-save={}", uuid_file.display());
    p.run(&[
        "run",
        "--net=none",
        &save,
        &p.image,
        "--name=writer",
        "--exec=/bin/sh",
        "--",
        "-c",
        "echo made-in-the-pod >/hello && rm /etc/group",
    ])
    .success();
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    let out = p.v.path("exported.aci");
    let out_s = out.display().to_string();
    p.run(&["export", &uuid, &out_s]).success();
    // Not again without --overwrite; an unknown app is named.
    p.run(&["export", &uuid, &out_s])
        .failure()
        .stderr_names(&["--overwrite"]);
    p.run(&["export", "--app=nope", &uuid, &out_s, "--overwrite"])
        .failure()
        .stderr_names(&["nope", "writer"]);
    let other = Vessel::new();
    other.fetch(&out_s);
    let r = other
        .run(&[
            "run",
            "--rm",
            "--net=none",
            "example.com/busybox:1",
            "--exec=/bin/sh",
            "--",
            "-c",
            "cat /hello; test -e /etc/group || echo group-gone",
        ])
        .success();
    assert_eq!(r.stdout, "made-in-the-pod\ngroup-gone\n", "{r}");
    // A running pod is refused.
    let running = p
        .run(&[
            "run",
            "--detach",
            "--net=none",
            &p.image,
            "--exec=/bin/sleep",
            "--",
            "60",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let running = running.lines().last().unwrap_or_default().to_string();
    p.run(&["export", &running, &p.v.path("x.aci").display().to_string()])
        .failure()
        .stderr_names(&["only an exited pod"]);
    p.run(&["stop", "--force", &running]).success();
}

/// Small flags rkt users write: version, fetch --store-only (deprecated), run with
/// --pull-policy=never, --cap-retain (deprecated, with a note), --oom-score-adj,
/// --supplementary-gids.
#[test]
fn small_flags_as_rkt() {
    let p = PodEnv::new();
    let r = p.run(&["version"]).success();
    assert!(r.stdout.starts_with("vessel version "), "{r}");
    let r = p.run(&["fetch", "--store-only", &p.image]).success();
    assert!(r.stdout.trim().starts_with("sha512-"), "{r}");
    p.run(&["fetch", "--store-only", "example.com/absent:1"])
        .failure()
        .stderr_names(&["example.com/absent"]);
    // --debug says what is being done, on stderr only.
    let r = p
        .run(&["--debug", "fetch", "--store-only", &p.image])
        .success();
    assert!(r.stderr.contains("fetching"), "{r}");
    assert!(!r.stdout.contains("fetching"), "{r}");
    // run takes --signature after its image, as fetch does: a missing file is named.
    let aci = busybox_aci(p.v.work(), "example.com/signed-run", "1", Compression::None);
    p.run(&[
        "run",
        "--rm",
        &aci.path_str(),
        &format!("--signature={}", p.v.path("run-sig.asc").display()),
    ])
    .failure()
    .stderr_names(&["run-sig.asc"]);
    assert!(p.list().is_empty(), "a refused run left a pod");
    // run's deprecated spellings of --pull-policy: --store-only runs what is stored and
    // fetches nothing; --no-store fetches again.
    p.run(&[
        "run",
        "--rm",
        "--net=none",
        "--store-only",
        &p.image,
        "--exec=/bin/true",
    ])
    .success();
    p.run(&[
        "run",
        "--rm",
        "--store-only",
        "example.com/absent:1",
        "--exec=/bin/true",
    ])
    .failure()
    .stderr_names(&["example.com/absent"]);
    let aci_path = aci.path_str();
    p.run(&[
        "run",
        "--rm",
        "--net=none",
        "--no-store",
        "--insecure-options=image",
        &aci_path,
        "--exec=/bin/true",
    ])
    .success();
    assert!(p.list().is_empty(), "a --rm pod was left");
    let r = p
        .run(&[
            "run",
            "--rm",
            "--net=none",
            "--pull-policy=never",
            &p.image,
            "--cap-retain=CAP_CHOWN",
            "--oom-score-adj=100",
            "--supplementary-gids=5,6",
            "--exec=/bin/sh",
            "--",
            "-c",
            "cat /proc/self/oom_score_adj; id -G",
        ])
        .success();
    assert!(r.stderr.contains("--cap-retain is deprecated"), "{r}");
    let lines = r.stdout_lines();
    assert_eq!(lines[0], "100", "{r}");
    assert!(lines[1].split_whitespace().any(|g| g == "5"), "{r}");
    assert!(lines[1].split_whitespace().any(|g| g == "6"), "{r}");
}
