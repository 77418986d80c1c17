//! rkt's command lines as rkt users and unit files write them: several images in a row,
//! `--mount` before the images, flags out of place or misspelled named with a
//! suggestion, `help`, rkt's global flags, fetch's short IDs and `--signature`.

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::podkit::PodEnv;

/// A second image, `example.com/other:1`, next to the kit's busybox.
fn with_other(p: &PodEnv) -> String {
    let aci = busybox_aci(p.v.work(), "example.com/other", "1", Compression::None);
    p.v.fetch(&aci.path_str());
    "example.com/other:1".into()
}

/// rkt's `run IMG1 IMG2` (run.md, "Run multiple applications in the same pod"), and
/// `--mount` before the images, which run.md says applies to every app.
#[test]
fn several_images_in_a_row_and_a_mount_for_every_app() {
    let p = PodEnv::new();
    let other = with_other(&p);
    let shared = p.v.path("shared");
    std::fs::create_dir(&shared).unwrap();
    let r = p.run(&[
        "run",
        "--rm",
        &format!("--volume=shared,kind=host,source={}", shared.display()),
        "--mount",
        "volume=shared,target=/shared",
        &p.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "touch /shared/from-busybox",
        "---",
        &other,
        "--exec=/bin/touch",
        "--",
        "/shared/from-other",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(shared.join("from-busybox").exists(), "{r}");
    assert!(shared.join("from-other").exists(), "{r}");
    // Bare images one after the other: two apps, each with its image's own command.
    let r = p.run(&["prepare", &p.image, &other]).success();
    let uuid = r.stdout.trim().to_string();
    assert_eq!(
        p.status(&uuid)["app_names"],
        serde_json::json!(["busybox", "other"])
    );
    // The same image twice, told apart by --name, as rkt's docs show.
    let r = p
        .run(&[
            "prepare",
            "--quiet",
            &p.image,
            "--name=one",
            &p.image,
            "--name=two",
        ])
        .success();
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "--quiet prints the UUID only: {r}"
    );
    let uuid = r.stdout.trim().to_string();
    assert_eq!(
        p.status(&uuid)["app_names"],
        serde_json::json!(["one", "two"])
    );
}

/// A misspelled or misplaced flag is named as such, with a suggestion: never "an app
/// flag must follow its image" for a pod flag. These are usage errors: exit 2.
#[test]
fn flags_out_of_place_or_misspelled_are_named() {
    let p = PodEnv::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--nett=host", &p.image],
            "unknown flag --nett (did you mean --net?)",
        ),
        (
            &["run", &p.image, "--exce", "/bin/true"],
            "unknown app flag --exce (did you mean --exec?)",
        ),
        (&["run", &p.image, "--net=host"], "--net is a pod flag"),
        (
            &["prepare", "--exec=/bin/true", &p.image],
            "--exec is an app flag",
        ),
        (
            &["run", &p.image, "--stage1-name=coreos.com/rkt/stage1-fly"],
            "--stage1-name is a pod flag",
        ),
        (
            &["run", "--no-overlay", &p.image],
            "--no-overlay is not supported",
        ),
    ];
    for (args, msg) in cases {
        let r = p.run(args);
        assert_eq!(r.code(), Some(2), "{r}");
        assert!(r.stderr.contains(msg), "expected {msg:?}:\n{r}");
        assert!(!r.stderr.contains("must follow its image"), "{r}");
    }
    assert!(p.list().is_empty(), "a refused command made a pod");
}

#[test]
fn help_as_rkt_and_global_flags_rkt_takes() {
    let p = PodEnv::new();
    let r = p.run(&["help"]).success();
    assert!(
        r.stdout.contains("run") && r.stdout.contains("status"),
        "{r}"
    );
    let r = p.run(&["help", "run"]).success();
    assert!(r.stdout.contains("--volume"), "{r}");
    let r = p.run(&["help", "image", "list"]).success();
    assert!(r.stdout.contains("--no-legend"), "{r}");
    // rkt's unit files: `--insecure-options=image,ondisk`, global --trust-keys-from-https.
    let r = p
        .run(&[
            "--insecure-options=image,ondisk",
            "--trust-keys-from-https",
            "run",
            "--rm",
            &p.image,
            "--exec=/bin/true",
        ])
        .success();
    assert!(r.stderr.contains("ondisk has no effect"), "{r}");
}

/// rkt's fetch prints a short ID unless --full; both name the image everywhere.
#[test]
fn fetch_prints_short_ids_and_takes_a_signature_file() {
    let p = PodEnv::new();
    let aci = busybox_aci(p.v.work(), "example.com/sig", "1", Compression::None);
    let r = p
        .run(&["fetch", "--insecure-options=image", &aci.path_str()])
        .success();
    let short = r.stdout.trim().to_string();
    assert_eq!(short.len(), "sha512-".len() + 32, "{r}");
    let r = p
        .run(&[
            "image",
            "fetch",
            "--insecure-options=image",
            "--full",
            &aci.path_str(),
        ])
        .success();
    let full = r.stdout.trim().to_string();
    assert!(full.starts_with(&short) && full.len() > short.len(), "{r}");
    p.run(&["image", "cat-manifest", &short]).success();
    // --signature names a signature file; a missing one is refused, naming it.
    let sig = p.v.path("elsewhere.asc");
    p.run(&[
        "fetch",
        &aci.path_str(),
        &format!("--signature={}", sig.display()),
    ])
    .failure()
    .stderr_names(&["elsewhere.asc"]);
    p.run(&["fetch", "--signature=x.asc", &aci.path_str()])
        .stderr_names(&["give the image first"]);
}

/// rkt writes the app as it runs into the pod manifest: `cat-manifest` shows the
/// overrides; status shows the user annotations and labels.
#[test]
fn cat_manifest_shows_the_app_overrides() {
    let p = PodEnv::new();
    let r = p
        .run(&[
            "prepare",
            &p.image,
            "--exec=/bin/echo",
            "--memory=64M",
            "--environment=GREETING=hi",
            "--working-dir=/tmp",
            "--user-annotation=team=infra",
            "--user-label=tier=web",
            "--",
            "hello",
        ])
        .success();
    let uuid = r.stdout.trim().to_string();
    let m = p.run(&["cat-manifest", &uuid]).success().json();
    let app = &m["apps"][0]["app"];
    assert_eq!(
        app["exec"],
        serde_json::json!(["/bin/echo", "hello"]),
        "{m}"
    );
    assert_eq!(app["workingDirectory"], "/tmp", "{m}");
    assert!(
        app["environment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "GREETING" && e["value"] == "hi"),
        "{m}"
    );
    assert!(
        app["isolators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "resource/memory"),
        "{m}"
    );
    assert_eq!(app["userAnnotations"]["team"], "infra", "{m}");
    assert_eq!(app["userLabels"]["tier"], "web", "{m}");
    // rkt's --pretty-print=false: one line.
    let r = p
        .run(&["cat-manifest", "--pretty-print=false", &uuid])
        .success();
    assert_eq!(r.stdout.trim().lines().count(), 1, "{r}");
    let s = p.status(&uuid);
    assert_eq!(s["apps"][0]["user_annotations"]["team"], "infra", "{s}");
    assert_eq!(s["apps"][0]["user_labels"]["tier"], "web", "{s}");
}
