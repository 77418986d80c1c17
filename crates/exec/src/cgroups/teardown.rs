//! Killing what is left in a cgroup and removing it.
//!
//! Safe to run twice, concurrently with the cgroup vanishing, and from `gc`
//! long after the supervisor died: every "already gone" is success.

use std::io;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::{fs, v1, v2, CgroupDir, CgroupError, Version};

/// How long processes get to disappear after SIGKILL.
const EXIT_WAIT: Duration = Duration::from_secs(3);
/// Kill rounds before giving up on a v1 cgroup that keeps forking.
const KILL_ROUNDS: usize = 5;

/// Live processes in any of `dirs` or below (a pid may repeat).
fn live_processes(dirs: &[CgroupDir]) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    for dir in dirs {
        for cgroup in fs::subtree_post_order(&dir.path)? {
            pids.extend(fs::procs(&cgroup)?);
        }
    }
    Ok(pids)
}

fn wait_until_empty(dirs: &[CgroupDir], timeout: Duration) -> Result<bool, CgroupError> {
    let deadline = Instant::now() + timeout;
    loop {
        if live_processes(dirs)?.is_empty() {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn sigkill_all(pids: &[i32]) {
    for &pid in pids {
        if pid > 0 {
            // ESRCH (already gone) is the expected race; nothing to report.
            // SAFETY: kill(2) with a plain pid and signal.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Kills every process in `dirs` (one logical cgroup across hierarchies)
/// and waits for them to leave.
///
/// v2's `cgroup.kill` does it atomically where present (also the unified tree
/// of a hybrid host, which Vessel's processes join too). Otherwise v1: freeze
/// so nothing can fork while pids are collected, SIGKILL them, thaw so they
/// can die; without a freezer, repeat collect-and-kill a few rounds.
pub(crate) fn kill_all(dirs: &[CgroupDir]) -> Result<(), CgroupError> {
    if live_processes(dirs)?.is_empty() {
        return Ok(());
    }
    for dir in dirs.iter().filter(|d| d.version == Version::V2) {
        let unified = std::slice::from_ref(dir);
        if !live_processes(unified)?.is_empty() && v2::kill(&dir.path)? {
            wait_until_empty(unified, EXIT_WAIT)?;
        }
    }
    // Processes moved into v1 hierarchies only are not in the unified tree.
    if live_processes(dirs)?.is_empty() {
        return Ok(());
    }
    let freezer = dirs
        .iter()
        .find(|d| d.has_controller("freezer") && d.path.exists());
    for _ in 0..KILL_ROUNDS {
        if let Some(freezer) = freezer {
            v1::set_freezer_state(&freezer.path, "FROZEN")?;
            let pids = live_processes(dirs);
            if let Ok(pids) = &pids {
                sigkill_all(pids);
            }
            v1::set_freezer_state(&freezer.path, "THAWED")?;
            pids?;
        } else {
            sigkill_all(&live_processes(dirs)?);
        }
        if wait_until_empty(dirs, EXIT_WAIT / KILL_ROUNDS as u32)? {
            return Ok(());
        }
    }
    let path = dirs.first().map(|d| d.path.clone()).unwrap_or_default();
    Err(CgroupError::KillTimeout { path })
}

/// Removes one cgroup directory, retrying briefly while the kernel still
/// counts exiting tasks in it.
fn rmdir(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Kills the processes of `dirs` and removes them with all their children,
/// children first.
pub(crate) fn remove(dirs: &[CgroupDir]) -> Result<(), CgroupError> {
    kill_all(dirs)?;
    for dir in dirs {
        for cgroup in fs::subtree_post_order(&dir.path)? {
            rmdir(&cgroup)?;
        }
    }
    Ok(())
}
