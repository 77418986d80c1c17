//! `--pod-manifest`: an appc PodManifest run directly.

use crate::podkit;

use podkit::PodEnv;

#[test]
fn a_pod_manifest_runs_its_apps_volumes_isolators_and_annotations() {
    let p = PodEnv::new();
    let id = p.v.image_ids()[0].clone();
    let manifest = serde_json::json!({
        "acKind": "PodManifest",
        "acVersion": "0.8.11",
        "apps": [
            {
                "name": "writer",
                "image": {"name": "example.com/busybox", "labels": [{"name": "version", "value": "1"}]},
                "app": {
                    "exec": ["/bin/sh", "-c", "echo $FROM > /shared/msg; grep CapEff /proc/self/status"],
                    "user": "0", "group": "0",
                    "environment": [{"name": "FROM", "value": "the-manifest"}],
                    "isolators": [{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_CHOWN"]}}]
                },
                "mounts": [{"volume": "shared", "path": "/shared"}],
                "annotations": [{"name": "example.com/role", "value": "writer"}]
            },
            {
                "name": "reader",
                "image": {"id": id},
                "app": {"exec": ["/bin/sh", "-c", "for i in $(seq 1500); do [ -s /in/msg ] && break; sleep 0.02; done; cat /in/msg"], "user": "0", "group": "0"},
                "mounts": [{"volume": "shared", "path": "/in"}]
            }
        ],
        "volumes": [{"name": "shared", "kind": "empty", "mode": "0777"}],
        "annotations": [{"name": "example.com/pod", "value": "from-manifest"}]
    });
    let file = p.v.path("pod.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let uuid_file = p.v.path("uuid");
    let r = p.run(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &format!("--pod-manifest={}", file.display()),
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(
        r.stdout.contains("CapEff:\t0000000000000001"),
        "the app's isolator applied:\n{r}"
    );
    assert!(r.stdout.contains("the-manifest"), "{r}");
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    let m = p.run(&["cat-manifest", &uuid]).success();
    assert!(
        m.stdout.contains("example.com/pod") && m.stdout.contains("example.com/role"),
        "{m}"
    );
}

#[test]
fn bad_pod_manifests_are_refused_clearly() {
    let p = PodEnv::new();
    let file = p.v.path("bad.json");
    std::fs::write(&file, b"{ not json").unwrap();
    let r = p.run(&["run", &format!("--pod-manifest={}", file.display())]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(r.stderr.contains("bad.json"), "{r}");
    std::fs::write(&file, br#"{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{"name": "x", "image": {"name": "example.com/nope"}}]}"#).unwrap();
    let r = p.run(&["run", &format!("--pod-manifest={}", file.display())]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(r.stderr.contains("example.com/nope"), "{r}");
    let r = p.run(&[
        "run",
        &format!("--pod-manifest={}", file.display()),
        &p.image,
    ]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(p.list().is_empty());
}
