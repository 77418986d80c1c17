//! What the supervisor believes of the init's reports: only what it can check with the
//! kernel. The init is pid 1 of the pod, and an app holding CAP_SYS_PTRACE can act as it
//! (ptrace, /proc/1/mem); so a report that an app has exited, or that the pod is done, is
//! taken only when the app's process, held by a pidfd the init sent with `started`, has
//! really exited, and its exit status is read from that pidfd when the kernel keeps it
//! there (PIDFD_INFO_EXIT, Linux 6.15), not from the report.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::proto::Event;

enum App {
    /// Neither started nor failed yet.
    Pending,
    /// Started: its process, held.
    Running(OwnedFd),
    /// Exited or failed.
    Ended,
}

pub struct Witness {
    init_pid: i32,
    apps: Vec<App>,
    /// The reports were checked already where the apps run (a kvm guest's PID 1, against
    /// the guest's kernel) and relayed by the pod's init on the host, which no app reaches.
    relayed: bool,
}

/// What a check says of a report.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Believed as reported (or corrected from the kernel's record).
    Believe(Event),
    /// Not what the kernel shows: ignored.
    Refuse(&'static str),
}

impl Witness {
    pub fn new(init_pid: i32, apps: usize) -> Witness {
        Witness {
            init_pid,
            apps: (0..apps).map(|_| App::Pending).collect(),
            relayed: false,
        }
    }

    /// A witness of reports checked elsewhere (see `relayed`).
    pub fn relayed(init_pid: i32, apps: usize) -> Witness {
        Witness {
            relayed: true,
            ..Witness::new(init_pid, apps)
        }
    }

    /// Checks one report of the init's (`pidfd`: what came with it).
    pub fn check(&mut self, event: Event, pidfd: Option<OwnedFd>) -> Verdict {
        if self.relayed {
            return Verdict::Believe(event);
        }
        match event {
            Event::Started { app, .. } => {
                let Some(App::Pending) = self.apps.get(app) else {
                    return Verdict::Refuse("a start of an app that is not waiting to start");
                };
                let Some(pidfd) = pidfd else {
                    return Verdict::Refuse("a start without the app's process");
                };
                // A process already reaped tells no parent: believed, for an exited
                // process hides no running one.
                if parent_of(pidfd.as_fd()).is_some_and(|p| p != self.init_pid) {
                    return Verdict::Refuse("a start of a process that is not the init's child");
                }
                self.apps[app] = App::Running(pidfd);
                Verdict::Believe(event)
            }
            Event::Failed { app, .. } => match self.apps.get(app) {
                Some(App::Pending) => {
                    self.apps[app] = App::Ended;
                    Verdict::Believe(event)
                }
                _ => Verdict::Refuse("a failure of an app that is not waiting to start"),
            },
            Event::Exited { app, status } => {
                let Some(App::Running(pidfd)) = self.apps.get(app) else {
                    return Verdict::Refuse("an exit of an app that is not running");
                };
                if !has_exited(pidfd.as_fd()) {
                    return Verdict::Refuse("an exit of an app whose process still runs");
                }
                // The kernel's record once the init has reaped it; before that (a zombie)
                // the init cannot have read a status to report. Only a kernel that keeps
                // no record (before 6.15) leaves the reported status to be believed.
                let status = match exit_record(pidfd.as_fd()) {
                    Record::Status(s) => s,
                    Record::NotReaped => {
                        return Verdict::Refuse("an exit of an app the init has not reaped")
                    }
                    Record::None => status,
                };
                self.apps[app] = App::Ended;
                Verdict::Believe(Event::Exited { app, status })
            }
            Event::Done => {
                let running = self.apps.iter().any(|a| match a {
                    App::Running(pidfd) => !has_exited(pidfd.as_fd()),
                    _ => false,
                });
                if running {
                    return Verdict::Refuse("the end of a pod whose apps still run");
                }
                Verdict::Believe(Event::Done)
            }
            Event::Error { .. } | Event::Warning { .. } => Verdict::Believe(event),
        }
    }

    /// The pidfd of an app that runs, as far as we know.
    pub fn running(&self, app: usize) -> Option<BorrowedFd<'_>> {
        match self.apps.get(app) {
            Some(App::Running(fd)) => Some(fd.as_fd()),
            _ => None,
        }
    }
}

/// Whether the process behind `pidfd` has exited (its pidfd reads ready).
fn has_exited(pidfd: BorrowedFd<'_>) -> bool {
    let mut p = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    matches!(
        rustix::event::poll(&mut p, Some(&rustix::time::Timespec::default())),
        Ok(n) if n > 0
    )
}

/// struct pidfd_info (linux/pidfd.h), as far as we read it.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

const PIDFD_INFO_PID: u64 = 1 << 0;
const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// _IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// PIDFD_GET_INFO (Linux 6.13); None where the kernel has none.
fn pidfd_info(pidfd: BorrowedFd<'_>, mask: u64) -> Option<PidfdInfo> {
    let mut info = PidfdInfo {
        mask,
        ..PidfdInfo::default()
    };
    // SAFETY: the ioctl fills a struct of the size its number encodes.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info) };
    (r == 0).then_some(info)
}

