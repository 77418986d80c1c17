//! `vessel enter`: exactly the app's isolation, and nothing more.

use crate::common;
use crate::podkit;

use podkit::PodEnv;

fn detached(p: &PodEnv, app_flags: &[&str]) -> String {
    let mut args = vec!["run", "--detach", &p.image];
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--exec", "/bin/sleep", "--", "60"]);
    p.run(&args).success().stdout.trim().to_string()
}

#[test]
fn enter_runs_with_the_apps_user_root_namespaces_and_environment() {
    let p = PodEnv::new();
    let uuid = detached(
        &p,
        &["--user=app", "--working-dir=/tmp", "--environment=WHO=app"],
    );
    let r = p.run(&["enter", &uuid, "/bin/sh", "-c", "id -u; pwd; echo $WHO; hostname; ps -o comm | grep -c sleep; cat /proc/self/cgroup | grep memory"]);
    assert_eq!(r.code(), Some(0), "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&lines[..3], &["1000", "/tmp", "app"], "{r}");
    assert!(lines[3].starts_with("vessel-"), "{r}");
    assert_eq!(lines[4], "1", "sees the app's processes:\n{r}");
    assert!(
        lines[5].ends_with(":/"),
        "in the app's cgroup, seen from its namespace:\n{r}"
    );
    // The exit status passes through.
    assert_eq!(
        p.run(&["enter", &uuid, "/bin/sh", "-c", "exit 42"]).code(),
        Some(42)
    );
    p.run(&["stop", "--force", &uuid]).success();
}

#[test]
fn enter_cannot_mount_unshare_or_gain_capabilities() {
    let p = PodEnv::new();
    let uuid = detached(&p, &["--caps-retain=CAP_NET_BIND_SERVICE"]);
    let r = p.run(&[
        "enter", &uuid, "/bin/sh", "-c",
        "mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED; unshare -m true 2>/dev/null && echo UNSHARED; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(
        !r.stdout.contains("MOUNTED") && !r.stdout.contains("UNSHARED"),
        "{r}"
    );
    // Only CAP_NET_BIND_SERVICE (bit 10), as the app.
    assert!(r.stdout.contains("CapEff:\t0000000000000400"), "{r}");
    assert!(r.stdout.contains("CapBnd:\t0000000000000400"), "{r}");
    assert!(
        r.stdout.contains("NoNewPrivs:\t1") && r.stdout.contains("Seccomp:\t2"),
        "{r}"
    );
    p.run(&["stop", "--force", &uuid]).success();
}

#[test]
fn enter_gets_the_apps_seccomp_filter() {
    let p = PodEnv::new();
    let uuid = detached(&p, &["--seccomp=mode=remove,errno=ENOTSUP,mkdir,mkdirat"]);
    let r = p.run(&[
        "enter",
        &uuid,
        "/bin/sh",
        "-c",
        "mkdir /tmp/x 2>&1; echo done",
    ]);
    assert!(
        r.stdout.contains("Not supported") || r.stdout.contains("not supported"),
        "mkdir fails with ENOTSUP:\n{r}"
    );
    p.run(&["stop", "--force", &uuid]).success();
}

#[test]
fn enter_refuses_exited_missing_pods_and_unknown_apps() {
    let p = PodEnv::new();
    p.run(&["enter", "ffffffff"])
        .failure()
        .stderr_names(&["ffffffff", "not found"]);
    let exited = p
        .run(&["prepare", &p.image])
        .success()
        .stdout
        .trim()
        .to_string();
    p.run(&["run-prepared", &exited]).success();
    p.run(&["enter", &exited])
        .failure()
        .stderr_names(&["exited", "running"]);
    let uuid = detached(&p, &[]);
    p.run(&["enter", "--app=nope", &uuid])
        .failure()
        .stderr_names(&["nope", "busybox"]);
    p.run(&["stop", "--force", &uuid]).success();
}

/// The test helper crates/vessel/examples/exe_grabber.rs.
fn exe_grabber() -> std::path::PathBuf {
    common::example("exe_grabber")
}

#[test]
fn a_pod_cannot_overwrite_the_binary_that_entered_it() {
    use common::aci::AciLayout;
    use common::compress::Compression;
    use std::os::unix::fs::PermissionsExt;
    let v = common::Vessel::new();
    // The pod swaps the command it expects to be entered with for a script that runs
    // whatever binary execs it (CVE-2019-5736), and its app waits to grab that binary.
    let layout = AciLayout::create(&v.path("grab.layout"), "example.com/grab", "1");
    let rootfs = layout.rootfs();
    common::rootfs::busybox_rootfs(&rootfs);
    std::fs::copy(exe_grabber(), rootfs.join("grabber")).unwrap();
    std::fs::write(rootfs.join("cve-probe"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(
        rootfs.join("cve-probe"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let aci = layout.build(&v.path("grab.aci"), Compression::None);
    v.fetch(&aci.path_str());
    let uuid = v
        .run(&[
            "run",
            "--detach",
            "example.com/grab:1",
            "--exec",
            "/grabber",
            "--",
            "cve-probe",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let logs = || v.run(&["logs", &uuid]).stdout;
    podkit::wait_for(
        "the grabber to watch",
        std::time::Duration::from_secs(10),
        || logs().contains("watching"),
    );
    // Entered through a copy of vessel that nothing else runs: once enter is done, only
    // the mount it was run from would stop a write.
    let copy = v.path("vessel-copy");
    std::fs::copy(common::VESSEL, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    // The probe (vessel, run by the script) ends at once with a usage error. To give the
    // grabber its chance whatever the machine's load, the entered processes run under
    // strace, which holds each exit_group for a few seconds: the probe stays alive,
    // running the binary, until the grabber has it.
    let entered = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=exit_group"])
        .args(["-e", "inject=exit_group:delay_enter=3000000"])
        .arg(&copy)
        .arg("--dir")
        .arg(v.dir())
        .args(["enter", &uuid, "/cve-probe"])
        .output()
        .expect("running strace (Debian's strace)");
    assert_ne!(
        entered.status.code(),
        Some(0),
        "the probe printed a usage error"
    );
    podkit::wait_for(
        "the grabber's verdict",
        std::time::Duration::from_secs(30),
        || {
            let l = logs();
            l.contains("writable") || l.contains("refused") || l.contains("nothing to grab")
        },
    );
    let l = logs();
    assert!(
        l.contains("grabbed"),
        "the process ran the binary in the pod:\n{l}"
    );
    assert!(
        l.contains("refused: Read-only file system"),
        "the pod could open the binary for writing:\n{l}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // The grabber is done, and so is its pod.
    let _ = v.run(&["stop", "--force", &uuid]);
}

#[test]
fn enter_refuses_a_pid_that_is_no_longer_the_apps() {
    let p = PodEnv::new();
    let uuid = detached(&p, &[]);
    // The recorded pid now names a process outside the pod (as a recycled pid would).
    let state_file = p.v.dir().join("pods/run").join(&uuid).join("state.json");
    let saved = std::fs::read_to_string(&state_file).unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&saved).unwrap();
    state["apps"][0]["pid"] = serde_json::json!(std::process::id());
    std::fs::write(&state_file, state.to_string()).unwrap();
    p.run(&["enter", &uuid, "/bin/true"])
        .failure()
        .stderr_names(&[&std::process::id().to_string(), "no longer"]);
    std::fs::write(&state_file, saved).unwrap();
    p.run(&["enter", &uuid, "/bin/true"]).success();
    p.run(&["stop", "--force", &uuid]).success();
}
