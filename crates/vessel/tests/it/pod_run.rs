//! Running pods through the CLI: exit statuses, output, environment, users, flags, and the
//! lifecycle commands.

use crate::podkit;

use std::time::Duration;

use podkit::{cgroup_dirs, PodEnv};

#[test]
fn run_exits_with_the_apps_status_and_prints_its_output() {
    let p = PodEnv::new();
    let r = p.sh(&[], "echo out; echo err >&2; exit 3");
    assert_eq!(r.code(), Some(3), "{r}");
    assert_eq!(r.stdout, "out\n", "{r}");
    assert!(r.stderr.contains("err\n"), "{r}");
}

#[test]
fn several_apps_report_the_first_non_zero_status_in_app_order() {
    let p = PodEnv::new();
    let r = p.run(&[
        "run", "--rm", &p.image, "--name=a", "--exec", "/bin/sh", "--", "-c", "exit 0", "---",
        &p.image, "--name=b", "--exec", "/bin/sh", "--", "-c", "exit 4", "---", &p.image,
        "--name=c", "--exec", "/bin/sh", "--", "-c", "exit 5",
    ]);
    assert_eq!(r.code(), Some(4), "{r}");
}

#[test]
fn apps_share_the_pod_namespaces_but_not_their_roots() {
    let p = PodEnv::new();
    let r = p.run(&[
        "run",
        "--rm",
        "--hostname=shared",
        &p.image,
        "--name=a",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "touch /only-in-a; sleep 0.3; hostname; ls /only-in-b 2>/dev/null || echo no-b",
        "---",
        &p.image,
        "--name=b",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "touch /only-in-b; sleep 0.3; ps | grep -c 'sleep 0.3' ",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(r.stdout.contains("shared"), "{r}");
    assert!(r.stdout.contains("no-b"), "each app has its own root:\n{r}");
    // b sees a's sleep too (shared pid namespace): two sleeps, plus the grep's own line.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim().parse::<u32>().is_ok_and(|n| n >= 2)),
        "shared pid namespace:\n{r}"
    );
}

#[test]
fn logs_keep_each_apps_output() {
    let p = PodEnv::new();
    let uuid_file = p.v.path("uuid");
    let r = p.run(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &p.image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "echo to-log; echo also >&2",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    // The apps' stdout to stdout, their stderr to stderr (`vessel logs --stream`).
    let logs = p.run(&["logs", &uuid]).success();
    assert!(
        logs.stdout.contains("to-log") && logs.stderr.contains("also"),
        "{logs}"
    );
    let logs = p.run(&["logs", "--app=busybox", &uuid]).success();
    assert!(logs.stdout.contains("to-log"), "{logs}");
    p.run(&["logs", "--app=nope", &uuid])
        .failure()
        .stderr_names(&["nope", "busybox"]);
}

#[test]
fn environment_precedence_and_appc_variables() {
    let p = PodEnv::new();
    let env_file = p.v.path("env");
    std::fs::write(&env_file, "# comment\nA=file\nB=file\nC=file\n").unwrap();
    let r = p.v.run_with_env(
        &[
            "run",
            "--rm",
            "--inherit-env",
            &format!("--set-env-file={}", env_file.display()),
            "--set-env=B=flag",
            "--set-env=C=flag",
            &p.image,
            "--environment=C=app",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "echo $INHERITED $A $B $C $AC_APP_NAME $container; echo $PATH",
        ],
        &[("INHERITED", "inh"), ("A", "host")],
    );
    assert_eq!(r.code(), Some(0), "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "inh file flag app busybox vessel", "{r}");
    assert!(lines[1].contains("/bin"), "{r}");
}

#[test]
fn users_groups_and_working_directory() {
    let p = PodEnv::new();
    let r = p.sh_app(
        &[],
        &["--user=app", "--working-dir=/tmp"],
        "id -u; id -g; pwd; echo $HOME",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "1000\n1000\n/tmp\n/home/app\n", "{r}");
    let r = p.sh_app(
        &[],
        &["--user=1234", "--group=5678", "--supplementary-gids=7,8"],
        "id -u; id -g; id -G",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(&lines[..2], &["1234", "5678"], "{r}");
    assert!(lines[2].contains('7') && lines[2].contains('8'), "{r}");
}

#[test]
fn an_unknown_user_or_group_is_a_clear_error() {
    let p = PodEnv::new();
    let r = p.sh_app(&[], &["--user=nosuchuser"], "true");
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(
        r.stderr.contains("nosuchuser") && r.stderr.contains("/etc/passwd"),
        "{r}"
    );
    let r = p.sh_app(&[], &["--group=nosuchgroup"], "true");
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(r.stderr.contains("nosuchgroup"), "{r}");
}

#[test]
fn a_missing_exec_path_exits_127_and_says_so() {
    let p = PodEnv::new();
    let r = p.run(&["run", "--rm", &p.image, "--exec", "/no/such/program"]);
    assert_eq!(r.code(), Some(127), "{r}");
    assert!(r.stderr.contains("/no/such/program"), "{r}");
}

/// docker's codes come from the failing step and its errno, not from the message: a
/// missing working directory is "not found" too, but the command was never tried.
#[test]
fn a_missing_working_directory_exits_125_and_a_file_that_cannot_run_126() {
    let p = PodEnv::new();
    let r = p.sh_app(&[], &["--working-dir=/nonexistent"], "true");
    assert_eq!(r.code(), Some(125), "{r}");
    assert!(
        r.stderr.contains("working directory /nonexistent") && r.stderr.contains("No such file"),
        "{r}"
    );
    let r = p.run(&["run", "--rm", &p.image, "--exec", "/etc/passwd"]);
    assert_eq!(r.code(), Some(126), "{r}");
    assert!(r.stderr.contains("/etc/passwd"), "{r}");
}

#[test]
fn hostname_and_read_only_root() {
    let p = PodEnv::new();
    let r = p.sh_app(&["--hostname=podhost"], &["--readonly-rootfs"], "hostname; cat /etc/hostname; touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/y 2>/dev/null || echo tmp-too");
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        vec!["podhost", "podhost", "read-only", "tmp-too"],
        "{r}"
    );
}

#[test]
fn prepare_then_run_prepared_and_list_states() {
    let p = PodEnv::new();
    let r = p
        .run(&[
            "prepare", &p.image, "--exec", "/bin/sh", "--", "-c", "echo ran",
        ])
        .success();
    let uuid = r.stdout.trim().to_string();
    assert_eq!(p.status(&uuid)["state"], "prepared");
    let listed = p.list();
    assert!(
        listed
            .iter()
            .any(|x| x["name"] == uuid.as_str() && x["state"] == "prepared"),
        "{listed:?}"
    );
    let r = p.run(&["run-prepared", &uuid[..8]]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "ran\n");
    let s = p.status(&uuid);
    assert_eq!(s["state"], "exited");
    assert_eq!(s["exited"], true);
    assert_eq!(p.app_exit(&uuid, "busybox"), Some(0));
    // A pod runs once.
    p.run(&["run-prepared", &uuid])
        .failure()
        .stderr_names(&[&uuid, "exited"]);
    // Table form.
    let t = p.run(&["list", "--no-legend"]).success();
    assert!(
        t.stdout.contains(&uuid[..8]) && t.stdout.contains("exited"),
        "{t}"
    );
}

#[test]
fn rm_flag_and_rm_command_remove_pods() {
    let p = PodEnv::new();
    let saved = p.v.dir().join("rm-uuid");
    let r = p.sh(
        &[&format!("--uuid-file-save={}", saved.display())],
        "echo bye; exit 3",
    );
    assert_eq!((r.code(), r.stdout.as_str()), (Some(3), "bye\n"), "{r}");
    assert!(p.list().is_empty(), "--rm leaves nothing: {:?}", p.list());
    // Its cgroups and files go in the background, once its init is gone.
    let uuid = std::fs::read_to_string(&saved).unwrap().trim().to_string();
    let gone = || {
        let pods = p.v.dir().join("pods");
        cgroup_dirs(&uuid).is_empty()
            && ["garbage", "run", "exited-garbage"]
                .iter()
                .all(|d| !pods.join(d).join(&uuid).exists())
            && !pods
                .join("garbage")
                .join(format!(".deleting-{uuid}"))
                .exists()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone(), "left behind: {:?}", cgroup_dirs(&uuid));
    let r = p.run(&["prepare", &p.image]).success();
    let uuid = r.stdout.trim().to_string();
    p.run(&["rm", &uuid]).success();
    assert!(p.list().is_empty());
    assert!(cgroup_dirs(&uuid).is_empty());
    p.run(&["rm", &uuid])
        .failure()
        .stderr_names(&[&uuid[..8], "not found"]);
}

#[test]
fn unknown_or_ambiguous_images_and_uuids_are_refused() {
    let p = PodEnv::new();
    p.run(&["run", "example.com/nope:1"])
        .failure()
        .stderr_names(&["example.com/nope"]);
    p.run(&["status", "ffffffff"])
        .failure()
        .stderr_names(&["ffffffff", "not found"]);
    // Two pods: a one-character prefix shared by both is ambiguous (try all hex digits).
    let a = p
        .run(&["prepare", &p.image])
        .success()
        .stdout
        .trim()
        .to_string();
    let b = p
        .run(&["prepare", &p.image])
        .success()
        .stdout
        .trim()
        .to_string();
    let common: String = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    if !common.is_empty() {
        p.run(&["status", &common])
            .failure()
            .stderr_names(&["ambiguous"]);
    }
    assert!(p.list().len() == 2);
}

#[test]
fn detach_stop_and_status_wait() {
    let p = PodEnv::new();
    let r = p
        .run(&[
            "run",
            "--detach",
            &p.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "trap 'exit 7' TERM; echo up; while true; do sleep 0.05; done",
        ])
        .success();
    let uuid = r.stdout.trim().to_string();
    assert_eq!(p.status(&uuid)["state"], "running");
    let txt = p.run(&["status", &uuid]).success();
    assert!(
        txt.stdout.contains("state=running") && txt.stdout.contains("pid="),
        "{txt}"
    );
    p.run(&["stop", &uuid]).success();
    p.run(&["status", "--wait=10s", &uuid]).success();
    let s = p.status(&uuid);
    assert_eq!(s["state"], "exited", "{s}");
    assert_eq!(p.app_exit(&uuid, "busybox"), Some(7), "{s}");
    assert!(
        cgroup_dirs(&uuid).is_empty(),
        "cgroups removed with the pod"
    );
    // Stopping an exited pod is not an error (rkt: "already stopped"), so a unit's
    // ExecStop may run after the pod ended.
    let again = p.run(&["stop", &uuid]).success();
    assert!(again.stdout.contains("already stopped"), "{again}");
}

#[test]
fn stop_escalates_to_sigkill_for_an_app_that_ignores_sigterm() {
    let p = PodEnv::new();
    let r = p
        .run(&[
            "run",
            "--detach",
            &p.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "trap '' TERM; while true; do sleep 0.05; done",
        ])
        .success();
    let uuid = r.stdout.trim().to_string();
    let start = std::time::Instant::now();
    p.run(&["stop", "--timeout=1s", &uuid]).success();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "waited for the timeout first"
    );
    let s = p.status(&uuid);
    assert_eq!(s["state"], "exited", "{s}");
    assert_eq!(
        p.app_exit(&uuid, "busybox"),
        Some(137),
        "killed by SIGKILL: {s}"
    );
}

#[test]
fn sigterm_to_vessel_run_stops_the_pod_gracefully() {
    let p = PodEnv::new();
    let (child, uuid_file) = p.spawn(
        &[],
        "trap 'echo graceful; exit 0' TERM; while true; do sleep 0.05; done",
    );
    let uuid = p.wait_running(&uuid_file);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("graceful"),
        "{out:?}"
    );
    assert_eq!(p.status(&uuid)["state"], "exited");
}

#[test]
fn sigkill_to_vessel_leaves_an_exited_pod_that_gc_cleans() {
    let p = PodEnv::new();
    let (mut child, uuid_file) = p.spawn(&[], "while true; do sleep 0.05; done");
    let uuid = p.wait_running(&uuid_file);
    child.kill().unwrap();
    child.wait().unwrap();
    podkit::wait_for(
        "the pod to be seen as exited",
        Duration::from_secs(10),
        || p.status(&uuid)["state"] == "exited",
    );
    podkit::wait_for(
        "the pod's processes to die",
        Duration::from_secs(10),
        || podkit::host_processes(&uuid).is_empty(),
    );
    let r = p.run(&["gc", "--grace-period=0s"]).success();
    assert!(r.stdout.contains(&uuid), "{r}");
    assert!(p.list().is_empty(), "{:?}", p.list());
    assert!(
        cgroup_dirs(&uuid).is_empty(),
        "gc removed the pod's cgroups: {:?}",
        cgroup_dirs(&uuid)
    );
}

#[test]
fn gc_keeps_running_pods_and_waits_for_the_grace_period() {
    let p = PodEnv::new();
    let running = p.detached(&[], &["/bin/sleep", "30"]);
    let exited = p
        .run(&["prepare", &p.image])
        .success()
        .stdout
        .trim()
        .to_string();
    p.run(&["run-prepared", &exited]).success();
    let r = p.run(&["gc"]).success();
    assert!(r.stdout.contains(&format!("marked {exited}")), "{r}");
    assert!(
        !r.stdout.contains("removed"),
        "default grace period keeps it: {r}"
    );
    assert_eq!(p.status(&exited)["state"], "exited garbage");
    p.run(&["gc", "--grace-period=0s"]).success();
    assert_eq!(p.status(&running)["state"], "running");
    p.run(&["status", &exited]).failure();
    p.run(&["stop", "--force", &running]).success();
}

#[test]
fn an_app_over_its_memory_limit_is_killed_and_status_says_so() {
    let p = PodEnv::new();
    let uuid_file = p.v.path("uuid");
    let r = p.run(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &p.image,
        "--memory=32M",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "exec dd if=/dev/zero of=/dev/null bs=256M count=1",
    ]);
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(
        !r.stdout.contains("survived") || r.stderr.contains("out of memory"),
        "{r}"
    );
    let s = p.status(&uuid);
    let app = &s["apps"][0];
    // The shell or dd was OOM-killed; the cgroup saw it.
    assert_eq!(app["oom_killed"], true, "{s}");
    assert!(p
        .run(&["status", &uuid])
        .success()
        .stdout
        .contains("app-busybox.oom-killed=true"));
}

