//! Operations on existing pods: stop, remove, garbage-collect.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::dir::{Dir, PodDir, Pods, State};
use crate::error::{PodError, Result};
use crate::state::{same_process, PodState};

/// How long an unlocked embryo is left alone (it is locked right after it is made).
const EMBRYO_GRACE: Duration = Duration::from_secs(60);

/// Removes a pod that no process holds: its directory and any cgroups left behind (a
/// supervisor killed with SIGKILL leaves them). Mounts need no cleanup: they lived in the
/// pod's own mount namespace, which died with it.
pub fn remove(mut pod: PodDir) -> Result<()> {
    if !pod.try_lock()? {
        return Err(PodError::WrongState {
            uuid: pod.uuid.clone(),
            state: pod.state().name().into(),
            reason: "it is in use; stop it first".into(),
        });
    }
    if pod.dir != Dir::Garbage {
        pod.move_to(Dir::Garbage)?;
    }
    let path = pod.path();
    teardown_network(&pod.uuid, &path, pod.lock_fd());
    remove_cgroups(&pod.uuid);
    release_userns(&pod);
    // By the descriptor we locked, never by a path re-resolved (hardening finding 6).
    pod.delete_locked(&path)
}

/// DEL of whatever networks the pod still holds (its supervisor died, or a start failed
/// half-way), with the pod locked by us (`lock`, kept open in the plugins' processes);
/// `dir` is where the pod's directory is now (a pod hidden for deletion is not where
/// [`PodDir::path`] says). What fails is said and the removal goes on.
fn teardown_network(uuid: &str, dir: &Path, lock: Option<std::os::fd::RawFd>) {
    let inv = crate::network::teardown_invoker(lock);
    for p in crate::network::teardown(&crate::layout::PodPaths::new(dir).net(), &inv) {
        eprintln!("vessel: warning: pod {uuid}: {p}");
    }
}

/// `run --rm` of a pod that failed to start: it is hidden from every listing at once, and a child
/// process deletes its files while `run` returns (see [`discard_after_exit`]).
pub fn discard_in_background(mut pod: PodDir) -> Result<()> {
    if !pod.try_lock()? {
        return Err(PodError::WrongState {
            uuid: pod.uuid.clone(),
            state: pod.state().name().into(),
            reason: "it is in use".into(),
        });
    }
    let path = pod.hide_for_deletion()?;
    release_userns(&pod);
    in_background(|| {
        teardown_network(&pod.uuid, &path, pod.lock_fd());
        pod.delete_locked(&path)
    })
}

/// `run --rm` of a pod whose init said it is done: the pod (held locked by the caller) is
/// hidden from every listing at once, and a child process waits for the init to be gone, then
/// removes the pod's cgroups, gives back its user namespace range and deletes its files,
/// while `run` returns; it runs the networks' DEL first. The init's exit (its namespaces
/// torn down) and deleting a tree cost milliseconds nobody needs to wait for. The child holds the pod's lock (inherited)
/// until it is done; should it die, `gc` finishes the job.
pub fn discard_after_exit(mut pod: PodDir, init: std::os::fd::OwnedFd) -> Result<()> {
    // Out of sight at once: when `run --rm` returns, no command finds the pod.
    let path = pod.hide_for_deletion()?;
    in_background(|| {
        // DEL needs only the pinned namespace, not the pod's processes: first.
        teardown_network(&pod.uuid, &path, pod.lock_fd());
        // The init's pidfd turns readable when it has exited, its pod's processes with it.
        let mut fds = [rustix::event::PollFd::new(
            &init,
            rustix::event::PollFlags::IN,
        )];
        let _ = rustix::event::poll(
            &mut fds,
            Some(&rustix::time::Timespec {
                tv_sec: 30,
                tv_nsec: 0,
            }),
        );
        remove_cgroups(&pod.uuid);
        release_userns(&pod);
        pod.delete_locked(&path)
    })
}

