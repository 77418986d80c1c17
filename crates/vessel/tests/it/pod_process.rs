//! What a process starts with when it becomes an app (`exec::app`), whether the pod's
//! init forked it, an event handler runs it, or `vessel enter` sends it in: default signal
//! dispositions and an empty signal mask, whatever the vessel binary had (the Rust runtime
//! ignores SIGPIPE, and an ignored signal stays ignored across exec).

use crate::podkit::PodEnv;

/// The SigIgn and SigBlk lines of the shell's /proc status, as `grep` (its child, which
/// inherits what it ignores) reports them.
const SIGNALS: &str = "grep -E '^Sig(Ign|Blk)' /proc/self/status";

fn assert_default_signals(out: &str) {
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
}

#[test]
fn an_app_starts_with_default_signals_so_a_pipeline_ends() {
    let p = PodEnv::new();
    // With SIGPIPE ignored, `yes` never learns that `head` is gone and spins for ever; the
    // timeout only keeps a failing test from hanging.
    let r = p.sh(
        &[],
        &format!("{SIGNALS}; timeout 20 sh -c 'yes | head -1'; echo rc=$?"),
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert_default_signals(&r.stdout);
    assert!(r.stdout.ends_with("y\nrc=0\n"), "{r}");
    // busybox's yes, ignoring SIGPIPE, dies of the write error instead, and says so.
    assert!(!r.stderr.contains("Broken pipe"), "{r}");
}

#[test]
fn enter_starts_with_default_signals() {
    let p = PodEnv::new();
    let uuid = p.detached(&[], &["/bin/sleep", "30"]);
    let r = p
        .run(&[
            "enter",
            &uuid,
            "/bin/sh",
            "-c",
            &format!("{SIGNALS}; yes | head -1"),
        ])
        .success();
    assert_default_signals(&r.stdout);
    assert!(r.stdout.ends_with("y\n"), "{r}");
    p.run(&["stop", "--force", &uuid]).success();
}
