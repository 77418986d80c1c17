//! A test helper that runs as an app inside a pod (crates/vessel/tests/pod_enter.rs) and
//! plays the attacker of runc's CVE-2019-5736: it watches the pod's /proc for a process
//! whose command line holds MARKER, keeps that process's /proc/PID/exe open, and once
//! nothing runs the file any more tries to reopen it for writing. It prints `grabbed`,
//! then `writable` or `refused: ERROR`. It never writes a byte.
//!
//! Usage: exe_grabber MARKER

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn grab(marker: &str) -> Option<File> {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{name}/cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(marker) {
            continue;
        }
        // Refused while the process is not dumpable; keep looking until it is.
        if let Ok(f) = File::open(format!("/proc/{name}/exe")) {
            return Some(f);
        }
    }
    None
}

fn main() {
    let marker = std::env::args().nth(1).expect("usage: exe_grabber MARKER");
    println!("watching");
    // Long: the test copies vessel and starts `enter` after this, slowly on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(120);
    let held = loop {
        if let Some(f) = grab(&marker) {
            break f;
        }
        if Instant::now() > deadline {
            println!("nothing to grab");
            return;
        }
        std::hint::spin_loop();
    };
    println!("grabbed");
    // The file stays busy (ETXTBSY) while any process runs it; wait that out.
    let reopen = format!("/proc/self/fd/{}", held.as_raw_fd());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match OpenOptions::new().write(true).open(&reopen) {
            Ok(_) => {
                println!("writable");
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                println!("refused: {e}");
                return;
            }
        }
    }
}
