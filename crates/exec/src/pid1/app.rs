//! One app process, forked by the pod init: it enters its own mount namespace and root,
//! becomes its user with its capabilities, and execs the app. Any failure is written to
//! the error pipe (close-on-exec, so a successful exec closes it empty) and ends the child.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::caps::{CapSets, Credentials};
use crate::plan::AppPlan;
use crate::seccomp::SeccompProgram;

struct Fail(String);

impl<E: std::fmt::Display> From<(&str, E)> for Fail {
    fn from((step, e): (&str, E)) -> Fail {
        Fail(format!("{step}: {e}"))
    }
}

pub fn run(app: &AppPlan, err: OwnedFd, go: OwnedFd) -> ! {
    let Fail(msg) = setup_and_exec(app, &err, go).unwrap_err();
    let mut f = std::fs::File::from(err);
    let _ = f.write_all(msg.as_bytes());
    // SAFETY: leave without the parent's destructors.
    unsafe { libc::_exit(127) }
}

fn setup_and_exec(
    app: &AppPlan,
    err: &OwnedFd,
    go: OwnedFd,
) -> Result<std::convert::Infallible, Fail> {
    let _ = SigSet::empty().thread_set_mask();
    // Our v1 cgroups, before anything else (single-threaded: see cgroups::join).
    crate::cgroups::join_with_fds(&app.cgroup_fds)
        .map_err(|e| Fail(format!("joining the app's cgroup: {e}")))?;
    // Wait until the init has placed us in v2 too: it writes a byte per app then. A close
    // without one means it failed, and an app outside its cgroup must not run.
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&go, &mut byte) {
            Ok(1) => break,
            Err(rustix::io::Errno::INTR) => continue,
            _ => {
                return Err(Fail(
                    "the pod's init did not place the app in its cgroup".into(),
                ))
            }
        }
    }
    drop(go);
    // Our cgroup is the root of what we see.
    unshare(rustix::thread::UnshareFlags::NEWCGROUP)
        .map_err(|e| Fail::from(("unshare(CLONE_NEWCGROUP)", e)))?;
    let _ = rustix::process::setsid();
    unshare(rustix::thread::UnshareFlags::NEWNS)
        .map_err(|e| Fail::from(("unshare(CLONE_NEWNS)", e)))?;
    let root = format!("/apps/{}/rootfs", app.name);
    rustix::process::chdir(root.as_str())
        .map_err(|e| Fail::from(("entering the app's root", e)))?;
    rustix::process::pivot_root(".", ".").map_err(|e| Fail::from(("pivot_root", e)))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| Fail::from(("detaching the stage1 root", e)))?;
    rustix::process::chdir("/").map_err(|e| Fail::from(("chdir /", e)))?;

    for (i, fd) in app.stdio.iter().enumerate() {
        // SAFETY: dup2 of inherited descriptors onto 0, 1, 2.
        if unsafe { libc::dup2(*fd, i as i32) } < 0 {
            return Err(Fail::from((
                "setting up stdio",
                std::io::Error::last_os_error(),
            )));
        }
    }
    if app.terminal {
        // The pty is our controlling terminal (we lead a new session).
        rustix::process::ioctl_tiocsctty(std::io::stdin())
            .map_err(|e| Fail::from(("taking the terminal", e)))?;
    }
    let process = app
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Fail("the spec has no process".into()))?;

    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let creds = match &app.user {
        Some(user) => {
            let r = crate::users::resolve(user, app.group.as_deref())
                .map_err(|e| Fail::from(("user", e)))?;
            if !env.iter().any(|e| e.starts_with("HOME=")) {
                env.push(format!(
                    "HOME={}",
                    r.home.clone().unwrap_or_else(|| "/".into())
                ));
            }
            let mut groups: Vec<u32> = process.user().additional_gids().clone().unwrap_or_default();
            if let Ok(text) = std::fs::read_to_string("/etc/group") {
                groups.extend(crate::users::supplementary(&text, user));
            }
            Credentials {
                uid: r.uid,
                gid: r.gid,
                supplementary_groups: groups,
            }
        }
        None => Credentials {
            uid: process.user().uid(),
            gid: process.user().gid(),
            supplementary_groups: process.user().additional_gids().clone().unwrap_or_default(),
        },
    };
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push("HOME=/".into());
    }

    for rl in process.rlimits().iter().flatten() {
        let res = rlimit_resource(&format!("{:?}", rl.typ()));
        if let Some(res) = res {
            let lim = libc::rlimit {
                rlim_cur: rl.soft(),
                rlim_max: rl.hard(),
            };
            // SAFETY: setrlimit with a valid struct.
            if unsafe { libc::setrlimit(res, &lim) } < 0 {
                return Err(Fail::from(("setrlimit", std::io::Error::last_os_error())));
            }
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| Fail::from(("oom_score_adj", e)))?;
    }

    let caps = match process.capabilities() {
        Some(c) => {
            let mut sets = CapSets::from_oci(c).map_err(|e| Fail::from(("capabilities", e)))?;
            sets.restrict_to(crate::caps::available_capabilities());
            sets
        }
        None => CapSets::default(),
    };
    let seccomp = match &app.seccomp_bpf {
        Some(bytes) => {
            Some(SeccompProgram::from_bytes(bytes).map_err(|e| Fail::from(("seccomp", e)))?)
        }
        None => None,
    };
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load before dropping it.
    if let (Some(p), false) = (&seccomp, no_new_privs) {
        p.load()
            .map_err(|e| Fail::from(("loading the seccomp filter", e)))?;
    }
    caps.apply(Some(&creds))
        .map_err(|e| Fail::from(("capabilities", e)))?;
    if no_new_privs {
        crate::caps::set_no_new_privs().map_err(|e| Fail::from(("no_new_privs", e)))?;
    }
    let cwd = process.cwd().to_string_lossy().into_owned();
    rustix::process::chdir(cwd.as_str())
        .map_err(|e| Fail::from((format!("working directory {cwd}").as_str(), e)))?;

    let args: Vec<String> = process.args().clone().unwrap_or_default();
    let main = Command::new(&args, &env).ok_or_else(|| Fail("the app has no command".into()))?;
    let pre_start = app.pre_start.as_ref().and_then(|a| Command::new(a, &env));
    let post_stop = app.post_stop.as_ref().and_then(|a| Command::new(a, &env));

    // No descriptor of the host or the init survives into the app but stdio (and the
    // error pipe, closed by the exec itself).
    let errfd = err.as_raw_fd() as u32;
    // SAFETY: closing descriptor ranges of this process.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, errfd - 1, 0u32);
        libc::syscall(libc::SYS_close_range, errfd + 1, u32::MAX, 0u32);
    }
    if let (Some(p), true) = (&seccomp, no_new_privs) {
        p.load()
            .map_err(|e| Fail::from(("loading the seccomp filter", e)))?;
    }
    // appc event handlers run as the app runs: its root, user, capabilities, filter and
    // environment. A failing pre-start handler keeps the app from starting.
    if let Some(hook) = &pre_start {
        let status = hook
            .run()
            .map_err(|e| Fail(format!("pre-start handler: {e}")))?;
        if status != 0 {
            return Err(Fail(format!(
                "pre-start handler {} failed ({})",
                hook.shown(),
                describe_status(status)
            )));
        }
    }
    match &post_stop {
        None => Err(Fail(main.exec())),
        Some(hook) => run_then(main, hook, err),
    }
}

