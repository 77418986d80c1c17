//! `vessel enter` never hands the operator's descriptors to the pod (hardening finding 1):
//! a process it starts leads its own session, on a pty of the pod's devpts when the
//! operator sits at a terminal, on pipes otherwise.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::podkit::PodEnv;

/// A pod whose app replaces its /bin/sh (the command `enter` runs by default) with the
/// TIOCSTI helper, then sleeps; returns once the replacement is in place.
fn pod_with_hostile_shell(p: &PodEnv) -> String {
    let ex = common::example("tiocsti");
    let vol = format!(
        "--volume=ex,kind=host,source={},readOnly=true",
        ex.parent().unwrap().display()
    );
    let uuid = p
        .run(&[
            "run",
            "--detach",
            &vol,
            &p.image,
            "--mount=volume=ex,target=/ex",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "rm /bin/sh && cp /ex/tiocsti /bin/sh && touch /replaced && exec sleep 60",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.run(&["enter", &uuid, "/bin/ls", "/replaced"]).code() != Some(0) {
        assert!(Instant::now() < deadline, "the app never replaced /bin/sh");
        std::thread::sleep(Duration::from_millis(50));
    }
    uuid
}

/// A pty pair: (master, slave).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty with valid out pointers.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    // SAFETY: fresh descriptors from openpty.
    unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

/// Runs `script` in bash as the leader of a session whose controlling terminal is a new
/// pty, as an operator's login shell; returns all it wrote there.
fn in_operator_terminal(script: &str) -> String {
    let (mut master, slave) = pty();
    let fd = slave.as_raw_fd();
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-c", script]);
    // SAFETY: async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0
                || libc::dup2(fd, 0) < 0
                || libc::dup2(fd, 1) < 0
                || libc::dup2(fd, 2) < 0
                || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("bash");
    drop(slave);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the session's last holder of the terminal is gone (EIO).
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    child.wait().unwrap();
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_pod_cannot_type_into_the_operators_terminal() {
    let p = PodEnv::new();
    let uuid = pod_with_hostile_shell(&p);
    let script = format!(
        "{} --dir {} enter {uuid}; echo ENTER-RETURNED; \
         read -t 2 line; echo \"OPERATOR-READ:[$line]\"",
        common::VESSEL,
        p.v.dir().display()
    );
    let seen = in_operator_terminal(&script);
    // The hostile shell ran, on a terminal: the pod's own, where its push is harmless.
    assert!(
        seen.contains("tiocsti: stdin is a terminal: true"),
        "the entered process should get a terminal:\n{seen}"
    );
    assert!(seen.contains("ENTER-RETURNED"), "{seen}");
    assert!(
        seen.contains("OPERATOR-READ:[]"),
        "nothing may reach the operator's shell as input:\n{seen}"
    );
    assert!(!seen.contains("OPERATOR-READ:[echo"), "{seen}");
    p.run(&["stop", "--force", &uuid]).success();
}

#[test]
fn without_a_terminal_enter_passes_pipes_and_a_session_of_its_own() {
    let p = PodEnv::new();
    let uuid = p.detached(&[], &["/bin/sleep", "60"]);
    let r = p.run(&[
        "enter",
        &uuid,
        "/bin/sh",
        "-c",
        "for f in 0 1 2; do readlink /proc/self/fd/$f; done; \
         read -r _ _ _ _ _ sid _ < /proc/self/stat; \
         [ \"$sid\" = \"$$\" ] && echo SESSION-LEADER; \
         tty || true; echo to-stderr >&2",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.len() >= 3 && lines[..3].iter().all(|l| l.starts_with("pipe:[")),
        "stdin, stdout and stderr are pipes of enter's own:\n{r}"
    );
    assert!(r.stdout.contains("SESSION-LEADER"), "{r}");
    assert!(r.stdout.contains("not a tty"), "{r}");
    assert!(
        r.stderr.contains("to-stderr") && !r.stdout.contains("to-stderr"),
        "stderr stays apart:\n{r}"
    );
    // Input is passed on, and its end shows.
    let mut c =
        p.v.command(&["enter", &uuid, "/bin/sh", "-c", "tr a-z A-Z"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"piped input\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED INPUT\n");
    p.run(&["stop", "--force", &uuid]).success();
}

#[test]
fn a_process_left_behind_by_enter_holds_none_of_its_descriptors() {
    let p = PodEnv::new();
    let uuid = p.detached(&[], &["/bin/sleep", "60"]);
    // The background sleep would keep the caller's stdout open, and with it this test's
    // read of enter's output, had enter passed its own descriptors on.
    let mut c = p.v.command(&[
        "enter",
        &uuid,
        "/bin/sh",
        "-c",
        "(sleep 30 &); echo started",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("enter's output stayed open: a process it left holds enter's descriptors")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    p.run(&["stop", "--force", &uuid]).success();
}
