//! `start`, `run`, `kill`, `delete`, `pause`, `resume`: a container's life after create.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

use super::create::{create, Start};
use crate::cli::RunArgs;
use crate::error::{Result, RuntimeError};
use crate::layout::Root;
use crate::state::{Container, Record};
use crate::status::{check, Allowed, Op, Status};

fn exec_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Exec(e.to_string())
}

/// The container's cgroup (a handle), if it has one.
pub(super) fn cgroup_of(record: &Record) -> Option<exec::cgroups::Cgroup> {
    if record.cgroup_path.is_empty() {
        return None;
    }
    super::resources::container_cgroups(None)
        .ok()?
        .at(std::path::Path::new(&record.cgroup_path))
        .ok()
        .map(|c| c.existing())
}

/// Runs one kind of the runtime's own hooks; poststart and poststop failures only warn
/// (the runtime spec's rule), the others fail the command.
fn run_hooks(kind: &str, record: &Record, status: Status, fatal: bool) -> Result<()> {
    let hooks = record.config.hooks().clone().unwrap_or_default();
    let list = match kind {
        "poststart" => hooks.poststart().clone(),
        "poststop" => hooks.poststop().clone(),
        _ => None,
    };
    let state = record.hook_state(status).to_string();
    for h in list.iter().flatten() {
        if let Err(e) = exec::container::hooks::run(kind, h, &state) {
            if fatal {
                return Err(RuntimeError::Exec(e));
            }
            crate::log::warn(&e);
        }
    }
    Ok(())
}

pub fn start(root: &Root, id: &str) -> Result<i32> {
    let c = Container::open(root, id)?;
    check(Op::Start, c.status(), id)?;
    let fifo_path = c.dir.exec_fifo();
    let fifo = match rustix::fs::open(
        &fifo_path,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => f,
        // No reader: the process is gone.
        Err(rustix::io::Errno::NXIO) => {
            return Err(RuntimeError::NotAllowed {
                op: Op::Start,
                status: Status::Stopped,
                id: id.into(),
            })
        }
        Err(e) => return Err(RuntimeError::io("opening", &fifo_path)(e.into())),
    };
    rustix::io::write(&fifo, b"0")
        .map_err(|e| RuntimeError::io("writing", &fifo_path)(e.into()))?;
    // The read end closes at the process's exec (or its death): then it runs.
    let mut pfd = [libc::pollfd {
        fd: fifo.as_raw_fd(),
        events: 0,
        revents: 0,
    }];
    loop {
        // SAFETY: poll on one valid pollfd.
        if unsafe { libc::poll(pfd.as_mut_ptr(), 1, -1) } > 0 {
            break;
        }
    }
    drop(fifo);
    let _ = std::fs::remove_file(&fifo_path);
    run_hooks("poststart", &c.record, Status::Running, false)?;
    Ok(0)
}

pub fn run(root: &Root, a: &RunArgs) -> Result<i32> {
    if !a.detach {
        block_forwarded_signals();
    }
    let created = create(
        root,
        &a.create,
        Start::Run {
            foreground: !a.detach,
        },
    )?;
    run_hooks("poststart", &created.record, Status::Running, false)?;
    if a.detach {
        return Ok(0);
    }
    let status = match created.terminal {
        Some(ours) => super::terminal::relay(ours, created.pid)?,
        None => wait_forwarding(created.pid),
    };
    exec::trace::mark("container exited");
    if !a.keep {
        let c = Container::open(root, &a.create.id)?;
        remove(&c, false)?;
        exec::trace::mark("deleted");
    }
    Ok(status)
}