/// Runs `work` (which ends deleting the pod's files) in a child process off the caller's
/// pipes (whoever reads our output must not wait for it); in this process if there can be
/// no child.
fn in_background(work: impl FnOnce() -> Result<()>) -> Result<()> {
    // SAFETY: called single-threaded; the child only removes files and exits.
    match unsafe { libc::fork() } {
        0 => {
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                use std::os::fd::AsRawFd;
                for fd in 0..3 {
                    // SAFETY: dup2 onto the standard descriptors.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            let _ = work();
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        -1 => work(),
        _ => Ok(()),
    }
}

/// Gives back the user namespace range of the pod we hold locked, if it has one (its state
/// read through the lock's descriptor).
fn release_userns(pod: &PodDir) {
    let Some(dir) = pod.locked_path() else {
        return;
    };
    if let Ok(PodState {
        userns_slot: Some(slot),
        ..
    }) = PodState::load(&dir)
    {
        crate::userns::release(pod.vessel_dir(), slot, &pod.uuid);
    }
}

/// Pods' cgroups live under the one default parent (`exec::cgroups::DEFAULT_PARENT`): a
/// parent of the caller's choosing would have to be recorded with each pod, or `rm` and
/// `gc` would leave its cgroups behind.
pub fn remove_cgroups(uuid: &str) {
    if let Ok(cg) = exec::cgroups::Cgroups::detect() {
        let _ = cg.remove_pod(uuid);
    }
}

/// `vessel enter`: runs `command` inside app `app` of a running pod (the pod's only app
/// when None), with exactly that app's isolation (`exec::crossing::enter`); its wait status.
pub fn enter(pod: &PodDir, app: Option<&str>, command: Vec<String>) -> Result<i32> {
    if pod.state() != State::Running {
        return Err(PodError::WrongState {
            uuid: pod.uuid.clone(),
            state: pod.state().name().into(),
            reason: "only a running pod can be entered".into(),
        });
    }
    let paths = pod.paths();
    let state = PodState::load(paths.dir())?;
    let names = || {
        state
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let app = match app {
        Some(name) => state.apps.iter().find(|a| a.name == name).ok_or_else(|| {
            PodError::Invalid(format!(
                "pod {} has no app named {name:?} (apps: {})",
                pod.uuid,
                names()
            ))
        })?,
        None if state.apps.len() == 1 => &state.apps[0],
        None => {
            return Err(PodError::Invalid(format!(
                "pod {} has several apps ({}): choose one with --app",
                pod.uuid,
                names()
            )))
        }
    };
    let not_running = |what: &str| PodError::WrongState {
        uuid: pod.uuid.clone(),
        state: pod.state().name().into(),
        reason: format!("{what} is not running"),
    };
    if state.stage1 == exec::plan::Flavour::Kvm {
        // The command runs in the virtual machine: the guest's init enters the app (the
        // app's pid is the guest's, which the host does not keep).
        let index = state
            .apps
            .iter()
            .position(|a| a.name == app.name)
            .expect("found above");
        let code =
            exec::kvm::enter::client(&paths.kvm_enter_socket(), index, command).map_err(|e| {
                PodError::Enter {
                    app: app.name.clone(),
                    uuid: pod.uuid.clone(),
                    source: e,
                }
            })?;
        // As a wait status, which the caller turns back into the code.
        return Ok((code & 0xff) << 8);
    }
    let pid = app
        .pid
        .ok_or_else(|| not_running(&format!("app {}", app.name)))?;
    let init_pid = state.pid.ok_or_else(|| not_running("its init"))?;
    let plan_path = paths.plan();
    let plan: exec::plan::PodPlan = serde_json::from_slice(
        &std::fs::read(&plan_path).map_err(|e| PodError::io(&plan_path, e))?,
    )
    .map_err(|e| PodError::Corrupt {
        path: plan_path.clone(),
        reason: e.to_string(),
    })?;
    let app_plan = plan
        .apps
        .iter()
        .find(|a| a.name == app.name)
        .ok_or_else(|| PodError::Corrupt {
            path: plan_path.clone(),
            reason: format!("app {} is missing", app.name),
        })?;
    let seccomp = match app_plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(profile) => Some(exec::supervisor::launch::compiled_filter(
            &app.name,
            profile,
            Some(&crate::layout::seccomp_cache(pod.vessel_dir())),
        )?),
        None => None,
    };
    exec::crossing::enter::enter(exec::crossing::enter::EnterRequest {
        app_pid: pid,
        init_pid,
        init_start: state.pid_start,
        spec: &app_plan.spec,
        seccomp,
        command,
    })
    .map_err(|source| PodError::Enter {
        app: app.name.clone(),
        uuid: pod.uuid.clone(),
        source,
    })
}

/// Signals a running pod's init, after checking the recorded pid still is that init.
pub fn signal(pod: &PodDir, sig: i32) -> Result<()> {
    let state = PodState::load(&pod.path())?;
    let pid = state.pid.ok_or_else(|| PodError::WrongState {
        uuid: pod.uuid.clone(),
        state: pod.state().name().into(),
        reason: "it has no init process".into(),
    })?;
    if !same_process(pid, state.pid_start) {
        return Ok(()); // already gone
    }
    // SAFETY: kill(2) on a pid we verified.
    unsafe { libc::kill(pid, sig) };
    // A fly pod's init is no pid 1: its death takes no app along. What SIGKILL means for
    // a pod, every process of it killed, is done through its cgroups.
    if sig == libc::SIGKILL && state.stage1 == exec::plan::Flavour::Fly {
        if let Ok(cg) = exec::cgroups::Cgroups::detect().and_then(|c| c.pod(&pod.uuid)) {
            let _ = cg.kill();
        }
    }
    Ok(())
}

/// Waits until no process holds the pod's lock; false on timeout.
pub fn wait_unlocked(pod: &mut PodDir, timeout: Option<Duration>) -> bool {
    let start = Instant::now();
    loop {
        let _ = pod.refresh();
        if !pod.is_locked() {
            return true;
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What `stop` did to one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was running and has stopped.
    Now,
    /// It had exited already (rkt's "already stopped", not an error).
    Already,
}

/// `stop`: SIGTERM (SIGKILL with force), then SIGKILL once `timeout` has passed.
pub fn stop(pod: PodDir, force: bool, timeout: Duration) -> Result<Stopped> {
    stop_all(vec![pod], force, timeout)
        .pop()
        .expect("one pod in, one result out")
        .1
}

/// How long a pod may take to go once it was sent SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// `stop` of several pods: every one is signalled first, then all are waited for within
/// one `timeout` (not one each), then those left get SIGKILL together. Results in the
/// order given, by UUID.
pub fn stop_all(
    pods: Vec<PodDir>,
    force: bool,
    timeout: Duration,
) -> Vec<(String, Result<Stopped>)> {
    let first = if force { libc::SIGKILL } else { libc::SIGTERM };
    let mut results: Vec<(String, Option<Result<Stopped>>)> = Vec::new();
    let mut waiting: Vec<(usize, PodDir)> = Vec::new();
    for pod in pods {
        let i = results.len();
        results.push((pod.uuid.clone(), None));
        let outcome = match pod.state() {
            State::Running => match signal(&pod, first) {
                Ok(()) => {
                    waiting.push((i, pod));
                    continue;
                }
                Err(e) => Err(e),
            },
            State::Exited | State::ExitedGarbage | State::Garbage => Ok(Stopped::Already),
            other => Err(PodError::WrongState {
                uuid: pod.uuid.clone(),
                state: other.name().into(),
                reason: "only a running pod can be stopped".into(),
            }),
        };
        results[i].1 = Some(outcome);
    }
    let grace = if force { KILL_WAIT } else { timeout };
    waiting = wait_all_unlocked(waiting, grace, &mut results);
    if !waiting.is_empty() {
        for (i, pod) in &waiting {
            if let Err(e) = signal(pod, libc::SIGKILL) {
                results[*i].1 = Some(Err(e));
            }
        }
        waiting.retain(|(i, _)| results[*i].1.is_none());
        for (i, pod) in wait_all_unlocked(waiting, KILL_WAIT, &mut results) {
            results[i].1 = Some(Err(PodError::Invalid(format!(
                "pod {} did not stop",
                pod.uuid
            ))));
        }
    }
    results
        .into_iter()
        .map(|(u, r)| (u, r.expect("every pod has a result")))
        .collect()
}

/// Polls the pods until each is unlocked (recording `Stopped::Now`) or `limit` passes;
/// returns those still running.
fn wait_all_unlocked(
    mut waiting: Vec<(usize, PodDir)>,
    limit: Duration,
    results: &mut [(String, Option<Result<Stopped>>)],
) -> Vec<(usize, PodDir)> {
    let start = Instant::now();
    loop {
        waiting.retain_mut(|(i, pod)| {
            let _ = pod.refresh();
            if pod.is_locked() {
                return true;
            }
            results[*i].1 = Some(Ok(Stopped::Now));
            false
        });
        if waiting.is_empty() || start.elapsed() >= limit {
            return waiting;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn age(path: &Path) -> Duration {
    let m = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::now());
    SystemTime::now().duration_since(m).unwrap_or_default()
}

#[derive(Debug, Default, serde::Serialize)]
pub struct GcReport {
    pub marked: Vec<String>,
    pub removed: Vec<String>,
    pub failed: Vec<String>,
}

pub struct GcOptions {
    pub grace: Duration,
    pub expire_prepared: Duration,
    pub mark_only: bool,
}

/// rkt's gc: exited pods are first marked (moved to exited-garbage), then removed once the
/// grace period has passed; aborted and expired prepared pods are removed. A pod someone
/// holds locked is never touched.
pub fn gc(pods: &Pods, opts: &GcOptions) -> Result<GcReport> {
    let mut report = GcReport::default();
    for mut pod in pods.all()? {
        let remove_now = match (pod.dir, pod.is_locked()) {
            (_, true) => continue,
            (Dir::Run, false) => {
                match pod.try_lock() {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        report.failed.push(format!("{}: {e}", pod.uuid));
                        continue;
                    }
                }
                // One pod that cannot be marked (a full or failing disk) is named, and
                // the others are still collected.
                if let Err(e) = pod.move_to(Dir::ExitedGarbage) {
                    report.failed.push(format!("{}: {e}", pod.uuid));
                    continue;
                }
                let _ = pod.touch_locked(crate::layout::GC_MARK);
                pod.unlock();
                report.marked.push(pod.uuid.clone());
                opts.grace.is_zero()
            }
            (Dir::ExitedGarbage, false) => {
                let mark = pod.paths().gc_mark();
                let since = if mark.exists() {
                    age(&mark)
                } else {
                    age(&pod.path())
                };
                since >= opts.grace
            }
            (Dir::Prepared, false) => age(&pod.path()) >= opts.expire_prepared,
            // An embryo nobody holds was left by a vessel that died while preparing it.
            (Dir::Embryo, false) => age(&pod.path()) >= EMBRYO_GRACE,
            (Dir::Prepare | Dir::Garbage, false) => true,
        };
        if remove_now && !opts.mark_only {
            let uuid = pod.uuid.clone();
            match remove(pod) {
                Ok(()) => report.removed.push(uuid),
                Err(PodError::WrongState { .. }) => {}
                Err(e) => report.failed.push(format!("{uuid}: {e}")),
            }
        }
    }
    // Directories whose making was cut short, before they became pods; pods whose
    // deletion in the background was.
    if !opts.mark_only {
        for (uuid, path, lock) in pods.abandoned_deletions() {
            teardown_network(&uuid, &path, None);
            remove_cgroups(&uuid);
            // Read through the descriptor locked, as the deletion is done.
            use std::os::fd::AsRawFd;
            let locked = std::path::PathBuf::from(format!("/proc/self/fd/{}", lock.as_raw_fd()));
            if let Ok(PodState {
                userns_slot: Some(slot),
                ..
            }) = PodState::load(&locked)
            {
                crate::userns::release(pods.vessel_dir(), slot, &uuid);
            }
            if let Err(e) = crate::dir::delete_tree(&lock, &path) {
                report.failed.push(e.to_string());
            }
        }
        for (path, lock) in pods.abandoned_new(EMBRYO_GRACE) {
            if let Err(e) = crate::dir::delete_tree(&lock, &path) {
                report.failed.push(e.to_string());
            }
        }
        // Symlinks (or files) where pods should be: never followed, named.
        for path in pods.strays() {
            report.failed.push(format!(
                "{}: not a directory (a symlink in a pod's place?): left alone",
                path.display()
            ));
        }
        // Host-wide user namespace ranges whose pods are gone (any data dir's: a range
        // nobody can give back is lost to every store). A registry this gc cannot open
        // is the allocation's business, not gc's failure.
        let _ = crate::userns::Registry::host().reclaim_stale();
    }
    Ok(report)
}