/// Runs the app as a child, waits for it (passing on the signals the init forwards),
/// then runs the post-stop handler, and ends the way the app ended.
fn run_then(
    main: Command,
    hook: &Command,
    err: &OwnedFd,
) -> Result<std::convert::Infallible, Fail> {
    let mut forwarded = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCHLD,
    ] {
        forwarded.add(s);
    }
    forwarded
        .thread_block()
        .map_err(|e| Fail::from(("blocking signals", e)))?;
    // Close-on-exec: the app gets only its stdio.
    let sigfd = SignalFd::with_flags(&forwarded, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Fail::from(("signalfd", e)))?;
    let (started_r, started_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Fail::from(("pipe", e)))?;
    // SAFETY: single-threaded; the child execs or _exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        drop(started_r);
        let _ = SigSet::empty().thread_set_mask();
        let msg = main.exec();
        let _ = rustix::io::write(&started_w, msg.as_bytes());
        // SAFETY: leave the child without the parent's destructors.
        unsafe { libc::_exit(127) };
    }
    if child < 0 {
        return Err(Fail::from(("fork", std::io::Error::last_os_error())));
    }
    drop(started_w);
    let mut msg = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(started_r), &mut msg);
    if !msg.is_empty() {
        return Err(Fail(msg));
    }
    // The app runs: closing our end of the error pipe tells the init it started.
    // SAFETY: closing our own copy of the pipe; nothing else uses it.
    unsafe { libc::close(err.as_raw_fd()) };
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

