//! Capabilities and seccomp per app, from flags and from image isolators.

use crate::common;
use crate::podkit;

use common::aci::AciLayout;
use common::compress::Compression;
use common::rootfs::busybox_rootfs;
use podkit::PodEnv;

fn cap_eff(r: &common::Run) -> String {
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:\t"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn caps_retain_and_remove() {
    let p = PodEnv::new();
    let r = p.sh_app(
        &[],
        &["--caps-retain=CAP_NET_ADMIN,chown"],
        "grep CapEff /proc/self/status",
    );
    assert_eq!(cap_eff(&r), "0000000000001001", "{r}");
    let r = p.sh_app(
        &[],
        &["--caps-remove=CAP_CHOWN,CAP_KILL"],
        "grep CapEff /proc/self/status",
    );
    assert_eq!(
        cap_eff(&r),
        "00000000a80425da",
        "docker set minus CHOWN and KILL:\n{r}"
    );
    let r = p.sh_app(&[], &["--caps-retain=CAP_NOPE"], "true");
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(r.stderr.contains("NOPE"), "{r}");
    let r = p.sh_app(
        &[],
        &["--caps-retain=CAP_CHOWN", "--caps-remove=CAP_KILL"],
        "true",
    );
    assert_eq!(r.code(), Some(1), "{r}");
}

#[test]
fn seccomp_remove_set_with_errno_and_kill_mode() {
    let p = PodEnv::new();
    let r = p.sh_app(
        &[],
        &["--seccomp=mode=remove,errno=ENOTSUP,mkdir,mkdirat"],
        "mkdir /tmp/d 2>&1; echo after",
    );
    assert!(
        r.stdout.to_lowercase().contains("not supported") && r.stdout.contains("after"),
        "{r}"
    );
    // Without errno the call kills the app with SIGSYS.
    let r = p.sh_app(
        &[],
        &["--seccomp=mode=remove,mkdir,mkdirat"],
        "exec mkdir /tmp/d",
    );
    assert_eq!(r.code(), Some(128 + libc::SIGSYS), "{r}");
    let r = p.sh_app(
        &[],
        &["--seccomp=mode=retain,@docker/default-whitelist"],
        "echo ok",
    );
    assert_eq!(r.stdout, "ok\n", "{r}");
    let r = p.sh_app(&[], &["--seccomp=mode=remove,nosuchcall"], "true");
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(r.stderr.contains("nosuchcall"), "{r}");
    let r = p.sh_app(&[], &["--seccomp=mode=remove,@nosuch/group"], "true");
    assert!(r.stderr.contains("@nosuch/group"), "{r}");
}

#[test]
fn image_isolators_set_capabilities_and_seccomp() {
    let p = PodEnv::new();
    let mut layout = AciLayout::create(&p.v.path("iso.layout"), "example.com/iso", "1");
    busybox_rootfs(&layout.rootfs());
    layout.manifest["app"]["isolators"] = serde_json::json!([
        {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE"]}},
        {"name": "os/linux/seccomp-remove-set", "value": {"set": ["mkdir", "mkdirat"], "errno": "EACCES"}},
    ]);
    let aci = layout.build(&p.v.path("iso.aci"), Compression::None);
    p.v.fetch(&aci.path_str());
    let r = p.run(&[
        "run",
        "--rm",
        "example.com/iso:1",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "grep CapEff /proc/self/status; mkdir /tmp/x 2>&1",
    ]);
    assert_eq!(cap_eff(&r), "0000000000000400", "{r}");
    assert!(r.stdout.contains("Permission denied"), "{r}");
}

#[test]
fn annotations_and_labels_show_in_cat_manifest_and_status() {
    let p = PodEnv::new();
    let uuid = p
        .run(&[
            "prepare",
            &p.image,
            "--annotation=example.com/owner=team-a",
            "--label=tier=web",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let m = p.run(&["cat-manifest", &uuid]).success();
    assert!(
        m.stdout.contains("example.com/owner") && m.stdout.contains("team-a"),
        "{m}"
    );
    assert!(m.stdout.contains("tier") && m.stdout.contains("web"), "{m}");
    let s = p.status(&uuid);
    assert_eq!(
        s["apps"][0]["annotations"]["example.com/owner"], "team-a",
        "{s}"
    );
    assert_eq!(s["apps"][0]["labels"]["tier"], "web", "{s}");
}

#[test]
fn ipc_namespaces_private_by_default_or_the_hosts() {
    let p = PodEnv::new();
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let r = p.sh(&[], "readlink /proc/self/ns/ipc");
    assert_ne!(r.stdout.trim(), host_ipc, "{r}");
    let r = p.sh(&["--ipc=parent"], "readlink /proc/self/ns/ipc");
    assert_eq!(r.stdout.trim(), host_ipc, "{r}");
}
