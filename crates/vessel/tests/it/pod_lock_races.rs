//! `list`, `status` and `gc` probe each pod's lock (taking it shared for a moment). A probe
//! must never make `prepare` crash, nor `run-prepared` or `rm` fail as if the pod were in use.

use crate::common;
use crate::podkit;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Run;
use podkit::PodEnv;

fn prepare(p: &PodEnv) -> String {
    let r = p
        .run(&["prepare", &p.image, "--exec", "/bin/true"])
        .success();
    r.stdout.trim().to_string()
}

fn pod_dir(p: &PodEnv, state: &str, uuid: &str) -> PathBuf {
    p.v.dir().join("pods").join(state).join(uuid)
}

/// Takes the flock of a pod directory as `vessel list` would (shared) or as its owner does
/// (exclusive), and holds it until dropped (the file is kept only to hold the lock).
struct Held(#[allow(dead_code)] File);

impl Held {
    fn take(dir: &std::path::Path, op: libc::c_int) -> Held {
        let f = File::open(dir).unwrap();
        // SAFETY: flock on a descriptor we own.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) }, 0);
        Held(f)
    }
}

/// A probe that lasts (its process descheduled between taking and dropping the lock).
fn slow_probe(dir: PathBuf, hold: Duration) -> std::thread::JoinHandle<()> {
    let held = Held::take(&dir, libc::LOCK_SH);
    std::thread::spawn(move || {
        std::thread::sleep(hold);
        drop(held);
    })
}

#[test]
fn a_probe_holding_the_lock_does_not_make_rm_or_run_prepared_fail() {
    let p = PodEnv::new();
    let a = prepare(&p);
    let probe = slow_probe(pod_dir(&p, "prepared", &a), Duration::from_millis(300));
    p.run(&["rm", &a]).success();
    probe.join().unwrap();
    assert!(!pod_dir(&p, "prepared", &a).exists());

    let b = prepare(&p);
    let probe = slow_probe(pod_dir(&p, "prepared", &b), Duration::from_millis(300));
    p.run(&["run-prepared", &b]).success();
    probe.join().unwrap();
    assert_eq!(p.status(&b)["state"], "exited");
}

#[test]
fn a_pod_its_owner_holds_is_still_in_use_at_once() {
    let p = PodEnv::new();
    let a = prepare(&p);
    let owner = Held::take(&pod_dir(&p, "prepared", &a), libc::LOCK_EX);
    // And with a probe alongside the owner's lock? Shared cannot be taken then: only the
    // owner holds it.
    let start = Instant::now();
    let r = p.run(&["rm", &a]).failure();
    assert!(r.stderr.contains("in use"), "{r}");
    let r = p.run(&["run-prepared", &a]).failure();
    assert!(r.stderr.contains("another process"), "{r}");
    assert!(
        // Both would take the 2 s a probe is waited for.
        start.elapsed() < Duration::from_secs(2),
        "refused without waiting: {:?}",
        start.elapsed()
    );
    drop(owner);
    p.run(&["rm", &a]).success();
}

fn check(r: &Run, what: &str) {
    assert!(
        r.status.success() && !r.stderr.contains("panicked"),
        "{what} failed:\n{r}"
    );
}

#[test]
fn list_status_and_gc_in_a_loop_never_upset_prepare_run_or_rm() {
    let p = Arc::new(PodEnv::new());
    let stable = prepare(&p);
    let stop = Arc::new(AtomicBool::new(false));
    let mut probes = Vec::new();
    let probing: [&[&str]; 4] = [
        &["list", "--format=json"],
        &["list", "--no-legend"],
        &["status", "--format=json", &stable],
        &["gc", "--grace-period=1h"],
    ];
    for args in probing {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (p, stop) = (p.clone(), stop.clone());
        probes.push(std::thread::spawn(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                check(&p.run(&refs), &args.join(" "));
                n += 1;
            }
            n
        }));
    }
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let uuid = prepare(&p);
                    if (i + w) % 2 == 0 {
                        check(&p.run(&["rm", &uuid]), "rm of a prepared pod");
                    } else {
                        check(&p.run(&["run-prepared", &uuid]), "run-prepared");
                    }
                }
            })
        })
        .collect();
    let mut failure = None;
    for w in workers {
        if let Err(e) = w.join() {
            failure.get_or_insert(e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in probes {
        match t.join() {
            Ok(n) => assert!(n > 0, "a probe loop never ran"),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        std::panic::resume_unwind(e);
    }
    // Nothing was left half-made where nobody looks.
    let embryo: Vec<_> = std::fs::read_dir(p.v.dir().join("pods/embryo"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(embryo.is_empty(), "{embryo:?}");
}

#[test]
fn gc_removes_directories_left_by_a_prepare_that_died_before_the_pod_existed() {
    let p = PodEnv::new();
    let _ = prepare(&p);
    let embryo = p.v.dir().join("pods/embryo");
    let old = embryo.join(".new-0b9c1f2e-7d1a-4a51-9c55-3b0c2e6f0a11");
    let young = embryo.join(".new-5e1b3a70-2c4d-4f7e-8a9b-0c1d2e3f4a5b");
    for d in [&old, &young] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("plan.json"), b"{}").unwrap();
    }
    let r = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(r.success());
    p.run(&["gc"]).success();
    assert!(!old.exists(), "an abandoned directory is left");
    assert!(young.exists(), "a directory being made was removed");
    // One someone holds is being made, however old.
    let held_dir = embryo.join(".new-9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    std::fs::create_dir(&held_dir).unwrap();
    let r = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&held_dir)
        .status()
        .unwrap();
    assert!(r.success());
    let held = Held::take(&held_dir, libc::LOCK_EX);
    p.run(&["gc"]).success();
    assert!(held_dir.exists(), "a held directory was removed");
    drop(held);
}
