//! The supervisor believes only what it can check (hardening finding 7): an app holding
//! CAP_SYS_PTRACE reaches every descriptor of the pod's init and writes fake "app exited
//! 0, pod done" reports into each (the `forge_status` example); `status` must still show
//! the app running, and `run` must still forward SIGTERM to it.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::common;
use crate::podkit::{wait_for, PodEnv};

#[test]
fn forged_reports_change_neither_status_nor_signal_forwarding() {
    let p = PodEnv::new();
    let ex = common::example("forge_status");
    let uuid_file = p.v.path("forged-uuid");
    let args = [
        "run".to_string(),
        format!("--uuid-file-save={}", uuid_file.display()),
        format!(
            "--volume=ex,kind=host,source={},readOnly=true",
            ex.parent().unwrap().display()
        ),
        p.image.clone(),
        "--mount=volume=ex,target=/ex".into(),
        "--caps-retain=CAP_SYS_PTRACE".into(),
        "--exec".into(),
        "/bin/sh".into(),
        "--".into(),
        "-c".into(),
        "/ex/forge_status > /forge.out 2>&1; touch /forged; exec sleep 600".into(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = p.v.command(&refs);
    run.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = run.spawn().expect("spawning vessel run");
    let uuid = p.wait_running(&uuid_file);
    wait_for("the forger to finish", Duration::from_secs(30), || {
        p.run(&["enter", &uuid, "/bin/ls", "/forged"]).code() == Some(0)
    });
    let forged = p.run(&["enter", &uuid, "/bin/cat", "/forge.out"]).success();
    // The attack ran: it reached the init's descriptors and got something written.
    assert!(forged.stdout.contains("forge: finished"), "{forged}");
    assert!(
        forged.stdout.contains("lines true") || forged.stdout.contains("messages true"),
        "the forger reached no descriptor it could write to: {forged}"
    );
    // Give the supervisor time to read what was written: a status that reads the forged
    // report shows up within this time, before the fix.
    std::thread::sleep(Duration::from_millis(500));
    let s = p.status(&uuid);
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(
        p.app_exit(&uuid, "busybox"),
        None,
        "a forged exit was believed: {s}"
    );

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    wait_for("run to stop the pod", Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let s = p.status(&uuid);
    assert_eq!(s["state"], "exited", "{s}\n{stderr}");
    // sleep died of the forwarded SIGTERM: not the forged 0.
    let code = p.app_exit(&uuid, "busybox");
    assert!(code.is_some() && code != Some(0), "{s}\n{stderr}");
}
