//! A test helper that plays an app written for systemd, inside a pod
//! (crates/vessel/tests/it/systemd_units.rs). Static, standard library and libc only.
//!
//! - `sd_app notify MESSAGE...`: sends each MESSAGE as one datagram to `$NOTIFY_SOCKET`,
//!   as `sd_notify(3)` does; exits 3 when the variable is unset.
//! - `sd_app serve`: takes the sockets of `$LISTEN_FDS` (only if `$LISTEN_PID` is its own
//!   pid, as `sd_listen_fds(3)` checks), accepts one connection on each stream socket in
//!   turn, and answers it with one line: `fds=N names=NAMES fd=FD` and the first line the
//!   client sent. Exits 3 when no socket was passed to it.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixDatagram;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("notify") => notify(&args[1..]),
        Some("serve") => serve(),
        _ => {
            eprintln!("usage: sd_app notify MESSAGE... | sd_app serve");
            std::process::exit(2)
        }
    }
}

fn notify(messages: &[String]) {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else {
        eprintln!("sd_app: no NOTIFY_SOCKET");
        std::process::exit(3)
    };
    let sock = UnixDatagram::unbound().expect("a datagram socket");
    for m in messages {
        if let Err(e) = sock.send_to(m.as_bytes(), &path) {
            eprintln!("sd_app: sending to {path}: {e}");
            std::process::exit(1)
        }
    }
}

fn serve() {
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    println!(
        "sd_app: LISTEN_PID={:?} (mine: {}) LISTEN_FDS={n} LISTEN_FDNAMES={names:?}",
        std::env::var("LISTEN_PID").ok(),
        std::process::id()
    );
    if !ours || n < 1 {
        std::process::exit(3)
    }
    for fd in 3..3 + n {
        // SAFETY: the service manager passed these descriptors to this process.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        let (mut conn, _) = listener.accept().expect("a connection");
        let mut line = String::new();
        let _ = BufReader::new(conn.try_clone().unwrap()).read_line(&mut line);
        let _ = writeln!(conn, "fds={n} names={names} fd={fd} {}", line.trim_end());
    }
}
