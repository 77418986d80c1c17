//! Becoming the app: the one path every process takes that turns into an app, whoever
//! made it: a child the pod's init forks (`pid1::app_child`, after its own mounts and
//! pivot), the process `vessel enter` sends in (`crossing::enter`), and later the OCI
//! runtime's create and exec.
//!
//! Before the fork (or the exec into the crossing process) the caller describes the app
//! as data, an [`AppDescription`]: its ids and groups, five capability sets, rlimits,
//! OOM score, seccomp filter, no_new_privs, working directory, command and environment,
//! event handlers. [`AppExec::prepare`] turns it into C strings and a loaded filter
//! program, and [`AppExec::exec`] applies it and execs, without allocating until it fails.
//!
//! Order in [`AppExec::exec`], and why:
//! 1. every signal disposition to default and the mask empty: the Rust runtime ignores
//!    SIGPIPE and an ignored signal stays ignored across exec (`yes | head` would spin);
//! 2. rlimits, then the OOM score, while we may still raise them;
//! 3. the seccomp filter now if no_new_privs is off (loading one then needs
//!    CAP_SYS_ADMIN, about to go), ids and capabilities (`CapSets::apply`), no_new_privs;
//! 4. the working directory, as the app's user (a directory it may not enter fails here);
//! 5. every descriptor but stdio closed (CVE-2024-21626), then the filter if not loaded
//!    yet: last, so it need not allow the calls above;
//! 6. the pre-start handler, then the command (run as a child with a post-stop handler).

mod command;
mod hooks;

use std::ffi::CString;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

pub(crate) use command::candidates;
pub use command::{Command, DEFAULT_PATH};

use crate::caps::{CapSets, Credentials};
use crate::error::{Context, Error, Result};
use crate::seccomp::SeccompProgram;

/// The channel on which a child that is to become an app reports why it could not (an
/// encoded [`Error`]) before it exits; its end closes at the exec, which says "started".
/// A stream socket, not a pipe: the app, once running, may hold CAP_SYS_PTRACE and reach
/// its parent's descriptors. A pipe reopened through /proc/PID/fd would let it write a
/// false failure its parent then waits on; a socket cannot be opened so, and the parent's
/// end copied with pidfd_getfd writes only to the child's end, gone at the exec.
pub fn report_channel() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ctx("socketpair")
}

/// An app process as data, built before the fork: serialisable, for `vessel enter` hands
/// it across an exec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDescription {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    #[serde(with = "cap_sets")]
    pub caps: CapSets,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<OomScoreAdj>,
    /// The compiled filter (`SeccompProgram::to_bytes`).
    pub seccomp: Option<Vec<u8>>,
    pub no_new_privs: bool,
    pub cwd: String,
    /// The command; a program without a slash is looked up in the environment's PATH.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// appc event handlers, run as the app runs (same root, user, capabilities, filter and
    /// environment): before the command, and after it has ended.
    pub pre_start: Option<Vec<String>>,
    pub post_stop: Option<Vec<String>>,
    /// Names of the sockets a service manager passed for the app, which it finds at 3,
    /// 4, ...: its command gets `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` (its own
    /// pid), as `sd_listen_fds(3)` expects; the handlers get none of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_fds: Vec<String>,
}

/// One resource limit, by the kernel's resource number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// The OOM score to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OomScoreAdj {
    pub value: i32,
    /// Only raise ours to it, never lower it: `vessel enter` must not be better protected
    /// from the OOM killer than the app, but need not be worse (lowering takes
    /// CAP_SYS_RESOURCE). A new app takes exactly its value.
    pub raise_only: bool,
}