/// What the kernel keeps of an exited process's end.
enum Record {
    /// Its wait status, kept in its pidfd once it was reaped (Linux 6.15).
    Status(i32),
    /// It exists still, as a zombie: nobody has read its status yet.
    NotReaped,
    /// Nothing: a kernel that keeps no exit record.
    None,
}

fn exit_record(pidfd: BorrowedFd<'_>) -> Record {
    match pidfd_info(pidfd, PIDFD_INFO_PID | PIDFD_INFO_EXIT) {
        Some(i) if i.mask & PIDFD_INFO_EXIT != 0 => Record::Status(i.exit_code),
        // The kernel answers for a process that exists (PIDFD_INFO_PID): a zombie.
        Some(i) if i.mask & PIDFD_INFO_PID != 0 => Record::NotReaped,
        _ => Record::None,
    }
}

/// The parent (in our pid namespace) of the process behind `pidfd`: from the kernel's
/// pidfd info, or from /proc where it has none (its pid from the pidfd's fdinfo, checked
/// to be the same process afterwards).
fn parent_of(pidfd: BorrowedFd<'_>) -> Option<i32> {
    if let Some(i) = pidfd_info(pidfd, PIDFD_INFO_PID).filter(|i| i.mask & PIDFD_INFO_PID != 0) {
        return Some(i.ppid as i32);
    }
    let fdinfo =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    let pid: i32 = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()?;
    // Still the same process: the pid was not freed and reused meanwhile.
    (!has_exited(pidfd)).then_some(ppid)
}

/// The pid, in our namespace, of the process behind `pidfd`.
pub fn pid_of(pidfd: BorrowedFd<'_>) -> Option<i32> {
    if let Some(i) = pidfd_info(pidfd, PIDFD_INFO_PID).filter(|i| i.mask & PIDFD_INFO_PID != 0) {
        return Some(i.pid as i32);
    }
    let fdinfo =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd())).ok()?;
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()
        .filter(|p: &i32| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child of this process that exits with `code` once `go` is written to.
    fn child(code: i32) -> (i32, OwnedFd, OwnedFd) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        // SAFETY: the child only reads and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut b = [0u8; 1];
            let _ = rustix::io::read(&r, &mut b);
            unsafe { libc::_exit(code) };
        }
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        (pid, pidfd, w)
    }

    fn reap(pid: i32) {
        let mut st = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
    }

    #[test]
    fn exits_and_the_end_are_believed_only_once_the_process_is_gone() {
        let me = std::process::id() as i32;
        let mut w = Witness::new(me, 1);
        let (pid, pidfd, go) = child(3);
        assert_eq!(pid_of(pidfd.as_fd()), Some(pid));
        assert!(matches!(
            w.check(Event::Started { app: 0, pid: 2 }, Some(pidfd)),
            Verdict::Believe(_)
        ));
        // A forged "exited 0, done" while it runs.
        assert!(matches!(
            w.check(Event::Exited { app: 0, status: 0 }, None),
            Verdict::Refuse(_)
        ));
        assert!(matches!(w.check(Event::Done, None), Verdict::Refuse(_)));
        rustix::io::write(&go, b"g").unwrap();
        while !has_exited(w.running(0).unwrap()) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Exited but not reaped: the init cannot have read its status yet.
        if kernel_at_least(6, 13) {
            assert_eq!(
                w.check(Event::Exited { app: 0, status: 0 }, None),
                Verdict::Refuse("an exit of an app the init has not reaped")
            );
        }
        reap(pid);
        // Now it has ended: the status is the kernel's where it keeps one (Linux 6.15).
        let keeps = kernel_at_least(6, 15);
        assert_eq!(
            w.check(Event::Exited { app: 0, status: 0 }, None),
            Verdict::Believe(Event::Exited {
                app: 0,
                status: if keeps { 3 << 8 } else { 0 }
            })
        );
        assert!(matches!(w.check(Event::Done, None), Verdict::Believe(_)));
    }

    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = rustix::system::uname();
        let release = release.release().to_string_lossy();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let (a, b): (u32, u32) = (
            parts.next().and_then(|x| x.parse().ok()).unwrap_or(0),
            parts.next().and_then(|x| x.parse().ok()).unwrap_or(0),
        );
        (a, b) >= (major, minor)
    }

    #[test]
    fn a_start_needs_the_inits_child() {
        // Our child, but we are not the "init" the witness expects.
        let mut w = Witness::new(1, 1);
        let (pid, pidfd, go) = child(0);
        assert!(matches!(
            w.check(Event::Started { app: 0, pid: 2 }, Some(pidfd)),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            w.check(Event::Started { app: 0, pid: 2 }, None),
            Verdict::Refuse(_)
        ));
        rustix::io::write(&go, b"g").unwrap();
        reap(pid);
    }
}
