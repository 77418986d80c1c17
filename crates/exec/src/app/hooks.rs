//! An app with a post-stop handler: the process that became the app stays as a small
//! shim that runs the command as its child, passes on the signals the init forwards, runs
//! the handler once the command has ended, and ends the way the command ended.

use std::os::fd::RawFd;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::Command;
use crate::error::{Context, Error};

/// Runs `main` as a child, waits for it (passing on the signals the init forwards), then
/// runs `hook`, and ends the way the app ended. `started`: the error pipe, closed once
/// `main` runs. Returns only if `main` could not start.
pub fn run_then(main: &Command, hook: &Command, started: Option<RawFd>) -> Error {
    match shim(main, hook, started) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn shim(
    main: &Command,
    hook: &Command,
    started: Option<RawFd>,
) -> Result<std::convert::Infallible, Error> {
    let mut forwarded = SigSet::empty();
    for s in crate::pid1::init::FORWARDED
        .iter()
        .chain([&Signal::SIGCHLD])
    {
        forwarded.add(*s);
    }
    forwarded.thread_block().ctx("blocking signals")?;
    // Close-on-exec: the app gets only its stdio.
    let sigfd = SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC).ctx("signalfd")?;
    let (started_r, started_w) = super::report_channel()?;
    // SAFETY: single-threaded; the child execs or _exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        drop(started_r);
        let _ = SigSet::empty().thread_set_mask();
        let e = main.exec();
        let _ = rustix::io::write(&started_w, &e.encode());
        // SAFETY: leave the child without the parent's destructors.
        unsafe { libc::_exit(127) };
    }
    if child < 0 {
        return Err(Error::last_os("fork"));
    }
    drop(started_w);
    let mut msg = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(started_r), &mut msg);
    if let Some(e) = Error::decode(&msg) {
        return Err(e);
    }
    // The app runs: closing our end of the error pipe tells the init it started.
    if let Some(fd) = started {
        // SAFETY: closing our own copy of the pipe; nothing else uses it.
        unsafe { libc::close(fd) };
    }
    let status = loop {
        let Ok(Some(info)) = sigfd.read_signal() else {
            continue;
        };
        if info.ssi_signo as i32 == libc::SIGCHLD {
            let mut raw = 0;
            // SAFETY: waitpid on our child with a valid out pointer.
            if unsafe { libc::waitpid(child, &mut raw, libc::WNOHANG) } == child {
                break raw;
            }
        } else {
            // SAFETY: passing a signal on to our child.
            unsafe { libc::kill(child, info.ssi_signo as i32) };
        }
    };
    let _ = SigSet::empty().thread_set_mask();
    match hook.run() {
        Ok(0) => {}
        Ok(s) => eprintln!(
            "vessel: post-stop handler {} failed ({})",
            hook.shown(),
            describe_status(s)
        ),
        Err(e) => eprintln!("vessel: post-stop handler: {e}"),
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: end the way the app ended, so the init reports the same signal.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
        }
    }
    // SAFETY: exit with the app's code, without our destructors.
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}

/// A wait status in words.
pub fn describe_status(raw: i32) -> String {
    if libc::WIFSIGNALED(raw) {
        format!("killed by signal {}", libc::WTERMSIG(raw))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(raw))
    }
}
