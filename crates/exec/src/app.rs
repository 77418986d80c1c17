//! One app process, forked by the pod init: it enters its own mount namespace and root,
//! becomes its user with its capabilities, and execs the app. Any failure is written to
//! the error pipe (close-on-exec, so a successful exec closes it empty) and ends the child.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::SigSet;

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
    // Wait until the init has moved us into our cgroup (it closes `go` then).
    let mut byte = [0u8; 1];
    let _ = rustix::io::read(&go, &mut byte);
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
    let program = args
        .first()
        .ok_or_else(|| Fail("the app has no command".into()))?
        .clone();
    let candidates = candidates(&program, &env);
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
    let c_candidates: Vec<CString> = candidates
        .iter()
        .map(|c| CString::new(c.as_str()).unwrap_or_default())
        .collect();

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
    // As execvp: a candidate that exists but cannot run (EACCES, ENOEXEC...) is a better
    // explanation than "not found" from the others.
    let mut reason = std::io::Error::from_raw_os_error(libc::ENOENT);
    for c_path in &c_candidates {
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(c_path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = std::io::Error::last_os_error();
        if reason.raw_os_error() == Some(libc::ENOENT) {
            reason = e;
        }
    }
    let e = reason;
    let shown = if program.contains('/') {
        program.clone()
    } else {
        format!("{program} (searched in PATH)")
    };
    Err(Fail(format!("exec {shown}: {e}")))
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

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
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
