//! The pod's first process before it knows its pod. The supervisor clones it into the
//! pod's new namespaces first thing, and it execs the pod init at once from a detached
//! read-only mount of the vessel binary. That exec (a millisecond, most of it the C
//! library probing the CPU) then runs while the supervisor prepares the pod's cgroups,
//! pipes and filters; the init waits for the plan and its descriptors on a socket (see
//! `handover`), sets up the mounts (`stage1`) and becomes pid 1 (`init`).
//!
//! Why exec at all: pid 1 stays visible to the apps for the pod's whole life. Were it a
//! mere fork of the host's vessel, /proc/1/exe and /proc/1/map_files would lead an app
//! holding every capability to the host's binary (CVE-2019-5736). Executed from a
//! detached mount marked read-only, the binary cannot be written through pid 1 (EROFS,
//! even after every vessel process ends), and it is static, so no host library is mapped.
//! Nothing but our own code runs before the init has pivoted away from the host's root.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::crossing::channel::{PodEnd, SupervisorEnd};
use crate::error::{Context, Error, Result};

/// The argv[0] under which the vessel binary runs as a pod init.
pub const INIT_ARGV0: &CStr = c"vessel-pod-init";
/// Where the init finds its socket to the supervisor.
pub const INIT_SOCKET_FD: RawFd = crate::crossing::sealed::CARRY_FD;

/// A cloned first process, not yet handed its pod. Dropped unused, it is killed and reaped.
pub struct Embryo {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The supervisor's end of the channel to the init.
    pub channel: SupervisorEnd,
    /// The clone flags it was made with.
    pub flags: libc::c_int,
    /// The CPUs the supervisor may use, when the first process was kept off the
    /// supervisor's own CPU until its hand-over (see [`Embryo::spawn`]).
    pub cpus: Option<Vec<u32>>,
    armed: bool,
}

/// The CPUs this process may run on, and the one it runs on now.
fn cpus_here() -> Option<(libc::cpu_set_t, Vec<u32>, usize)> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return None;
    }
    let cpus: Vec<u32> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .map(|c| c as u32)
        .collect();
    // SAFETY: no arguments.
    let here = unsafe { libc::sched_getcpu() };
    (here >= 0 && cpus.len() > 1).then_some((set, cpus, here as usize))
}

/// Sets the CPUs `pid` may run on (0: this process).
pub fn set_cpus(pid: i32, cpus: &[u32]) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays within CPU_SETSIZE.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus
        .iter()
        .filter(|&&c| (c as usize) < libc::CPU_SETSIZE as usize)
    {
        unsafe { libc::CPU_SET(c as usize, &mut set) };
    }
    // SAFETY: a valid set of the size given.
    if unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Embryo {
    /// Clones the first process into new namespaces (`flags`: CLONE_NEW*). With a user
    /// namespace it waits for [`Embryo::user_namespace_ready`] before its exec.
    pub fn spawn(flags: libc::c_int) -> Result<Embryo> {
        Embryo::spawn_as(flags, INIT_ARGV0)
    }

    /// `spawn`, exec'ing the sealed binary under `argv0`: its entry point, the pod's init
    /// or the OCI runtime's container process (see `container`).
    pub fn spawn_as(flags: libc::c_int, argv0: &'static CStr) -> Result<Embryo> {
        let exe = crate::mount::read_only_self()?;
        crate::trace::mark("read-only self");
        // Through this, the child checks that we are still alive once it has asked to die
        // with us: a supervisor gone before that would leave the pod unwatched.
        let supervisor = rustix::process::pidfd_open(
            rustix::process::getpid(),
            rustix::process::PidfdFlags::empty(),
        )
        .ctx("pidfd_open of the supervisor")?;
        let (mut ours, theirs) = crate::crossing::channel::pair()?;
        crate::trace::mark("pidfd and socket");
        let placement = cpus_here();
        let mut pidfd: RawFd = -1;
        // SAFETY: a fork-like clone (no new stack); this process is single-threaded here,
        // and the child only runs `become_init`, which ends in exec or _exit.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                &mut pidfd as *mut RawFd,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(Error::last_os("clone"));
        }
        if pid == 0 {
            let e = become_init(
                argv0,
                &theirs,
                exe.as_fd(),
                supervisor.as_fd(),
                flags & libc::CLONE_NEWUSER != 0,
            );
            // The supervisor reads this when the hand-over fails (`Embryo::failure`).
            theirs.fail(&e);
            // SAFETY: leaving the child without the parent's destructors.
            unsafe { libc::_exit(127) };
        }
        // Its exec and our preparation of the pod are the two halves of starting it: keep
        // it off our CPU so they run side by side (left to the scheduler, it often waits
        // behind us on this one, a millisecond or more). The init takes every CPU back
        // once handed its plan, before any app exists.
        let cpus = placement.and_then(|(mut set, cpus, here)| {
            // SAFETY: `here` is below CPU_SETSIZE (sched_getcpu); a valid set.
            unsafe { libc::CPU_CLR(here, &mut set) };
            let size = std::mem::size_of::<libc::cpu_set_t>();
            (unsafe { libc::sched_setaffinity(pid as i32, size, &set) } == 0).then_some(cpus)
        });
        crate::trace::mark("cloned");
        ours.expect_sender(pid as i32);
        Ok(Embryo {
            cpus,
            pid: pid as i32,
            // SAFETY: CLONE_PIDFD stored a new descriptor for the child.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
            channel: ours,
            flags,
            armed: true,
        })
    }

    /// With a user namespace: its id maps are written; the child may become its root.
    pub fn user_namespace_ready(&self) -> Result<()> {
        self.channel.user_namespace_ready()
    }

    /// Why the first process gave up, if it said so before exiting.
    pub fn failure(&self) -> Option<Error> {
        self.channel.failure()
    }

    /// The pod is launched: from here on the supervisor watches it.
    pub fn disarm(mut self) -> (i32, OwnedFd, SupervisorEnd) {
        self.armed = false;
        let pid = self.pid;
        // SAFETY: moving the fields out of a value whose Drop then does nothing; each is
        // read once and the value is forgotten.
        let (pidfd, channel) =
            unsafe { (std::ptr::read(&self.pidfd), std::ptr::read(&self.channel)) };
        std::mem::forget(self);
        (pid, pidfd, channel)
    }
}

impl Drop for Embryo {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                let mut raw = 0;
                libc::waitpid(self.pid, &mut raw, 0);
            }
        }
    }
}

/// In the cloned child: die with the supervisor, become the user namespace's root if
/// there is one, and exec the init with only the socket (and stdio) open. Returns only
/// on failure.
fn become_init(
    argv0: &CStr,
    channel: &PodEnd,
    exe: BorrowedFd<'_>,
    supervisor: BorrowedFd<'_>,
    in_user_namespace: bool,
) -> Error {
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        return Error::os("PR_SET_PDEATHSIG", e.raw_os_error());
    }
    // Had the supervisor died between the clone and that request, nothing would kill us:
    // its pidfd says (getppid cannot, the parent is outside our pid namespace).
    let mut watch = [libc::pollfd {
        fd: supervisor.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: poll on one valid pollfd, without waiting.
    if unsafe { libc::poll(watch.as_mut_ptr(), 1, 0) } != 0 {
        return Error::msg("waiting for the pod", "the supervisor is gone");
    }
    if in_user_namespace {
        // Once the supervisor has written the maps, become the namespace's root (in
        // exec_sealed).
        if let Err(e) = channel.wait_user_namespace_ready() {
            return e;
        }
    }
    crate::crossing::sealed::exec_sealed(exe, channel.as_fd(), argv0, in_user_namespace)
}