#[test]
fn limits_reach_the_apps_cgroup() {
    let p = PodEnv::new();
    let (child, uuid_file) = p.spawn(&[], "sleep 30");
    drop(child);
    let _ = uuid_file;
    let r = p
        .run(&[
            "run",
            "--detach",
            &p.image,
            "--cpu=500m",
            "--memory=64M",
            "--cpu-shares=512",
            "--exec",
            "/bin/sleep",
            "--",
            "30",
        ])
        .success();
    let uuid = r.stdout.trim().to_string();
    let base = std::path::Path::new("/sys/fs/cgroup");
    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    };
    if base.join("memory/memory.limit_in_bytes").exists() {
        assert_eq!(
            read(base.join(format!(
                "memory/vessel/{uuid}/busybox/memory.limit_in_bytes"
            ))),
            (64u64 * 1000 * 1000 / 4096 * 4096).to_string()
        );
        assert_eq!(
            read(base.join(format!("cpu/vessel/{uuid}/busybox/cpu.cfs_quota_us"))),
            "50000"
        );
        assert_eq!(
            read(base.join(format!("cpu/vessel/{uuid}/busybox/cpu.shares"))),
            "512"
        );
    } else {
        assert_eq!(
            read(base.join(format!("vessel/{uuid}/busybox/cpu.max"))),
            "50000 100000"
        );
    }
    p.run(&["stop", "--force", &uuid]).success();
    assert!(cgroup_dirs(&uuid).is_empty());
}

