//! What host users other than root can reach of a pod's files: nothing. Root in a pod owns
//! its writable layer, so a setuid-root binary it writes there would make any host user
//! root if they could reach it; the plan and logs hold the pod's environment and output.

use crate::common;
use crate::podkit;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::aci::AciLayout;
use common::compress::Compression;
use common::rootfs::busybox_rootfs;
use common::Run;
use podkit::PodEnv;

const NOBODY: u32 = 65534;

/// Runs `args` on the host as `nobody` (no supplementary groups). Through a shell: setpriv
/// keeps root's capabilities until its own exec, which would let that exec pass any
/// directory; the shell's exec has none.
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
            "/bin/sh",
            "-c",
            "exec \"$0\" \"$@\"",
        ])
        .args(args)
        .output()
        .expect("running setpriv")
}

fn shown(o: &std::process::Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The busybox image plus a copy of the host's coreutils `id`, which (unlike busybox) keeps
/// the privileges a setuid bit gives it: what an attacker's image would carry.
fn env_with_id() -> PodEnv {
    let p = PodEnv::new();
    let layout = AciLayout::create(&p.v.path("hostile.layout"), "example.com/hostile", "1");
    busybox_rootfs(&layout.rootfs());
    std::fs::create_dir_all(layout.rootfs().join("opt")).unwrap();
    std::fs::copy("/usr/bin/id", layout.rootfs().join("opt/id")).unwrap();
    let aci = layout.build(&p.v.path("hostile.aci"), Compression::None);
    p.v.fetch(&aci.path_str());
    p
}

/// Root in the pod plants setuid-root copies of busybox and `id` in its writable layer and
/// prints something for the log. Returns the pod's directory (it stays, exited, in run/).
fn plant(p: &PodEnv, pod_flags: &[&str]) -> (PathBuf, Run) {
    let uuid_file = p.v.path(&common::host::unique_name("uuid"));
    let mut args = vec![
        "run".to_string(),
        format!("--uuid-file-save={}", uuid_file.display()),
        "--set-env=SECRET=hunter2".to_string(),
    ];
    args.extend(pod_flags.iter().map(|s| s.to_string()));
    args.extend(
        [
            "example.com/hostile:1",
            "--name=evil",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "cp /bin/busybox /tmp/rootme && chmod 4755 /tmp/rootme && \
             cp /opt/id /tmp/rootme-id && chmod 4755 /tmp/rootme-id && echo planted",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = p.run(&refs);
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "planted\n", "{r}");
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    (p.v.dir().join("pods/run").join(uuid), r)
}

/// The hostile setup did what it meant to: the files are there, setuid root, as are the
/// plan (with the environment) and the log.
fn assert_planted(pod: &Path) {
    let upper = pod.join("apps/evil/upper/tmp");
    for f in ["rootme", "rootme-id"] {
        let m = std::fs::metadata(upper.join(f)).unwrap();
        assert_eq!(m.uid(), 0, "{f} belongs to host root");
        assert_eq!(m.mode() & 0o7777, 0o4755, "{f} is setuid");
    }
    assert!(std::fs::read_to_string(pod.join("plan.json"))
        .unwrap()
        .contains("hunter2"));
    // One record in the CRI log format: TIME stdout F planted.
    let log = std::fs::read_to_string(pod.join("logs/evil.log")).unwrap();
    assert!(log.ends_with(" stdout F planted\n"), "{log:?}");
    assert_eq!(log.lines().count(), 1, "{log:?}");
}

fn assert_unreachable_by_nobody(pod: &Path) {
    let upper = pod.join("apps/evil/upper/tmp");
    let id = upper.join("rootme-id");
    let o = as_nobody(&[id.to_str().unwrap(), "-u"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stdout).trim() != "0",
        "nobody ran the pod's setuid binary:\n{}",
        shown(&o)
    );
    let bb = upper.join("rootme");
    let o = as_nobody(&[bb.to_str().unwrap(), "true"]);
    assert!(
        !o.status.success(),
        "nobody ran the pod's busybox:\n{}",
        shown(&o)
    );
    let o = as_nobody(&["/bin/busybox", "stat", upper.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "nobody reached the upper layer:\n{}",
        shown(&o)
    );
    for f in ["plan.json", "logs/evil.log", "state.json", "pod"] {
        let o = as_nobody(&["/bin/cat", pod.join(f).to_str().unwrap()]);
        assert!(!o.status.success(), "nobody read {f}:\n{}", shown(&o));
    }
    let pods = pod.parent().unwrap().parent().unwrap();
    let o = as_nobody(&["/bin/ls", pods.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "nobody listed the pods:\n{}",
        shown(&o)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn a_setuid_binary_planted_by_a_pods_root_is_out_of_reach_of_host_users() {
    let p = env_with_id();
    let (pod, _) = plant(&p, &[]);
    assert_planted(&pod);
    assert_unreachable_by_nobody(&pod);
    assert_eq!(mode(&pod), 0o700, "the pod directory is root's alone");
    assert_eq!(
        mode(&p.v.dir().join("pods")),
        0o711,
        "others pass, never list"
    );
}

#[test]
fn with_private_users_too() {
    let p = env_with_id();
    let (pod, _) = plant(&p, &["--private-users"]);
    assert_planted(&pod);
    assert_unreachable_by_nobody(&pod);
    // The pod's root (in its user namespace) passes through to its stage1 mount point and
    // empty volumes, as the group; nobody else.
    let meta = std::fs::metadata(&pod).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o710);
    assert_eq!(
        (meta.uid(), meta.gid() as u64 >= 1 << 31),
        (0, true),
        "{meta:?}"
    );
    assert_eq!(mode(&p.v.dir().join("cache")), 0o700, "cache");
    // The ranges are registered host-wide, in a directory root's alone.
    assert_eq!(mode(Path::new("/var/lib/vessel-userns")), 0o700);
}

#[test]
fn an_empty_volume_is_out_of_reach_of_host_users() {
    let p = PodEnv::new();
    let uuid_file = p.v.path("uuid");
    let r = p.run(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        "--volume=data,kind=empty,mode=0777",
        &p.image,
        "--mount=volume=data,target=/data",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "echo private > /data/file",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let file =
        p.v.dir()
            .join("pods/run")
            .join(uuid.trim())
            .join("volumes/data/file");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "private\n");
    let o = as_nobody(&["/bin/cat", file.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "nobody read the volume:\n{}",
        shown(&o)
    );
}

#[test]
fn an_older_dir_left_open_is_tightened_when_opened() {
    let p = PodEnv::new();
    let r = p.sh(&["--private-users"], "true");
    assert_eq!(r.code(), Some(0), "{r}");
    let dir = p.v.dir();
    // As an older vessel left them (it kept --private-users ranges in <dir>/userns).
    std::fs::create_dir_all(dir.join("userns")).unwrap();
    for d in ["pods", "pods/run", "pods/prepared", "userns", "cache"] {
        std::fs::set_permissions(dir.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p.run(&["list"]).success();
    for (d, m) in [
        ("pods", 0o711),
        ("pods/run", 0o711),
        ("pods/prepared", 0o700),
        ("userns", 0o700),
        ("cache", 0o700),
    ] {
        assert_eq!(mode(&dir.join(d)), m, "{d}");
    }
    // And pods still run, with or without a user namespace.
    let r = p.sh(&["--private-users"], "touch /x && echo ok");
    assert_eq!(r.stdout, "ok\n", "{r}");
    let r = p.sh(&[], "touch /x && echo ok");
    assert_eq!(r.stdout, "ok\n", "{r}");
}