fn describe_status(raw: i32) -> String {
    if libc::WIFSIGNALED(raw) {
        format!("killed by signal {}", libc::WTERMSIG(raw))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(raw))
    }
}

/// A program to exec with the app's environment, found in PATH as execvp would.
struct Command {
    program: String,
    candidates: Vec<CString>,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl Command {
    fn new(args: &[String], env: &[String]) -> Option<Command> {
        let program = args.first()?.clone();
        let candidates = candidates(&program, env)
            .into_iter()
            .map(|c| CString::new(c).unwrap_or_default())
            .collect();
        let c_args: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).unwrap_or_default())
            .collect();
        let c_env: Vec<CString> = env
            .iter()
            .map(|e| CString::new(e.as_str()).unwrap_or_default())
            .collect();
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        Some(Command {
            program,
            candidates,
            _args: c_args,
            _env: c_env,
            argv,
            envp,
        })
    }

    fn shown(&self) -> String {
        if self.program.contains('/') {
            self.program.clone()
        } else {
            format!("{} (searched in PATH)", self.program)
        }
    }

    /// Replaces this process; returns the reason only if it could not.
    fn exec(&self) -> String {
        // As execvp: a candidate that exists but cannot run (EACCES, ENOEXEC...) is a
        // better explanation than "not found" from the others.
        let mut reason = std::io::Error::from_raw_os_error(libc::ENOENT);
        for c_path in &self.candidates {
            // SAFETY: NUL-terminated arrays of valid C strings, alive in self.
            unsafe { libc::execve(c_path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
            let e = std::io::Error::last_os_error();
            if reason.raw_os_error() == Some(libc::ENOENT) {
                reason = e;
            }
        }
        format!("exec {}: {reason}", self.shown())
    }

    /// Runs it as a child and waits: its raw wait status.
    fn run(&self) -> Result<i32, String> {
        // SAFETY: single-threaded; the child execs or _exits.
        match unsafe { libc::fork() } {
            -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                let msg = self.exec();
                eprintln!("vessel: {msg}");
                // SAFETY: leave the child without the parent's destructors.
                unsafe { libc::_exit(127) }
            }
            pid => {
                let mut raw = 0;
                // SAFETY: waitpid on our child with a valid out pointer.
                loop {
                    if unsafe { libc::waitpid(pid, &mut raw, 0) } == pid {
                        return Ok(raw);
                    }
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINTR) {
                        return Err(format!("waiting for it: {e}"));
                    }
                }
            }
        }
    }
}

/// Where to look for the program: itself if it has a slash, else each PATH entry.
fn candidates(program: &str, env: &[String]) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .collect()
}

pub(crate) fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name.trim_start_matches("Rlimit") {
        "Cpu" => libc::RLIMIT_CPU,
        "Fsize" => libc::RLIMIT_FSIZE,
        "Data" => libc::RLIMIT_DATA,
        "Stack" => libc::RLIMIT_STACK,
        "Core" => libc::RLIMIT_CORE,
        "Rss" => libc::RLIMIT_RSS,
        "Nproc" => libc::RLIMIT_NPROC,
        "Nofile" => libc::RLIMIT_NOFILE,
        "Memlock" => libc::RLIMIT_MEMLOCK,
        "As" => libc::RLIMIT_AS,
        "Locks" => libc::RLIMIT_LOCKS,
        "Sigpending" => libc::RLIMIT_SIGPENDING,
        "Msgqueue" => libc::RLIMIT_MSGQUEUE,
        "Nice" => libc::RLIMIT_NICE,
        "Rtprio" => libc::RLIMIT_RTPRIO,
        "Rttime" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// unshare(2) for this single-threaded process.
fn unshare(flags: rustix::thread::UnshareFlags) -> rustix::io::Result<()> {
    // SAFETY: the caller is single-threaded, so no other thread sees its namespaces change.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search() {
        assert_eq!(candidates("/bin/sh", &[]), vec!["/bin/sh"]);
        assert_eq!(
            candidates("sh", &["PATH=/usr/bin:/bin/".into()]),
            vec!["/usr/bin/sh", "/bin/sh"]
        );
    }
}