/// The resource number of an OCI rlimit type.
pub fn rlimit_resource(typ: oci_spec::runtime::PosixRlimitType) -> u32 {
    use oci_spec::runtime::PosixRlimitType as T;
    match typ {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

impl AppDescription {
    /// The parts an OCI `process` gives: rlimits, OOM score (taken exactly), no_new_privs,
    /// working directory, command and environment. Ids, capabilities and the filter come
    /// from the caller.
    pub fn from_process(process: &oci_spec::runtime::Process) -> AppDescription {
        AppDescription {
            uid: process.user().uid(),
            gid: process.user().gid(),
            groups: process.user().additional_gids().clone().unwrap_or_default(),
            rlimits: process
                .rlimits()
                .iter()
                .flatten()
                .map(|rl| Rlimit {
                    resource: rlimit_resource(rl.typ()),
                    soft: rl.soft(),
                    hard: rl.hard(),
                })
                .collect(),
            oom_score_adj: process.oom_score_adj().map(|value| OomScoreAdj {
                value,
                raise_only: false,
            }),
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            cwd: process.cwd().to_string_lossy().into_owned(),
            args: process.args().clone().unwrap_or_default(),
            env: process.env().clone().unwrap_or_default(),
            ..AppDescription::default()
        }
    }
}

/// An [`AppDescription`] ready to apply: C strings and pointer arrays made, the filter
/// program decoded.
pub struct AppExec {
    creds: Credentials,
    caps: CapSets,
    rlimits: Vec<Rlimit>,
    /// The value as the bytes /proc/self/oom_score_adj takes.
    oom_score_adj: Option<(OomScoreAdj, Vec<u8>)>,
    seccomp: Option<SeccompProgram>,
    no_new_privs: bool,
    cwd: CString,
    command: Command,
    pre_start: Option<Command>,
    post_stop: Option<Command>,
    /// Descriptors 3, 4, ... left open after stdio (the OCI runtime's --preserve-fds).
    preserved: u32,
}

impl AppExec {
    pub fn prepare(d: &AppDescription) -> Result<AppExec> {
        let seccomp = d
            .seccomp
            .as_deref()
            .map(SeccompProgram::from_bytes)
            .transpose()
            .map_err(|e| Error::msg("the seccomp filter", e.to_string()))?;
        let mut env = d.env.clone();
        if !d.listen_fds.is_empty() {
            env.retain(|e| {
                !["LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES="]
                    .iter()
                    .any(|p| e.starts_with(p))
            });
            env.push(format!("LISTEN_FDS={}", d.listen_fds.len()));
            env.push(format!("LISTEN_FDNAMES={}", d.listen_fds.join(":")));
        }
        let mut command = Command::new(&d.args, &env)
            .ok_or_else(|| Error::msg("the app", "it has no command"))?;
        if !d.listen_fds.is_empty() {
            command = command.with_listen_pid();
        }
        let hook = |argv: &Option<Vec<String>>| argv.as_ref().and_then(|a| Command::new(a, &d.env));
        // The last check of the ids, whatever they came from: never (uid_t)-1, and mapped
        // in this user namespace (hardening finding 2).
        crate::users::check_ids(d.uid, d.gid, &d.groups)
            .map_err(|e| Error::msg("user", e.to_string()))?;
        Ok(AppExec {
            creds: Credentials {
                uid: d.uid,
                gid: d.gid,
                supplementary_groups: d.groups.clone(),
                keep_groups: SETGROUPS_DENIED.get().copied().unwrap_or(false),
            },
            caps: d.caps,
            rlimits: d.rlimits.clone(),
            oom_score_adj: d
                .oom_score_adj
                .map(|o| (o, o.value.to_string().into_bytes())),
            seccomp,
            no_new_privs: d.no_new_privs,
            cwd: CString::new(d.cwd.as_str())
                .map_err(|_| Error::msg(format!("working directory {:?}", d.cwd), "a NUL byte"))?,
            command,
            pre_start: hook(&d.pre_start),
            post_stop: hook(&d.post_stop),
            preserved: d.listen_fds.len() as u32,
        })
    }

    /// Leaves `n` descriptors from 3 on open across the exec, as they are (the OCI
    /// runtime's `--preserve-fds`); every other one is still closed.
    pub fn preserving(mut self, n: u32) -> AppExec {
        self.preserved = n;
        self
    }

    /// Becomes the app and execs its command (see the module docs for the order). Every
    /// descriptor but stdio and `keep` (an error pipe, closed by the exec itself) is closed
    /// first. Returns only on failure.
    pub fn exec(&self, keep: Option<RawFd>) -> Error {
        match self.become_app(keep) {
            Err(e) => e,
            Ok(()) => match &self.post_stop {
                None => self.command.exec(),
                Some(hook) => hooks::run_then(&self.command, hook, keep),
            },
        }
    }

    fn become_app(&self, keep: Option<RawFd>) -> Result<()> {
        reset_signals()?;
        for rl in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: rl.soft,
                rlim_max: rl.hard,
            };
            // SAFETY: setrlimit with a valid struct.
            if unsafe { libc::setrlimit(rl.resource as _, &lim) } < 0 {
                return Err(Error::last_os("setrlimit"));
            }
        }
        if let Some((oom, bytes)) = &self.oom_score_adj {
            set_oom_score_adj(*oom, bytes)?;
        }
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load before dropping it.
        if let (Some(p), false) = (&self.seccomp, self.no_new_privs) {
            p.load().ctx("loading the seccomp filter")?;
        }
        self.caps.apply(Some(&self.creds)).ctx("")?;
        if self.no_new_privs {
            crate::caps::set_no_new_privs().ctx("")?;
        }
        rustix::process::chdir(self.cwd.as_c_str())
            .with_ctx(|| format!("working directory {}", self.cwd.to_string_lossy()))?;
        close_all_but_stdio(3 + self.preserved, keep);
        if let (Some(p), true) = (&self.seccomp, self.no_new_privs) {
            p.load().ctx("loading the seccomp filter")?;
        }
        if let Some(hook) = &self.pre_start {
            let status = hook.run().ctx("pre-start handler")?;
            if status != 0 {
                return Err(Error::msg(
                    format!("pre-start handler {}", hook.shown()),
                    format!("it failed ({})", hooks::describe_status(status)),
                ));
            }
        }
        Ok(())
    }
}

