//! An image's isolators may only narrow the security defaults: a hostile image cannot turn
//! the seccomp filter or no_new_privs off, nor allow calls the default filter denies, nor
//! override what the operator (command line, pod manifest) chose. The operator may widen.

use crate::common;
use crate::podkit;

use common::aci::AciLayout;
use common::compress::Compression;
use common::rootfs::busybox_rootfs;
use common::Run;
use podkit::PodEnv;
use serde_json::{json, Value};

/// What the app reports: its seccomp mode and no_new_privs, whether it could make a user
/// namespace (unshare, which the default filter denies; no capability is needed), and
/// whether it could make a directory.
const PROBE: &str = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                     unshare -U true 2>/dev/null; echo unshare=$?; \
                     mkdir /tmp/x 2>&1; echo mkdir=$?";

/// Stores a busybox image `example.com/<name>:1` whose app runs PROBE, carrying `isolators`.
fn image_with(p: &PodEnv, name: &str, isolators: Value) -> String {
    let full = format!("example.com/{name}");
    let mut layout = AciLayout::create(&p.v.path(&format!("{name}.layout")), &full, "1");
    busybox_rootfs(&layout.rootfs());
    layout.manifest["app"]["exec"] = json!(["/bin/sh", "-c", PROBE]);
    layout.manifest["app"]["isolators"] = isolators;
    let aci = layout.build(&p.v.path(&format!("{name}.aci")), Compression::None);
    p.v.fetch(&aci.path_str());
    format!("{full}:1")
}

fn probe(p: &PodEnv, image: &str, pod_flags: &[&str], app_flags: &[&str]) -> Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(pod_flags);
    args.push(image);
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", PROBE]);
    p.run(&args)
}

fn assert_confined(r: &Run) {
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains("Seccomp:\t2"), "the filter is on:\n{r}");
    assert!(
        r.stdout.contains("NoNewPrivs:\t1"),
        "no_new_privs is on:\n{r}"
    );
    assert!(!r.stdout.contains("unshare=0"), "unshare is denied:\n{r}");
}

fn hostile(p: &PodEnv) -> String {
    image_with(
        p,
        "hostile",
        json!([
            {"name": "os/linux/seccomp-retain-set", "value": {"set": ["@appc.io/all"]}},
            {"name": "os/linux/no-new-privileges", "value": false},
        ]),
    )
}

#[test]
fn an_image_cannot_turn_off_seccomp_or_no_new_privs() {
    let p = PodEnv::new();
    let image = hostile(&p);
    let r = probe(&p, &image, &[], &[]);
    assert_confined(&r);
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("no-new-privileges"),
        "the ignored isolator is reported:\n{r}"
    );
}

#[test]
fn an_image_retain_set_cannot_allow_what_the_default_denies() {
    let p = PodEnv::new();
    let image = image_with(
        &p,
        "widening",
        json!([{"name": "os/linux/seccomp-retain-set", "value": {
            "set": ["@docker/default-whitelist", "unshare", "keyctl", "bpf", "io_uring_setup"],
            "errno": "ENOSYS",
        }}]),
    );
    let r = probe(&p, &image, &[], &[]);
    assert_confined(&r);
    assert!(
        r.stdout.contains("mkdir=0"),
        "what the set and the default allow works:\n{r}"
    );
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("unshare, "),
        "the refused calls are named:\n{r}"
    );
}

#[test]
fn an_image_remove_set_narrows_the_default_and_no_more() {
    let p = PodEnv::new();
    let image = image_with(
        &p,
        "remover",
        json!([{"name": "os/linux/seccomp-remove-set", "value": {"set": ["mkdir", "mkdirat"], "errno": "EACCES"}}]),
    );
    let r = probe(&p, &image, &[], &[]);
    assert_confined(&r);
    assert!(
        r.stdout.contains("Permission denied") && r.stdout.contains("mkdir=1"),
        "{r}"
    );
}

/// `vessel run --pod-manifest` of one app of `image`, with the manifest's `app` (if any)
/// and pod-level isolators.
fn run_manifest(p: &PodEnv, image: &str, app: Option<Value>, pod_isolators: Value) -> Run {
    let (name, version) = image.split_once(':').unwrap();
    let mut entry = json!({
        "name": "probe",
        "image": {"name": name, "labels": [{"name": "version", "value": version}]},
    });
    if let Some(app) = app {
        entry["app"] = app;
    }
    let manifest = json!({
        "acKind": "PodManifest",
        "acVersion": "0.8.11",
        "apps": [entry],
        "isolators": pod_isolators,
    });
    let file = p.v.path(&common::host::unique_name("pod.json"));
    std::fs::write(&file, serde_json::to_vec(&manifest).unwrap()).unwrap();
    p.run(&["run", "--rm", &format!("--pod-manifest={}", file.display())])
}

#[test]
fn the_operators_pod_isolators_win_over_the_images() {
    let p = PodEnv::new();
    let image = hostile(&p);
    // The image's own app (no app in the manifest), under the pod's isolators.
    let r = run_manifest(
        &p,
        &image,
        None,
        json!([
            {"name": "os/linux/seccomp-remove-set", "value": {"set": ["mkdir", "mkdirat"], "errno": "EACCES"}},
            {"name": "os/linux/no-new-privileges", "value": true},
        ]),
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains("Seccomp:\t2"), "the filter is on:\n{r}");
    assert!(
        r.stdout.contains("NoNewPrivs:\t1"),
        "no_new_privs is on:\n{r}"
    );
    assert!(
        r.stdout.contains("Permission denied") && r.stdout.contains("mkdir=1"),
        "the pod's remove-set applies:\n{r}"
    );
}

#[test]
fn the_operator_may_widen() {
    let p = PodEnv::new();
    let image = hostile(&p);
    // A pod manifest's app (it replaces the image's): its isolators are the operator's.
    let app = json!({
        "exec": ["/bin/sh", "-c", PROBE],
        "user": "0", "group": "0",
        "isolators": [
            {"name": "os/linux/seccomp-retain-set", "value": {"set": ["@appc.io/all"]}},
            {"name": "os/linux/no-new-privileges", "value": false},
        ],
    });
    let r = run_manifest(&p, &image, Some(app), json!([]));
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains("Seccomp:\t0"), "{r}");
    assert!(r.stdout.contains("NoNewPrivs:\t0"), "{r}");
    assert!(r.stdout.contains("unshare=0"), "{r}");
    // Pod-level isolators of a manifest, over the image's own app.
    let r = run_manifest(
        &p,
        &p.image.clone(),
        Some(json!({"exec": ["/bin/sh", "-c", PROBE], "user": "0", "group": "0"})),
        json!([{"name": "os/linux/seccomp-retain-set", "value": {"set": ["@docker/default-whitelist", "unshare"]}}]),
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains("unshare=0"), "{r}");
    // The command line.
    let r = probe(
        &p,
        &image,
        &[],
        &["--seccomp=mode=retain,@docker/default-whitelist,unshare"],
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(
        r.stdout.contains("Seccomp:\t2") && r.stdout.contains("unshare=0"),
        "{r}"
    );
    let r = probe(&p, &image, &["--insecure-options=seccomp"], &[]);
    assert!(r.stdout.contains("Seccomp:\t0"), "{r}");
}