const FORWARDED: &[i32] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset filled by sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocked before the container exists, so none is lost; its process unblocks them.
pub(super) fn block_forwarded_signals() {
    let set = forwarded_set();
    // SAFETY: changing this single-threaded process's mask.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits for our child `pid`, passing on the signals we get; its status as a shell gives it.
pub(super) fn wait_forwarding(pid: i32) -> i32 {
    let set = forwarded_set();
    loop {
        let mut raw = 0;
        // SAFETY: waitpid on our child without blocking.
        let r = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFSIGNALED(raw) {
                128 + libc::WTERMSIG(raw)
            } else {
                libc::WEXITSTATUS(raw)
            };
        }
        if r < 0 {
            return 255;
        }
        let mut sig = 0;
        // SAFETY: sigwait on a valid set.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 && sig != libc::SIGCHLD {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

pub fn kill(root: &Root, id: &str, signal: &str, all: bool) -> Result<i32> {
    let sig = crate::signal::parse(signal)?;
    let c = Container::open(root, id)?;
    check(Op::Kill { all }, c.status(), id)?;
    if all {
        if let Some(cg) = cgroup_of(&c.record) {
            for pid in cg.processes().map_err(exec_err)? {
                // SAFETY: kill(2); ESRCH (gone meanwhile) is fine.
                unsafe { libc::kill(pid, sig) };
            }
            return Ok(0);
        }
    }
    signal_process(&c.record, sig)?;
    Ok(0)
}

/// Signals the container's process through a pidfd, after checking it is still that
/// process (a recycled pid must never be signalled).
fn signal_process(record: &Record, sig: i32) -> Result<()> {
    let pidfd = match rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(record.pid).ok_or(RuntimeError::NotExist)?,
        rustix::process::PidfdFlags::empty(),
    ) {
        Ok(fd) => fd,
        Err(_) => return Err(exec_err("container not running")),
    };
    if !record.process_alive() {
        return Err(exec_err("container not running"));
    }
    // SAFETY: pidfd_send_signal with a valid pidfd and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0u32,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Err(exec_err("process already finished"));
        }
        return Err(exec_err(format!("signalling the container's process: {e}")));
    }
    Ok(())
}

pub fn delete(root: &Root, id: &str, force: bool) -> Result<i32> {
    let c = match Container::open(root, id) {
        Ok(c) => c,
        // runc: deleting what does not exist fails, unless forced.
        Err(RuntimeError::NotExist) if force => return Ok(0),
        Err(e) => return Err(e),
    };
    let status = c.status();
    let kill_first = check(Op::Delete { force }, status, id)? == Allowed::KillFirst;
    remove(&c, kill_first)?;
    Ok(0)
}

/// Kills what runs (if asked), removes the cgroup, runs poststop hooks, removes the
/// directory.
fn remove(c: &Container, kill_first: bool) -> Result<()> {
    let cgroup = cgroup_of(&c.record);
    if kill_first || c.record.process_alive() {
        if c.record.paused {
            if let Some(cg) = &cgroup {
                let _ = cg.set_frozen(false);
            }
        }
        let _ = signal_process(&c.record, libc::SIGKILL);
        wait_gone(&c.record);
    }
    if let Some(cg) = &cgroup {
        cg.remove().map_err(exec_err)?;
        exec::trace::mark("cgroup removed");
    }
    if let Some(unit) = &c.record.systemd_unit {
        stop_unit(unit)?;
    }
    run_hooks("poststop", &c.record, Status::Stopped, false)?;
    std::fs::remove_dir_all(c.dir.dir()).map_err(RuntimeError::io("removing", c.dir.dir()))
}

/// Stops the container's systemd unit (its processes are gone: systemd removes its
/// cgroup); a unit gone already is fine, and so is a systemd that no longer answers (the
/// cgroup is removed above; the container must stay deletable).
fn stop_unit(unit: &str) -> Result<()> {
    match crate::systemd::Systemd::connect() {
        Ok(bus) => bus.stop_unit(unit)?,
        Err(e) => crate::log::warn(&format!("not stopping systemd unit {unit}: {e}")),
    }
    exec::trace::mark("systemd unit stopped");
    Ok(())
}

/// Waits (a few seconds at most) until the container's process is gone.
fn wait_gone(record: &Record) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while record.process_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn pause(root: &Root, id: &str, resume: bool) -> Result<i32> {
    let mut c = Container::open(root, id)?;
    check(if resume { Op::Resume } else { Op::Pause }, c.status(), id)?;
    let cg =
        cgroup_of(&c.record).ok_or_else(|| exec_err("the container has no cgroup to freeze"))?;
    cg.set_frozen(!resume).map_err(exec_err)?;
    c.record.paused = !resume;
    c.save()?;
    Ok(0)
}

pub fn ps(root: &Root, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let c = Container::open(root, id)?;
    check(Op::Ps, c.status(), id)?;
    let pids = match cgroup_of(&c.record) {
        Some(cg) => cg.processes().map_err(exec_err)?,
        None => vec![c.record.pid],
    };
    match format {
        "json" => println!("{}", serde_json::to_string(&pids).expect("json")),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(RuntimeError::io("running", "ps"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| exec_err("ps printed no PID column"))?;
            println!("{header}");
            for l in lines {
                if l.split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|p| pids.contains(&p))
                {
                    println!("{l}");
                }
            }
        }
        other => {
            return Err(RuntimeError::Usage(format!(
                "invalid format option {other:?}: table or json"
            )))
        }
    }
    Ok(0)
}