#[test]
fn an_app_that_forks_many_children_and_exits_leaves_nothing_behind() {
    let p = PodEnv::new();
    let marker = format!("vesselorphan{}", std::process::id());
    let script =
        format!("for i in $(seq 30); do sh -c 'exec -a {marker} sleep 300' & done; exit 0");
    let r = p.sh(&[], &script);
    assert_eq!(r.code(), Some(0), "{r}");
    podkit::wait_for(
        "orphans to be killed with the pod",
        Duration::from_secs(10),
        || podkit::host_processes(&marker).is_empty(),
    );
}

#[test]
fn many_pods_at_once_with_list_and_gc_running_alongside() {
    let p = PodEnv::new();
    let mut children = Vec::new();
    for i in 0..20 {
        let mut c = p.v.command(&[
            "run",
            &p.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            &format!("sleep 0.5; exit {}", i % 3),
        ]);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push((i, c.spawn().unwrap()));
    }
    for _ in 0..5 {
        p.run(&["list"]).success();
        p.run(&["gc", "--grace-period=1h"]).success();
    }
    for (i, c) in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(i % 3),
            "pod {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pods = p.list();
    assert_eq!(pods.len(), 20);
    assert!(
        pods.iter()
            .all(|x| x["state"] == "exited" || x["state"] == "exited garbage"),
        "{pods:?}"
    );
    p.run(&["gc", "--grace-period=0s"]).success();
    assert!(p.list().is_empty());
}

/// The pod's first process is kept off the supervisor's CPU while it starts; the init
/// and its apps get every CPU back.
#[test]
fn apps_and_the_init_may_run_on_every_cpu_vessel_may() {
    let p = PodEnv::new();
    let ours = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap()
        .to_string();
    let r = p.sh(
        &[],
        "grep Cpus_allowed_list: /proc/self/status; grep Cpus_allowed_list: /proc/1/status",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, format!("{ours}\n{ours}\n"), "{r}");
}
