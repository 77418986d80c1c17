//! `--interactive`: a terminal for a single-app pod, driven here through a real pty the
//! test holds, as a user's terminal would be.

use crate::podkit;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use podkit::PodEnv;

/// A pty pair: (master, slave), with the given window size.
fn pty(rows: u16, cols: u16) -> (std::fs::File, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty with valid out pointers and a winsize.
    assert_eq!(
        unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) },
        0
    );
    // SAFETY: fresh descriptors from openpty.
    unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

/// Reads from the master until `needle` shows (or panics after a while).
fn read_until(master: &mut std::fs::File, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    // SAFETY: non-blocking reads on our own fd.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "waited for {needle:?}; saw:\n{seen}"
        );
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn a_terminal_with_size_job_control_and_exit_status() {
    let p = PodEnv::new();
    let (mut master, slave) = pty(33, 101);
    let mut c = p.v.command(&[
        "run",
        "--rm",
        "--interactive",
        &p.image,
        "--exec",
        "/bin/sh",
    ]);
    c.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // As from a shell: vessel leads a session whose controlling terminal is the pty, so it
    // gets SIGWINCH when the size changes.
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let mut seen = String::new();
    master.write_all(b"stty size; tty\n").unwrap();
    read_until(&mut master, &mut seen, "33 101");
    read_until(&mut master, &mut seen, "/dev/pts/");
    // A new size reaches the app (SIGWINCH to vessel, then to the app's terminal).
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ on our master with a valid struct.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    std::thread::sleep(Duration::from_millis(200));
    master.write_all(b"stty size\n").unwrap();
    read_until(&mut master, &mut seen, "40 120");
    // ^C interrupts the app's foreground job, not the pod.
    master.write_all(b"sleep 30\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(&[3]).unwrap();
    master.write_all(b"echo after-interrupt\n").unwrap();
    read_until(&mut master, &mut seen, "after-interrupt\r\n");
    master.write_all(b"exit 5\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{seen}");
}

#[test]
fn piping_into_an_interactive_pod_ends_when_the_input_ends() {
    let p = PodEnv::new();
    let mut c = p.v.command(&[
        "run",
        "--rm",
        "--interactive",
        &p.image,
        "--exec",
        "/bin/cat",
    ]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nno newline at the end")
        .unwrap();
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("line one") && text.contains("no newline at the end"),
        "{text}"
    );
}

#[test]
fn interactive_needs_a_single_app() {
    let p = PodEnv::new();
    let r = p.run(&[
        "run",
        "--interactive",
        &p.image,
        "---",
        &p.image,
        "--name=two",
    ]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(
        r.stderr.contains("--interactive") && r.stderr.contains("one app"),
        "{r}"
    );
    assert!(p.list().is_empty());
}
