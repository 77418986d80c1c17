//! `vessel enter`: exactly the app's isolation, and nothing more.

mod common;
mod podkit;

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
