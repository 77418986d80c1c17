//! The command line's lifecycle promises: `run --rm` and `prepare --rm` leave no pod to
//! find, `status --wait` and `--wait-ready` as rkt reads them, and `stop` of many pods
//! within one timeout.

use std::time::Duration;

use crate::podkit::{wait_for, PodEnv};

/// When `run --rm` returns, no command finds the pod (it once showed `state=garbage`
/// until a background deletion finished).
#[test]
fn run_rm_returns_with_the_pod_gone() {
    let p = PodEnv::new();
    for i in 0..5 {
        let saved = p.v.path(&format!("uuid-{i}"));
        let r = p.run(&[
            "run",
            "--rm",
            &format!("--uuid-file-save={}", saved.display()),
            &p.image,
            "--exec=/bin/true",
        ]);
        assert_eq!(r.code(), Some(0), "{r}");
        let uuid = std::fs::read_to_string(&saved).unwrap().trim().to_string();
        p.run(&["status", &uuid])
            .failure()
            .stderr_names(&["not found"]);
        assert!(p.list().is_empty(), "{:?}", p.list());
    }
    // The background deletion finishes; gc has nothing left to do.
    wait_for("pods/garbage to empty", Duration::from_secs(20), || {
        std::fs::read_dir(p.v.dir().join("pods/garbage"))
            .unwrap()
            .next()
            .is_none()
    });
}

/// `prepare --rm` is remembered: `run-prepared` removes the pod once it exits.
#[test]
fn prepare_rm_removes_the_pod_after_run_prepared() {
    let p = PodEnv::new();
    let r = p
        .run(&["prepare", "--rm", &p.image, "--exec=/bin/true"])
        .success();
    let uuid = r.stdout.trim().to_string();
    assert_eq!(p.status(&uuid)["state"], "prepared");
    p.run(&["run-prepared", &uuid]).success();
    p.run(&["status", &uuid])
        .failure()
        .stderr_names(&["not found"]);
    assert!(p.list().is_empty(), "{:?}", p.list());
    // Without --rm the pod stays.
    let r = p.run(&["prepare", &p.image, "--exec=/bin/true"]).success();
    let kept = r.stdout.trim().to_string();
    p.run(&["run-prepared", &kept]).success();
    assert_eq!(p.status(&kept)["state"], "exited");
}

fn detached(p: &PodEnv, script: &str) -> String {
    p.run(&[
        "run", "--detach", &p.image, "--exec", "/bin/sh", "--", "-c", script,
    ])
    .success()
    .stdout
    .trim()
    .to_string()
}

/// rkt's documented `status --wait UUID` (the flag's value only with `=`), the boolean
/// and duration values, and `--wait-ready`.
#[test]
fn status_wait_forms_as_rkt() {
    let p = PodEnv::new();
    let uuid = detached(&p, "trap 'exit 0' TERM; while true; do sleep 0.05; done");
    // Ready: every app started.
    let r = p.run(&["status", "--wait-ready", &uuid]).success();
    assert!(r.stdout.contains("state=running"), "{r}");
    let r = p.run(&["status", "--wait-ready=5s", &uuid]).success();
    assert!(r.stdout.contains("state=running"), "{r}");
    // Not waiting at all.
    for w in ["--wait=false", "--wait=0", "--wait=0s"] {
        let r = p.run(&["status", w, &uuid]).success();
        assert!(r.stdout.contains("state=running"), "{w}: {r}");
    }
    // A bounded wait that runs out says so.
    p.run(&["status", "--wait=200ms", &uuid])
        .failure()
        .stderr_names(&[&uuid, "running", "--wait"]);
    // `--wait UUID` waits for ever: here until the pod is stopped.
    let mut waiting =
        p.v.command(&["status", "--wait", &uuid])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "--wait returned while the pod runs"
    );
    p.run(&["stop", &uuid]).success();
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("state=exited"),
        "{out:?}"
    );
    for w in ["--wait=true", "--wait=-1s", "--wait=1m30s"] {
        let r = p.run(&["status", w, &uuid]).success();
        assert!(r.stdout.contains("state=exited"), "{w}: {r}");
    }
    p.run(&["status", "--wait=soon", &uuid])
        .stderr_names(&["soon"]);
}

/// `stop A B C D` signals every pod, then waits for all within one timeout. The apps
/// here stop only once all four have been asked to: stopped one after another, the
/// first would be killed when its timeout ran out.
#[test]
fn stop_of_many_pods_signals_all_then_waits_once() {
    let p = PodEnv::new();
    let shared = p.v.path("shared");
    std::fs::create_dir(&shared).unwrap();
    let vol = format!("--volume=shared,kind=host,source={}", shared.display());
    let mut uuids = Vec::new();
    for n in 0..4 {
        let script = format!(
            "trap 'touch /shared/term-{n}; while [ $(ls /shared | grep -c term-) -lt 4 ]; do sleep 0.05; done; exit 0' TERM; \
             touch /shared/up-{n}; while true; do sleep 0.05; done"
        );
        let r = p
            .run(&[
                "run",
                "--detach",
                &vol,
                &p.image,
                "--mount=volume=shared,target=/shared",
                "--exec",
                "/bin/sh",
                "--",
                "-c",
                &script,
            ])
            .success();
        uuids.push(r.stdout.trim().to_string());
    }
    wait_for("every pod up", Duration::from_secs(20), || {
        (0..4).all(|n| shared.join(format!("up-{n}")).exists())
    });
    let mut args = vec!["stop", "--timeout=8s"];
    args.extend(uuids.iter().map(String::as_str));
    let r = p.run(&args).success();
    for u in &uuids {
        assert!(r.stdout.contains(u.as_str()), "{r}");
        assert_eq!(
            p.app_exit(u, "busybox"),
            Some(0),
            "pod {u} was killed instead of stopping: {}",
            p.status(u)
        );
    }
}