/// Every signal back to its default disposition and none blocked, as a new program
/// expects: dispositions set to "ignore" (SIGPIPE, by the Rust runtime, or whatever the
/// caller of vessel ignored) survive exec, and so does the mask. By raw rt_sigaction, for
/// the C library refuses to touch the two real-time signals it keeps for itself (32 and
/// 33), which a caller may still have left ignored. Allocation-free.
pub fn reset_signals() -> Result<()> {
    /// struct sigaction as the kernel takes it (x86_64 and aarch64 layout).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a valid action, no old action asked for, the kernel's sigset size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
        if r < 0 {
            return Err(Error::last_os("resetting signal dispositions"));
        }
    }
    let empty: u64 = 0;
    // SAFETY: the mask set to an empty kernel sigset.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        )
    };
    if r < 0 {
        return Err(Error::last_os("clearing the signal mask"));
    }
    Ok(())
}

/// Writes /proc/self/oom_score_adj; with `raise_only`, only if ours is lower. Allocation-free.
fn set_oom_score_adj(oom: OomScoreAdj, bytes: &[u8]) -> Result<()> {
    const PATH: &std::ffi::CStr = c"/proc/self/oom_score_adj";
    // SAFETY: open, read, write and close of our own /proc file, with stack buffers.
    unsafe {
        let fd = libc::open(PATH.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(Error::last_os("oom_score_adj"));
        }
        if oom.raise_only {
            let mut buf = [0u8; 16];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            let current = (n > 0)
                .then(|| std::str::from_utf8(&buf[..n as usize]).ok())
                .flatten()
                .and_then(|s| s.trim().parse::<i32>().ok());
            if current.is_some_and(|c| c >= oom.value) {
                libc::close(fd);
                return Ok(());
            }
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let e = Error::last_os("oom_score_adj");
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

/// Closes every descriptor from `first` on (3: all but stdio) but `keep`. Allocation-free.
fn close_all_but_stdio(first: u32, keep: Option<RawFd>) {
    // SAFETY: closing descriptor ranges of this process.
    unsafe {
        match keep.map(|k| k as u32).filter(|&k| k >= first) {
            Some(k) => {
                if k > first {
                    libc::syscall(libc::SYS_close_range, first, k - 1, 0u32);
                }
                libc::syscall(libc::SYS_close_range, k + 1, u32::MAX, 0u32);
            }
            None => {
                libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32);
            }
        }
    }
}

/// The capability sets as five masks (bounding, effective, permitted, inheritable,
/// ambient).
mod cap_sets {
    use crate::caps::{CapSets, CapabilitySet};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(c: &CapSets, s: S) -> Result<S::Ok, S::Error> {
        [
            c.bounding,
            c.effective,
            c.permitted,
            c.inheritable,
            c.ambient,
        ]
        .map(CapabilitySet::bits)
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CapSets, D::Error> {
        let [bounding, effective, permitted, inheritable, ambient] =
            <[u64; 5]>::deserialize(d)?.map(CapabilitySet::from_bits);
        Ok(CapSets {
            bounding,
            effective,
            permitted,
            inheritable,
            ambient,
        })
    }
}

/// Whether this process's user namespace forbids setgroups (rootless with a single-id
/// mapping): read by [`note_setgroups`] while /proc is at hand, before the pod's init
/// pivots away from the host's; unread (false) on the root path.
static SETGROUPS_DENIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Records [`SETGROUPS_DENIED`]: apps then keep their groups instead of failing.
pub fn note_setgroups() {
    let _ = SETGROUPS_DENIED
        .set(std::fs::read("/proc/self/setgroups").is_ok_and(|s| s.starts_with(b"deny")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_crosses_an_exec_whole() {
        let d = AppDescription {
            uid: 1000,
            gid: 50,
            groups: vec![7],
            caps: CapSets::retaining(crate::caps::CapabilitySet::docker_default()),
            rlimits: vec![Rlimit {
                resource: libc::RLIMIT_NOFILE,
                soft: 64,
                hard: 128,
            }],
            oom_score_adj: Some(OomScoreAdj {
                value: 500,
                raise_only: true,
            }),
            cwd: "/srv".into(),
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            ..AppDescription::default()
        };
        let back: AppDescription =
            serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn rlimits_match_on_the_type() {
        use oci_spec::runtime::PosixRlimitType as T;
        assert_eq!(rlimit_resource(T::RlimitNofile), libc::RLIMIT_NOFILE);
        assert_eq!(rlimit_resource(T::RlimitRttime), libc::RLIMIT_RTTIME);
    }

    #[test]
    fn preparing_refuses_a_missing_command_or_a_bad_filter() {
        let e = AppExec::prepare(&AppDescription::default()).err().unwrap();
        assert_eq!(e.to_string(), "the app: it has no command");
        let d = AppDescription {
            args: vec!["x".into()],
            seccomp: Some(b"nonsense".to_vec()),
            ..AppDescription::default()
        };
        let e = AppExec::prepare(&d).err().unwrap();
        assert!(e.to_string().starts_with("the seccomp filter: "), "{e}");
    }

    /// In a forked child, so the test process keeps its own dispositions.
    #[test]
    fn signals_are_reset_to_their_defaults() {
        // SAFETY: fork in a test; the child only calls async-signal-safe functions and _exits.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let pid = libc::fork();
            if pid == 0 {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                // 33: one the C library keeps for itself, ignored by raw syscall.
                let ignore: [usize; 4] = [libc::SIG_IGN, 0, 0, 0];
                libc::syscall(libc::SYS_rt_sigaction, 33, ignore.as_ptr(), 0usize, 8usize);
                let ok = reset_signals().is_ok();
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old);
                let mut old33 = [0usize; 4];
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    33,
                    0usize,
                    old33.as_mut_ptr(),
                    8usize,
                );
                let mut mask: libc::sigset_t = std::mem::zeroed();
                libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask);
                let default = old.sa_sigaction == libc::SIG_DFL && old33[0] == libc::SIG_DFL;
                let unblocked = libc::sigismember(&mask, libc::SIGTERM) == 0;
                libc::_exit(if ok && default && unblocked { 0 } else { 1 });
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
}
