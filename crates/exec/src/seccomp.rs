//! Seccomp filters: Vessel's default profile, named syscall groups, appc's
//! seccomp isolators, compilation to BPF with libseccomp, and loading.
//!
//! Profiles are `oci_spec::runtime::LinuxSeccomp` values, so one compiler
//! serves Vessel's own profiles and bundles from the OCI runtime CLI.
//! [`compile`] runs before fork and yields a [`SeccompProgram`] (plain BPF
//! instructions, cacheable with [`SeccompProgram::to_bytes`]); the child then
//! only calls [`SeccompProgram::load`], which is async-signal-safe.
//!
//! Decisions:
//! - Architectures: the default profile allows the native ABI only; a call
//!   through a compat entry (x86_64: i386's `int 0x80` and x32; aarch64:
//!   arm) kills the app. Few images hold 32-bit programs, the compat entry
//!   points are a kernel attack surface of their own, and a filter for three
//!   ABIs is three times as long: loading it (the kernel checks and JIT-compiles
//!   it) cost 0.74 ms per app here against 0.3 ms for one ABI. An operator
//!   who needs 32-bit programs gives a profile (`--seccomp`, a pod manifest's
//!   isolator): those, and any profile without `architectures`, cover the
//!   native ABI and its compat ABIs, so no 32-bit entry bypasses them.
//! - Names: a syscall name libseccomp knows is used even when it does not
//!   exist on some architecture of the filter (libseccomp leaves it out
//!   there). A name libseccomp does not know is a typo and an error, unless
//!   it is in [`NEWER_KERNEL_SYSCALLS`]: real syscalls newer than the
//!   installed libseccomp, which cannot express them. Those are skipped when
//!   skipping is safe (the rule would allow, or the default denies anyway),
//!   listed in [`SeccompProgram::skipped`], and refused otherwise.
//! - Argument conditions follow runc: conditions on distinct arguments of
//!   one rule must all hold; several conditions on the same argument make one
//!   rule each (any may hold).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::caps::{Capability, CapabilitySet};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("unknown syscall {0:?}")]
    UnknownSyscall(String),
    #[error("unknown syscall group {0:?}")]
    UnknownGroup(String),
    #[error("unknown errno name {0:?}")]
    UnknownErrno(String),
    #[error("syscall {0:?} is too new for the installed libseccomp, so it cannot be denied")]
    SyscallTooNew(String),
    #[error("{0}")]
    InvalidSet(String),
    #[error("seccomp action {0} is not supported")]
    UnsupportedAction(String),
    #[error("seccomp flag {0} is not supported")]
    UnsupportedFlag(String),
    #[error("architecture {0} is not supported by the installed libseccomp")]
    UnsupportedArch(String),
    #[error("seccomp argument index {0} is out of range (0-5)")]
    ArgumentIndex(usize),
    #[error("libseccomp cannot {what}: {source}")]
    Libseccomp {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("cannot export the seccomp program: {0}")]
    Export(std::io::Error),
    #[error("seccomp program has {0} instructions, more than the kernel's 4096")]
    TooLong(usize),
    #[error("invalid cached seccomp program: {0}")]
    InvalidCache(&'static str),
}

// ---------------------------------------------------------------------------
// Syscall groups
// ---------------------------------------------------------------------------

/// Real syscalls (Linux 6.8 to 6.17) that libseccomp 2.5 does not know.
#[rustfmt::skip]
pub const NEWER_KERNEL_SYSCALLS: &[&str] = &[
    "statmount", "listmount", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
    "mseal", "setxattrat", "getxattrat", "listxattrat", "removexattrat", "open_tree_attr",
    "file_getattr", "file_setattr", "uretprobe",
];

/// What every process needs to start through execve and to end: the filter
/// is installed before execve, and returning from a signal handler or
/// restarting an interrupted call must keep working.
#[rustfmt::skip]
const LIFECYCLE: &[&str] = &[
    "execve", "execveat", "exit", "exit_group", "restart_syscall", "rt_sigreturn", "sigreturn",
];

/// Paths, metadata and descriptors.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "creat", "dup",
    "dup2", "dup3", "faccessat", "faccessat2", "fchdir", "fchmod", "fchmodat", "fchmodat2",
    "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "flock", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "ftruncate", "ftruncate64", "futimesat", "getcwd",
    "getdents", "getdents64", "ioctl", "lchown", "lchown32", "link", "linkat", "lstat",
    "lstat64", "memfd_create", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open",
    "openat", "openat2", "readlink", "readlinkat", "rename", "renameat", "renameat2", "rmdir",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "truncate",
    "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64",
    "utimes",
];

/// Extended attributes.
#[rustfmt::skip]
const XATTRS: &[&str] = &[
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat",
    "lgetxattr", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr",
    "removexattr", "removexattrat", "setxattr", "setxattrat",
];

/// Reading, writing, syncing and moving data, including POSIX AIO.
#[rustfmt::skip]
const IO: &[&str] = &[
    "_llseek", "arm_fadvise64_64", "arm_sync_file_range", "cachestat", "copy_file_range",
    "fadvise64", "fadvise64_64", "fallocate", "fdatasync", "fsync", "io_cancel", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "lseek",
    "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readv", "sendfile", "sendfile64", "splice", "sync", "sync_file_range", "sync_file_range2",
    "syncfs", "tee", "vmsplice", "write", "writev",
];

/// Address space management.
#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "brk", "madvise", "map_shadow_stack", "membarrier", "mincore", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock",
    "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "process_mrelease",
    "remap_file_pages",
];

/// Processes and threads (`clone` and `clone3` are handled apart, with
/// conditions).
#[rustfmt::skip]
const PROCESSES: &[&str] = &[
    "arch_prctl", "fork", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "get_robust_list", "get_thread_area", "getcpu", "getpgid", "getpgrp",
    "getpid", "getppid", "getrandom", "getrlimit", "getrusage", "getsid", "gettid",
    "pidfd_open", "prctl", "prlimit64", "rseq", "set_robust_list", "set_thread_area",
    "set_tid_address", "setpgid", "setrlimit", "setsid", "sysinfo", "ugetrlimit", "uname",
    "vfork", "wait4", "waitid", "waitpid",
];

/// User and group ids.
#[rustfmt::skip]
const CREDENTIALS: &[&str] = &[
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
];

/// Priorities, affinity and scheduling policy.
#[rustfmt::skip]
const SCHEDULING: &[&str] = &[
    "getpriority", "ioprio_get", "ioprio_set", "nice", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "setpriority",
];

#[rustfmt::skip]
const SIGNALS: &[&str] = &[
    "alarm", "kill", "pause", "pidfd_send_signal", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal",
    "signalfd", "signalfd4", "sigpending", "sigprocmask", "sigsuspend", "tgkill", "tkill",
];

/// Reading clocks, sleeping and timers. `adjtimex` only reads without
/// CAP_SYS_TIME, which the kernel checks itself.
#[rustfmt::skip]
const TIME: &[&str] = &[
    "adjtimex", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep",
    "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
];

/// Waiting for events on descriptors.
#[rustfmt::skip]
const EVENTS: &[&str] = &[
    "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "poll", "ppoll",
    "ppoll_time64", "pselect6", "pselect6_time64", "select",
];

/// Pipes, System V and POSIX IPC (namespaced per pod).
#[rustfmt::skip]
const IPC: &[&str] = &[
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "pipe", "pipe2", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat",
    "shmctl", "shmdt", "shmget",
];

/// Sockets (`socket` itself is handled apart, with a condition). On i386,
/// `socketcall` multiplexes these through a pointer seccomp cannot read,
/// so it is allowed whole.
#[rustfmt::skip]
const NETWORK: &[&str] = &[
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
    "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
];

/// Dropping privileges further: nested seccomp filters, Landlock,
/// capability sets (which can only shrink without CAP_SETPCAP).
#[rustfmt::skip]
const SANDBOXING: &[&str] = &[
    "capget", "capset", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lsm_get_self_attr", "lsm_list_modules", "seccomp",
];

/// Debugging other processes of the pod. Allowed since Linux 4.8, where
/// ptrace can no longer be used to bypass seccomp; the kernel's ptrace
/// access checks and the pod's pid namespace still apply.
#[rustfmt::skip]
const DEBUG: &[&str] = &[
    "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
];

/// Architecture-specific helpers that libcs use.
const ARCH_SPECIFIC: &[&str] = &["breakpoint", "cacheflush", "set_tls"];

// What the default profile denies, by theme.
#[rustfmt::skip]
const MOUNT: &[&str] = &[
    "fsconfig", "fsmount", "fsopen", "fspick", "listmount", "mount", "mount_setattr",
    "move_mount", "open_tree", "open_tree_attr", "pivot_root", "statmount", "umount", "umount2",
];
const NAMESPACES: &[&str] = &["setns", "unshare"];
const MODULES: &[&str] = &["delete_module", "finit_module", "init_module"];
const LEGACY_MODULES: &[&str] = &["create_module", "get_kernel_syms", "query_module"];
const REBOOT: &[&str] = &["reboot"];
const KEXEC: &[&str] = &["kexec_file_load", "kexec_load"];
const SWAP: &[&str] = &["swapoff", "swapon"];
#[rustfmt::skip]
const CLOCK: &[&str] = &[
    "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday",
    "stime",
];
/// The kernel keyring is not namespaced.
const KEYRING: &[&str] = &["add_key", "keyctl", "request_key"];
const ACCOUNTING: &[&str] = &["acct"];
const RAW_IO: &[&str] = &["ioperm", "iopl"];
#[rustfmt::skip]
const NUMA: &[&str] = &[
    "get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
    "set_mempolicy_home_node",
];
const KERNEL_TRACING: &[&str] = &["bpf", "fanotify_init", "lookup_dcookie", "perf_event_open"];
/// open_by_handle_at opens any file of a mounted filesystem, escaping the
/// rootfs (the "shocker" breakout).
const FILE_HANDLES: &[&str] = &["name_to_handle_at", "open_by_handle_at"];
#[rustfmt::skip]
const HOST_ADMIN: &[&str] = &[
    "quotactl", "quotactl_fd", "setdomainname", "sethostname", "syslog", "vhangup",
];
const CHROOT: &[&str] = &["chroot"];
/// io_uring runs operations outside seccomp's view and has been a steady
/// source of kernel exploits; programs fall back to ordinary syscalls.
const IO_URING: &[&str] = &["io_uring_enter", "io_uring_register", "io_uring_setup"];
/// userfaultfd makes kernel races easy to win; needs CAP_SYS_PTRACE here.
const USERFAULTFD: &[&str] = &["userfaultfd"];
#[rustfmt::skip]
const OBSOLETE: &[&str] = &[
    "_sysctl", "afs_syscall", "bdflush", "getpmsg", "modify_ldt", "nfsservctl", "putpmsg",
    "security", "sysfs", "tuxcall", "uselib", "ustat", "vm86", "vm86old", "vserver",
];

/// The groups allowed whatever the capabilities, with the names of their
/// `@vessel/...` lookups.
const DEFAULT_ALLOWED_GROUPS: &[(&str, &[&str])] = &[
    ("lifecycle", LIFECYCLE),
    ("files", FILES),
    ("xattrs", XATTRS),
    ("io", IO),
    ("memory", MEMORY),
    ("processes", PROCESSES),
    ("credentials", CREDENTIALS),
    ("scheduling", SCHEDULING),
    ("signals", SIGNALS),
    ("time", TIME),
    ("events", EVENTS),
    ("ipc", IPC),
    ("network", NETWORK),
    ("sandboxing", SANDBOXING),
    ("debug", DEBUG),
    ("arch-specific", ARCH_SPECIFIC),
];

/// Denied themes, also available as `@vessel/...` groups.
const DENIED_GROUPS: &[(&str, &[&str])] = &[
    ("mount", MOUNT),
    ("namespaces", NAMESPACES),
    ("modules", MODULES),
    ("legacy-modules", LEGACY_MODULES),
    ("reboot", REBOOT),
    ("kexec", KEXEC),
    ("swap", SWAP),
    ("clock", CLOCK),
    ("keyring", KEYRING),
    ("accounting", ACCOUNTING),
    ("raw-io", RAW_IO),
    ("numa", NUMA),
    ("kernel-tracing", KERNEL_TRACING),
    ("file-handles", FILE_HANDLES),
    ("host-admin", HOST_ADMIN),
    ("chroot", CHROOT),
    ("io-uring", IO_URING),
    ("userfaultfd", USERFAULTFD),
    ("obsolete", OBSOLETE),
];

/// Syscalls the default profile allows when the app keeps a capability.
fn capability_grants() -> Vec<(Capability, &'static [&'static str])> {
    vec![
        (Capability::SYS_ADMIN, MOUNT),
        (Capability::SYS_ADMIN, NAMESPACES),
        (Capability::SYS_ADMIN, KERNEL_TRACING),
        (Capability::SYS_ADMIN, HOST_ADMIN),
        (Capability::SYS_ADMIN, &["name_to_handle_at"]),
        (Capability::SYS_BOOT, REBOOT),
        (Capability::SYS_CHROOT, CHROOT),
        (Capability::SYS_MODULE, MODULES),
        (Capability::SYS_PACCT, ACCOUNTING),
        (Capability::SYS_PTRACE, USERFAULTFD),
        (Capability::SYS_RAWIO, RAW_IO),
        (Capability::SYS_TIME, CLOCK),
        (Capability::SYS_TTY_CONFIG, &["vhangup"]),
        (Capability::SYS_NICE, NUMA),
        (Capability::SYSLOG, &["syslog"]),
        (Capability::BPF, &["bpf"]),
        (Capability::PERFMON, &["perf_event_open"]),
        (Capability::DAC_READ_SEARCH, FILE_HANDLES),
    ]
}

/// Syscalls the default profile denies whatever the capabilities (checked
/// by the tests; no capability grant may include them).
#[cfg(test)]
const ALWAYS_DENIED: &[&[&str]] = &[KEYRING, KEXEC, SWAP, LEGACY_MODULES, IO_URING, OBSOLETE];

/// Vessel's blacklist for appc `seccomp-remove-set`: calls that act on the
/// whole host and that no application in a pod needs.
const VESSEL_DEFAULT_BLACKLIST: &[&[&str]] = &[
    MODULES,
    LEGACY_MODULES,
    REBOOT,
    KEXEC,
    SWAP,
    ACCOUNTING,
    RAW_IO,
    FILE_HANDLES,
    &["_sysctl", "nfsservctl", "uselib", "vm86", "vm86old"],
];

/// Names the default profile allows with conditions; listed in
/// `@docker/default-whitelist` without them.
const CONDITIONAL: &[&str] = &["clone", "clone3", "personality", "socket"];

/// The members of a named group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyscallGroup {
    /// Every syscall (`@appc.io/all`).
    All,
    Syscalls(Vec<&'static str>),
}

fn flatten(lists: &[&[&'static str]]) -> Vec<&'static str> {
    let set: BTreeSet<&'static str> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    set.into_iter().collect()
}

/// Names of every group [`lookup_group`] knows.
pub fn group_names() -> Vec<String> {
    let mut names = vec![
        "@appc.io/all".to_string(),
        "@appc.io/empty".to_string(),
        "@docker/default-blacklist".to_string(),
        "@docker/default-whitelist".to_string(),
        "@vessel/default-blacklist".to_string(),
    ];
    names.extend(
        DEFAULT_ALLOWED_GROUPS
            .iter()
            .chain(DENIED_GROUPS)
            .map(|(n, _)| format!("@vessel/{n}")),
    );
    names
}

/// Looks up a named group:
/// - `@appc.io/all`, `@appc.io/empty`: every syscall, none (appc spec);
/// - `@docker/default-whitelist`: what the default profile allows without
///   extra capabilities (conditionally allowed calls listed plainly);
/// - `@docker/default-blacklist`: what it denies without extra capabilities;
/// - `@vessel/default-blacklist`: host-wide calls no app needs, added to
///   every appc remove-set;
/// - `@vessel/<theme>`: the themed lists the above are built from (see
///   [`group_names`]).
pub fn lookup_group(name: &str) -> Result<SyscallGroup, SeccompError> {
    let group = match name {
        "@appc.io/all" => return Ok(SyscallGroup::All),
        "@appc.io/empty" => Vec::new(),
        "@docker/default-whitelist" => {
            let mut lists: Vec<&[&str]> = DEFAULT_ALLOWED_GROUPS.iter().map(|(_, l)| *l).collect();
            lists.push(CONDITIONAL);
            flatten(&lists)
        }
        "@docker/default-blacklist" => {
            let lists: Vec<&[&str]> = DENIED_GROUPS.iter().map(|(_, l)| *l).collect();
            flatten(&lists)
        }
        "@vessel/default-blacklist" => flatten(VESSEL_DEFAULT_BLACKLIST),
        _ => {
            let theme = name
                .strip_prefix("@vessel/")
                .and_then(|t| {
                    DEFAULT_ALLOWED_GROUPS
                        .iter()
                        .chain(DENIED_GROUPS)
                        .find(|(n, _)| *n == t)
                })
                .ok_or_else(|| SeccompError::UnknownGroup(name.to_string()))?;
            flatten(&[theme.1])
        }
    };
    Ok(SyscallGroup::Syscalls(group))
}

/// What libseccomp makes of a syscall name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolution {
    /// Known to libseccomp (possibly absent on the native architecture).
    Known(ScmpSyscall),
    /// A real syscall the installed libseccomp cannot express.
    TooNew,
}

fn resolve_syscall(name: &str) -> Result<Resolution, SeccompError> {
    match ScmpSyscall::from_name(name) {
        Ok(syscall) => Ok(Resolution::Known(syscall)),
        Err(_) if NEWER_KERNEL_SYSCALLS.contains(&name) => Ok(Resolution::TooNew),
        Err(_) => Err(SeccompError::UnknownSyscall(name.to_string())),
    }
}

/// A set of syscalls named by user input (appc isolators, flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyscallSet {
    /// `@appc.io/all` was named.
    pub all: bool,
    pub syscalls: BTreeSet<String>,
}

/// Expands group names and checks syscall names; the error names the first
/// unknown group or syscall.
pub fn resolve_names<S: AsRef<str>>(names: &[S]) -> Result<SyscallSet, SeccompError> {
    let mut set = SyscallSet::default();
    for name in names.iter().map(AsRef::as_ref) {
        if name.starts_with('@') {
            match lookup_group(name)? {
                SyscallGroup::All => set.all = true,
                SyscallGroup::Syscalls(list) => {
                    set.syscalls.extend(list.into_iter().map(String::from))
                }
            }
        } else {
            resolve_syscall(name)?;
            set.syscalls.insert(name.to_string());
        }
    }
    Ok(set)
}

// ---------------------------------------------------------------------------
// Profiles
// ---------------------------------------------------------------------------

/// Namespace flags of clone(2); creating namespaces needs CAP_SYS_ADMIN
/// and is the usual first step of kernel exploits from containers.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// personality(2) values programs use: Linux, 32-bit Linux, the UNAME26
/// compatibility flag with either, and querying the current value.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The argument holding clone's flags (s390 swaps the first two).
const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// The default profile's architecture: the host's native ABI alone.
fn native_architecture() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

/// The architectures an operator's profile covers: the host's and the compat ABIs its
/// kernel may offer.
fn host_architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(action)
        .build()
        .expect("a syscall rule with names and an action is complete")
}

fn rule_with_arg(
    name: &str,
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSyscall {
    let mut arg = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    if let Some(two) = value_two {
        arg = arg.value_two(two);
    }
    let mut syscall = rule(&[name], LinuxSeccompAction::ScmpActAllow);
    syscall.set_args(Some(vec![arg.build().expect("a complete argument")]));
    syscall
}

/// Vessel's default profile, in the spirit of Docker's: deny with EPERM
/// unless allowed; allow what ordinary programs use; allow more for the
/// capabilities in `retained` (normally the app's bounding set).
pub fn default_profile(retained: CapabilitySet) -> LinuxSeccomp {
    let allowed = flatten(
        &DEFAULT_ALLOWED_GROUPS
            .iter()
            .map(|(_, l)| *l)
            .collect::<Vec<_>>(),
    );
    let mut syscalls = vec![rule(&allowed, LinuxSeccompAction::ScmpActAllow)];

    let sys_admin = retained.contains(Capability::SYS_ADMIN);
    if sys_admin {
        syscalls.push(rule(&["clone", "clone3"], LinuxSeccompAction::ScmpActAllow));
    } else {
        // Plain fork and threads, but no new namespaces.
        syscalls.push(rule_with_arg(
            "clone",
            CLONE_FLAGS_ARG,
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            CLONE_NAMESPACE_FLAGS,
            Some(0),
        ));
        // clone3 passes its flags in memory seccomp cannot read. ENOSYS
        // makes libcs fall back to clone, whose flags are checked above.
        let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        syscalls.push(clone3);
    }
    for &persona in PERSONALITIES {
        syscalls.push(rule_with_arg(
            "personality",
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            persona,
            None,
        ));
    }
    // AF_VSOCK reaches the hypervisor, outside the pod's network namespace.
    syscalls.push(rule_with_arg(
        "socket",
        0,
        LinuxSeccompOperator::ScmpCmpNe,
        libc::AF_VSOCK as u64,
        None,
    ));

    let granted: BTreeSet<&str> = capability_grants()
        .into_iter()
        .filter(|(cap, _)| retained.contains(*cap))
        .flat_map(|(_, names)| names.iter().copied())
        .filter(|name| !allowed.contains(name))
        .collect();
    if !granted.is_empty() {
        syscalls.push(rule(
            &granted.into_iter().collect::<Vec<_>>(),
            LinuxSeccompAction::ScmpActAllow,
        ));
    }

    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(native_architecture())
        .syscalls(syscalls)
        .build()
        .expect("the default profile is complete")
}

/// The two appc seccomp isolators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppcSeccompMode {
    /// `os/linux/seccomp-retain-set`: only the set (plus the calls needed to
    /// exec and exit) is allowed.
    RetainSet,
    /// `os/linux/seccomp-remove-set`: the set (plus
    /// `@vessel/default-blacklist`) is blocked.
    RemoveSet,
}

/// An appc seccomp isolator's set, resolved, and what a call it blocks gets: `errno` (a
/// name such as `ENOTSUP`), or the app killed when it is absent or empty.
fn appc_set<S: AsRef<str>>(
    set: &[S],
    errno: Option<&str>,
) -> Result<(SyscallSet, LinuxSeccompAction, Option<u32>), SeccompError> {
    if set.is_empty() {
        return Err(SeccompError::InvalidSet(
            "an appc seccomp set must not be empty".to_string(),
        ));
    }
    let names = resolve_names(set)?;
    Ok(match errno.filter(|e| !e.is_empty()) {
        Some(name) => (
            names,
            LinuxSeccompAction::ScmpActErrno,
            Some(errno_from_name(name)? as u32),
        ),
        None => (names, LinuxSeccompAction::ScmpActKillProcess, None),
    })
}

/// Builds the profile of an appc seccomp isolator. Blocked calls fail with
/// `errno` (an all-uppercase name such as `ENOTSUP`) or, when it is absent
/// or empty, kill the app with SIGSYS. Returns `None` for a retain-set
/// containing `@appc.io/all`, which opts out of filtering.
pub fn appc_profile<S: AsRef<str>>(
    mode: AppcSeccompMode,
    set: &[S],
    errno: Option<&str>,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    let (names, blocked_action, errno_ret) = appc_set(set, errno)?;
    let mut builder = LinuxSeccompBuilder::default().architectures(host_architectures());
    let listed: Vec<String>;
    let action;
    match mode {
        AppcSeccompMode::RetainSet => {
            if names.all {
                return Ok(None);
            }
            builder = builder.default_action(blocked_action);
            if let Some(errno) = errno_ret {
                builder = builder.default_errno_ret(errno);
            }
            listed = names
                .syscalls
                .into_iter()
                .chain(LIFECYCLE.iter().map(|s| s.to_string()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            action = LinuxSeccompAction::ScmpActAllow;
        }
        AppcSeccompMode::RemoveSet => {
            if names.all {
                return Err(SeccompError::InvalidSet(
                    "@appc.io/all cannot be removed".to_string(),
                ));
            }
            let empty_named = set.iter().any(|s| s.as_ref() == "@appc.io/empty");
            let mut blocked: BTreeSet<String> = if empty_named {
                // The spec: @appc.io/empty masks every other value.
                BTreeSet::new()
            } else {
                names.syscalls
            };
            blocked.extend(
                flatten(VESSEL_DEFAULT_BLACKLIST)
                    .into_iter()
                    .map(String::from),
            );
            builder = builder.default_action(LinuxSeccompAction::ScmpActAllow);
            listed = blocked.into_iter().collect();
            action = blocked_action;
        }
    }
    let mut syscall = LinuxSyscallBuilder::default().names(listed).action(action);
    if let (AppcSeccompMode::RemoveSet, Some(errno)) = (mode, errno_ret) {
        syscall = syscall.errno_ret(errno);
    }
    let syscall = syscall.build().expect("a complete syscall rule");
    Ok(Some(
        builder
            .syscalls(vec![syscall])
            .build()
            .expect("a complete appc profile"),
    ))
}

/// A profile narrowed by an appc seccomp isolator (see [`narrow_profile`]).
#[derive(Clone, Debug)]
pub struct Narrowed {
    pub profile: LinuxSeccomp,
    /// What a retain-set asked to allow that the base profile does not: still blocked
    /// (`@appc.io/all` among them when it was named).
    pub not_granted: Vec<String>,
}

/// Narrows `base` (the default profile) by an appc seccomp isolator, never allowing a call
/// `base` blocks: what an image may ask for itself, where [`appc_profile`] (which replaces
/// the default) is for the operator.
/// - retain-set: of the calls `base` allows (with its conditions), only those of the set
///   and those needed to exec and exit stay allowed; `@appc.io/all` keeps `base` whole.
/// - remove-set: the set, plus `@vessel/default-blacklist`, is blocked as well.
///
/// Calls the isolator blocks fail with `errno` or, when it is absent or empty, kill the
/// app (for a retain-set, so do the calls `base` blocks).
pub fn narrow_profile<S: AsRef<str>>(
    base: &LinuxSeccomp,
    mode: AppcSeccompMode,
    set: &[S],
    errno: Option<&str>,
) -> Result<Narrowed, SeccompError> {
    let (names, blocked_action, errno_ret) = appc_set(set, errno)?;
    let allows = |r: &LinuxSyscall| {
        matches!(
            r.action(),
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let rules = base.syscalls().clone().unwrap_or_default();
    let mut profile = base.clone();
    match mode {
        AppcSeccompMode::RetainSet => {
            if names.all {
                return Ok(Narrowed {
                    profile,
                    not_granted: vec!["@appc.io/all".to_string()],
                });
            }
            let granted: BTreeSet<&str> = rules
                .iter()
                .filter(|r| allows(r))
                .flat_map(|r| r.names().iter().map(String::as_str))
                .collect();
            let not_granted = names
                .syscalls
                .iter()
                .filter(|n| !granted.contains(n.as_str()))
                .cloned()
                .collect();
            let keep: BTreeSet<&str> = names
                .syscalls
                .iter()
                .map(String::as_str)
                .chain(LIFECYCLE.iter().copied())
                .collect();
            let narrowed = rules
                .into_iter()
                .filter_map(|mut r| {
                    if allows(&r) {
                        let kept: Vec<String> = r
                            .names()
                            .iter()
                            .filter(|n| keep.contains(n.as_str()))
                            .cloned()
                            .collect();
                        if kept.is_empty() {
                            return None;
                        }
                        r.set_names(kept);
                    }
                    Some(r)
                })
                .collect();
            profile.set_syscalls(Some(narrowed));
            profile.set_default_action(blocked_action);
            profile.set_default_errno_ret(errno_ret);
            Ok(Narrowed {
                profile,
                not_granted,
            })
        }
        AppcSeccompMode::RemoveSet => {
            if names.all {
                return Err(SeccompError::InvalidSet(
                    "@appc.io/all cannot be removed".to_string(),
                ));
            }
            let mut blocked: BTreeSet<String> =
                if set.iter().any(|s| s.as_ref() == "@appc.io/empty") {
                    BTreeSet::new()
                } else {
                    names.syscalls
                };
            blocked.extend(
                flatten(VESSEL_DEFAULT_BLACKLIST)
                    .into_iter()
                    .map(String::from),
            );
            // The blocked calls leave every rule of the base (one rule per call), then get
            // one of their own.
            let mut narrowed: Vec<LinuxSyscall> = rules
                .into_iter()
                .filter_map(|mut r| {
                    let kept: Vec<String> = r
                        .names()
                        .iter()
                        .filter(|n| !blocked.contains(n.as_str()))
                        .cloned()
                        .collect();
                    if kept.is_empty() {
                        return None;
                    }
                    r.set_names(kept);
                    Some(r)
                })
                .collect();
            let mut rule = LinuxSyscallBuilder::default()
                .names(blocked.into_iter().collect::<Vec<_>>())
                .action(blocked_action);
            if let Some(errno) = errno_ret {
                rule = rule.errno_ret(errno);
            }
            narrowed.push(rule.build().expect("a complete syscall rule"));
            profile.set_syscalls(Some(narrowed));
            Ok(Narrowed {
                profile,
                not_granted: Vec::new(),
            })
        }
    }
}

/// The errno value of a name such as `EPERM` or `ENOTSUP`: all of POSIX and
/// C99 and the Linux codes programs commonly test for.
pub fn errno_from_name(name: &str) -> Result<i32, SeccompError> {
    #[rustfmt::skip]
    const ERRNOS: &[(&str, i32)] = &[
        ("E2BIG", libc::E2BIG), ("EACCES", libc::EACCES), ("EADDRINUSE", libc::EADDRINUSE),
        ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL), ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
        ("EAGAIN", libc::EAGAIN), ("EALREADY", libc::EALREADY), ("EBADF", libc::EBADF),
        ("EBADMSG", libc::EBADMSG), ("EBUSY", libc::EBUSY), ("ECANCELED", libc::ECANCELED),
        ("ECHILD", libc::ECHILD), ("ECONNABORTED", libc::ECONNABORTED),
        ("ECONNREFUSED", libc::ECONNREFUSED), ("ECONNRESET", libc::ECONNRESET),
        ("EDEADLK", libc::EDEADLK), ("EDESTADDRREQ", libc::EDESTADDRREQ), ("EDOM", libc::EDOM),
        ("EDQUOT", libc::EDQUOT), ("EEXIST", libc::EEXIST), ("EFAULT", libc::EFAULT),
        ("EFBIG", libc::EFBIG), ("EHOSTDOWN", libc::EHOSTDOWN),
        ("EHOSTUNREACH", libc::EHOSTUNREACH), ("EIDRM", libc::EIDRM), ("EILSEQ", libc::EILSEQ),
        ("EINPROGRESS", libc::EINPROGRESS), ("EINTR", libc::EINTR), ("EINVAL", libc::EINVAL),
        ("EIO", libc::EIO), ("EISCONN", libc::EISCONN), ("EISDIR", libc::EISDIR),
        ("ELOOP", libc::ELOOP), ("EMFILE", libc::EMFILE), ("EMLINK", libc::EMLINK),
        ("EMSGSIZE", libc::EMSGSIZE), ("EMULTIHOP", libc::EMULTIHOP),
        ("ENAMETOOLONG", libc::ENAMETOOLONG), ("ENETDOWN", libc::ENETDOWN),
        ("ENETRESET", libc::ENETRESET), ("ENETUNREACH", libc::ENETUNREACH),
        ("ENFILE", libc::ENFILE), ("ENOBUFS", libc::ENOBUFS), ("ENODATA", libc::ENODATA),
        ("ENODEV", libc::ENODEV), ("ENOENT", libc::ENOENT), ("ENOEXEC", libc::ENOEXEC),
        ("ENOLCK", libc::ENOLCK), ("ENOLINK", libc::ENOLINK), ("ENOMEDIUM", libc::ENOMEDIUM),
        ("ENOMEM", libc::ENOMEM), ("ENOMSG", libc::ENOMSG), ("ENOPROTOOPT", libc::ENOPROTOOPT),
        ("ENOSPC", libc::ENOSPC), ("ENOSR", libc::ENOSR), ("ENOSTR", libc::ENOSTR),
        ("ENOSYS", libc::ENOSYS), ("ENOTBLK", libc::ENOTBLK), ("ENOTCONN", libc::ENOTCONN),
        ("ENOTDIR", libc::ENOTDIR), ("ENOTEMPTY", libc::ENOTEMPTY),
        ("ENOTRECOVERABLE", libc::ENOTRECOVERABLE), ("ENOTSOCK", libc::ENOTSOCK),
        ("ENOTSUP", libc::ENOTSUP), ("ENOTTY", libc::ENOTTY), ("ENXIO", libc::ENXIO),
        ("EOPNOTSUPP", libc::EOPNOTSUPP), ("EOVERFLOW", libc::EOVERFLOW),
        ("EOWNERDEAD", libc::EOWNERDEAD), ("EPERM", libc::EPERM),
        ("EPFNOSUPPORT", libc::EPFNOSUPPORT), ("EPIPE", libc::EPIPE), ("EPROTO", libc::EPROTO),
        ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT), ("EPROTOTYPE", libc::EPROTOTYPE),
        ("ERANGE", libc::ERANGE), ("EREMOTE", libc::EREMOTE), ("EROFS", libc::EROFS),
        ("ESHUTDOWN", libc::ESHUTDOWN), ("ESOCKTNOSUPPORT", libc::ESOCKTNOSUPPORT),
        ("ESPIPE", libc::ESPIPE), ("ESRCH", libc::ESRCH), ("ESTALE", libc::ESTALE),
        ("ETIME", libc::ETIME), ("ETIMEDOUT", libc::ETIMEDOUT),
        ("ETOOMANYREFS", libc::ETOOMANYREFS), ("ETXTBSY", libc::ETXTBSY),
        ("EUSERS", libc::EUSERS), ("EWOULDBLOCK", libc::EWOULDBLOCK), ("EXDEV", libc::EXDEV),
    ];
    ERRNOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| *value)
        .ok_or_else(|| SeccompError::UnknownErrno(name.to_string()))
}

// ---------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// A compiled filter, ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompProgram {
    instructions: Vec<SockFilter>,
    flags: u32,
    skipped: Vec<String>,
}

fn scmp_arch(arch: Arch) -> Result<ScmpArch, SeccompError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::native(),
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    })
}

fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno_ret.map_or(libc::EPERM, |e| e as i32))
        }
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno_ret.map_or(0, |e| e as u16)),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction(
                "SCMP_ACT_NOTIFY".to_string(),
            ))
        }
    })
}

fn lets_through(action: ScmpAction) -> bool {
    matches!(action, ScmpAction::Allow | ScmpAction::Log)
}

fn kernel_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32, SeccompError> {
    let mut bits = 0u32;
    for flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            other => return Err(SeccompError::UnsupportedFlag(other.to_string())),
        } as u32;
    }
    Ok(bits)
}

fn libseccomp_error(
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |source| SeccompError::Libseccomp { what, source }
}

fn conditions(rule: &LinuxSyscall) -> Result<Vec<(usize, ScmpArgCompare)>, SeccompError> {
    let args = rule.args().as_deref().unwrap_or_default();
    args.iter()
        .map(|arg| {
            if arg.index() > 5 {
                return Err(SeccompError::ArgumentIndex(arg.index()));
            }
            let op = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                // OCI puts the mask in `value` and the expected result in `valueTwo`.
                LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(arg.value()),
            };
            let datum = match arg.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
                _ => arg.value(),
            };
            Ok((
                arg.index(),
                ScmpArgCompare::new(arg.index() as u32, op, datum),
            ))
        })
        .collect()
}

/// Compiles `profile` into a BPF program with libseccomp. Run before fork.
pub fn compile(profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let default = scmp_action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(libseccomp_error("create a filter"))?;
    ctx.set_act_badarch(ScmpAction::KillProcess)
        .map_err(libseccomp_error("set the bad-architecture action"))?;
    let architectures = match profile.architectures().as_deref() {
        Some(list) if !list.is_empty() => list.to_vec(),
        _ => host_architectures(),
    };
    for arch in architectures {
        let scmp = scmp_arch(arch)?;
        ctx.add_arch(scmp)
            .map_err(|_| SeccompError::UnsupportedArch(arch.to_string()))?;
    }

    let mut skipped = Vec::new();
    for rule in profile.syscalls().as_deref().unwrap_or_default() {
        let action = scmp_action(rule.action(), rule.errno_ret())?;
        let conditions = conditions(rule)?;
        for name in rule.names() {
            let syscall = match resolve_syscall(name)? {
                Resolution::Known(syscall) => syscall,
                Resolution::TooNew if lets_through(action) || !lets_through(default) => {
                    skipped.push(name.clone());
                    continue;
                }
                Resolution::TooNew => return Err(SeccompError::SyscallTooNew(name.clone())),
            };
            if action == default {
                // libseccomp refuses rules that change nothing.
                continue;
            }
            add_rule(&mut ctx, action, syscall, &conditions)
                .map_err(libseccomp_error(format!("add a rule for {name}")))?;
        }
    }
    let instructions = export(&ctx)?;
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong(instructions.len()));
    }
    skipped.sort();
    skipped.dedup();
    Ok(SeccompProgram {
        instructions,
        flags: kernel_flags(profile.flags().as_deref().unwrap_or_default())?,
        skipped,
    })
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    action: ScmpAction,
    syscall: ScmpSyscall,
    conditions: &[(usize, ScmpArgCompare)],
) -> Result<(), libseccomp::error::SeccompError> {
    let mut indices: Vec<usize> = conditions.iter().map(|(i, _)| *i).collect();
    indices.sort_unstable();
    indices.dedup();
    let compares: Vec<ScmpArgCompare> = conditions.iter().map(|(_, c)| *c).collect();
    if compares.is_empty() {
        ctx.add_rule(action, syscall)?;
    } else if indices.len() == compares.len() {
        ctx.add_rule_conditional(action, syscall, &compares)?;
    } else {
        // Several conditions on one argument cannot all hold: one rule each.
        for compare in &compares {
            ctx.add_rule_conditional(action, syscall, std::slice::from_ref(compare))?;
        }
    }
    Ok(())
}

/// Exports the filter through a memfd (libseccomp 2.5 has no in-memory export).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, SeccompError> {
    // SAFETY: memfd_create with a static name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"vessel-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SeccompError::Export(std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a new descriptor we own.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(libseccomp_error("export the filter"))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(SeccompError::Export)?;
    if bytes.len() % 8 != 0 {
        return Err(SeccompError::Export(std::io::Error::other(
            "truncated BPF program",
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

const CACHE_MAGIC: &[u8; 8] = b"VSECCMP1";

impl SeccompProgram {
    pub fn instructions(&self) -> &[SockFilter] {
        &self.instructions
    }

    /// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Syscalls left out because the installed libseccomp cannot name them
    /// (see the module docs); callers may warn about them.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Serialises the program for a cache: magic, flags, then the
    /// instructions, in host byte order (a cache is per host).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.instructions.len() * 8);
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&(self.instructions.len() as u32).to_ne_bytes());
        for insn in &self.instructions {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// Reads what [`SeccompProgram::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        let rest = bytes
            .strip_prefix(CACHE_MAGIC.as_slice())
            .ok_or(SeccompError::InvalidCache("bad magic"))?;
        if rest.len() < 8 {
            return Err(SeccompError::InvalidCache("truncated header"));
        }
        let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let flags = word(&rest[0..4]);
        let count = word(&rest[4..8]) as usize;
        let body = &rest[8..];
        if body.len() != count * 8 || count == 0 || count > MAX_INSTRUCTIONS {
            return Err(SeccompError::InvalidCache("bad instruction count"));
        }
        let instructions = body
            .chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: word(&c[4..8]),
            })
            .collect();
        Ok(SeccompProgram {
            instructions,
            flags,
            skipped: Vec::new(),
        })
    }

    /// Installs the filter on the calling thread with seccomp(2) (or prctl
    /// on kernels without it). Async-signal-safe: no allocation.
    ///
    /// The kernel requires no_new_privs or CAP_SYS_ADMIN. Load it as the
    /// last step before execve (after capabilities and the user switch, so
    /// the filter need not allow those calls), except when no_new_privs is
    /// off and CAP_SYS_ADMIN is being dropped: then load it before dropping.
    pub fn load(&self) -> Result<(), Errno> {
        let program = libc::sock_fprog {
            len: self.instructions.len() as libc::c_ushort,
            filter: self.instructions.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `program` points at our instructions, laid out as
        // `struct sock_filter`; the kernel copies them during the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &program as *const libc::sock_fprog,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let errno = Errno::last();
        if errno != Errno::ENOSYS || self.flags != 0 {
            return Err(errno);
        }
        // SAFETY: as above, through the older prctl interface.
        let ret = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        Errno::result(ret).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed_unconditionally(profile: &LinuxSeccomp) -> BTreeSet<String> {
        profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().iter().cloned())
            .collect()
    }

    fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn every_listed_name_is_a_real_syscall() {
        let lists = DEFAULT_ALLOWED_GROUPS
            .iter()
            .chain(DENIED_GROUPS)
            .flat_map(|(_, l)| l.iter())
            .chain(CONDITIONAL);
        for name in lists {
            resolve_syscall(name).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn allowed_and_denied_groups_do_not_overlap() {
        let allowed = lookup_group("@docker/default-whitelist").unwrap();
        let denied = lookup_group("@docker/default-blacklist").unwrap();
        let (SyscallGroup::Syscalls(allowed), SyscallGroup::Syscalls(denied)) = (allowed, denied)
        else {
            panic!("lists expected");
        };
        for name in &denied {
            assert!(!allowed.contains(name), "{name} both allowed and denied");
        }
        for name in ["read", "write", "execve", "clone", "socket"] {
            assert!(allowed.contains(&name), "{name}");
        }
        for name in [
            "mount",
            "unshare",
            "keyctl",
            "kexec_load",
            "bpf",
            "io_uring_setup",
        ] {
            assert!(denied.contains(&name), "{name}");
        }
    }

    #[test]
    fn default_profile_without_extra_capabilities() {
        let profile = default_profile(CapabilitySet::docker_default());
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(libc::EPERM as u32));
        let allowed = allowed_unconditionally(&profile);
        for name in ["read", "openat", "getpid", "futex", "chroot", "ptrace"] {
            assert!(allowed.contains(name), "{name}");
        }
        for name in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "kexec_load",
            "reboot",
            "clone",
            "bpf",
        ] {
            assert!(!allowed.contains(name), "{name}");
        }
        let clone = rules_for(&profile, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(arg.value(), 0x7e02_0000);
        assert_eq!(arg.value_two(), Some(0));
        let clone3 = rules_for(&profile, "clone3");
        assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
        assert_eq!(
            rules_for(&profile, "personality").len(),
            PERSONALITIES.len()
        );
        let socket = rules_for(&profile, "socket")[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (socket.op(), socket.value()),
            (LinuxSeccompOperator::ScmpCmpNe, 40)
        );
    }

    #[test]
    fn retained_capabilities_widen_the_default_profile() {
        let caps =
            CapabilitySet::parse(["SYS_ADMIN", "SYS_TIME", "SYS_MODULE", "SYS_PTRACE"]).unwrap();
        let profile = default_profile(caps);
        let allowed = allowed_unconditionally(&profile);
        for name in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "clock_settime",
            "init_module",
            "userfaultfd",
        ] {
            assert!(allowed.contains(name), "{name}");
        }
        // Never, whatever the capabilities.
        for name in ["keyctl", "kexec_load", "io_uring_setup", "chroot"] {
            assert!(!allowed.contains(name), "{name}");
        }
        assert!(rules_for(&profile, "clone")
            .iter()
            .all(|r| r.args().is_none()));
        let everything = allowed_unconditionally(&default_profile(CapabilitySet::all()));
        for name in ALWAYS_DENIED.iter().flat_map(|l| l.iter()) {
            assert!(!everything.contains(*name), "{name}");
        }
    }

    #[test]
    fn group_lookup_and_name_errors() {
        assert_eq!(lookup_group("@appc.io/all").unwrap(), SyscallGroup::All);
        assert_eq!(
            lookup_group("@appc.io/empty").unwrap(),
            SyscallGroup::Syscalls(vec![])
        );
        assert_eq!(
            lookup_group("@vessel/keyring").unwrap(),
            SyscallGroup::Syscalls(vec!["add_key", "keyctl", "request_key"])
        );
        for name in group_names() {
            lookup_group(&name).unwrap();
        }
        let err = lookup_group("@docker/default-whitlist").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown syscall group \"@docker/default-whitlist\""
        );
        let err = resolve_names(&["read", "mkdri"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown syscall \"mkdri\"");
        let set = resolve_names(&["@vessel/reboot", "mseal", "arm_fadvise64_64"]).unwrap();
        assert!(!set.all);
        assert_eq!(set.syscalls.len(), 3);
        assert!(resolve_names(&["@appc.io/all"]).unwrap().all);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_from_name("EPERM").unwrap(), 1);
        assert_eq!(errno_from_name("ENOTSUP").unwrap(), libc::EOPNOTSUPP);
        assert_eq!(errno_from_name("EILSEQ").unwrap(), libc::EILSEQ);
        assert_eq!(
            errno_from_name("eperm").unwrap_err().to_string(),
            "unknown errno name \"eperm\""
        );
    }

    #[test]
    fn appc_isolators() {
        assert_eq!(
            appc_profile(AppcSeccompMode::RetainSet, &["@appc.io/all", "read"], None).unwrap(),
            None
        );
        let retain = appc_profile(
            AppcSeccompMode::RetainSet,
            &["read", "write"],
            Some("EACCES"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(retain.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(retain.default_errno_ret(), Some(libc::EACCES as u32));
        let names = retain.syscalls().as_ref().unwrap()[0].names();
        assert!(names.contains(&"execve".to_string()) && names.contains(&"read".to_string()));

        let remove = appc_profile(AppcSeccompMode::RemoveSet, &["mkdir"], None)
            .unwrap()
            .unwrap();
        assert_eq!(remove.default_action(), LinuxSeccompAction::ScmpActAllow);
        let rule = &remove.syscalls().as_ref().unwrap()[0];
        assert_eq!(rule.action(), LinuxSeccompAction::ScmpActKillProcess);
        assert!(rule.names().contains(&"mkdir".to_string()));
        assert!(rule.names().contains(&"kexec_load".to_string()));

        let only_default = appc_profile(
            AppcSeccompMode::RemoveSet,
            &["@appc.io/empty", "mkdir"],
            Some("ENOTSUP"),
        )
        .unwrap()
        .unwrap();
        let rule = &only_default.syscalls().as_ref().unwrap()[0];
        assert!(!rule.names().contains(&"mkdir".to_string()));
        assert_eq!(rule.errno_ret(), Some(libc::EOPNOTSUPP as u32));

        let empty: &[&str] = &[];
        assert!(appc_profile(AppcSeccompMode::RemoveSet, empty, None).is_err());
        assert!(appc_profile(AppcSeccompMode::RemoveSet, &["@appc.io/all"], None).is_err());
        assert!(appc_profile(AppcSeccompMode::RemoveSet, &["mkdri"], None).is_err());
        assert!(appc_profile(AppcSeccompMode::RemoveSet, &["mkdir"], Some("ENOPE")).is_err());
    }

    #[test]
    fn narrowing_never_allows_what_the_base_denies() {
        let base = default_profile(CapabilitySet::docker_default());
        let all =
            narrow_profile(&base, AppcSeccompMode::RetainSet, &["@appc.io/all"], None).unwrap();
        assert_eq!(all.profile, base);
        assert_eq!(all.not_granted, ["@appc.io/all"]);

        let retain = narrow_profile(
            &base,
            AppcSeccompMode::RetainSet,
            &["read", "unshare", "keyctl", "clone"],
            Some("EACCES"),
        )
        .unwrap();
        assert_eq!(retain.not_granted, ["keyctl", "unshare"]);
        let p = &retain.profile;
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(libc::EACCES as u32));
        let allowed = allowed_unconditionally(p);
        assert!(allowed.contains("read") && allowed.contains("execve"));
        for name in ["write", "unshare", "keyctl", "mount"] {
            assert!(!allowed.contains(name), "{name}");
        }
        // clone keeps its condition: no new namespaces.
        let clone = rules_for(p, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_some());
        compile(p).unwrap();

        let remove = narrow_profile(&base, AppcSeccompMode::RemoveSet, &["mkdir"], None)
            .unwrap()
            .profile;
        assert_eq!(remove.default_action(), base.default_action());
        let allowed = allowed_unconditionally(&remove);
        assert!(!allowed.contains("mkdir") && allowed.contains("read"));
        assert!(!allowed.contains("unshare"));
        let rule = remove.syscalls().as_ref().unwrap().last().unwrap();
        assert_eq!(rule.action(), LinuxSeccompAction::ScmpActKillProcess);
        assert!(rule.names().contains(&"mkdir".to_string()));
        compile(&remove).unwrap();

        let empty: &[&str] = &[];
        assert!(narrow_profile(&base, AppcSeccompMode::RetainSet, empty, None).is_err());
        assert!(
            narrow_profile(&base, AppcSeccompMode::RemoveSet, &["@appc.io/all"], None).is_err()
        );
        assert!(narrow_profile(&base, AppcSeccompMode::RetainSet, &["mkdri"], None).is_err());
    }

    #[test]
    fn the_default_covers_the_native_abi_and_an_operators_profile_the_compat_ones_too() {
        let default = default_profile(CapabilitySet::docker_default());
        assert_eq!(
            default.architectures().as_deref(),
            Some(&native_architecture()[..])
        );
        let operator = appc_profile(AppcSeccompMode::RemoveSet, &["mkdir"], None)
            .unwrap()
            .unwrap();
        assert_eq!(
            operator.architectures().as_deref(),
            Some(&host_architectures()[..])
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host_architectures().len(), 3);
            // One ABI: a third of the instructions to check and compile at each start.
            let one = compile(&default).unwrap().to_bytes().len();
            let mut all = default.clone();
            all.set_architectures(Some(host_architectures()));
            let three = compile(&all).unwrap().to_bytes().len();
            assert!(one * 2 < three, "{one} vs {three} bytes");
        }
    }

    #[test]
    fn default_profile_compiles_for_every_capability_set() {
        for caps in [
            CapabilitySet::EMPTY,
            CapabilitySet::docker_default(),
            CapabilitySet::all(),
        ] {
            let program = compile(&default_profile(caps)).unwrap();
            assert!(program.instructions().len() > 100);
            assert!(program.instructions().len() <= MAX_INSTRUCTIONS);
            assert_eq!(program.flags(), 0);
        }
    }

    #[test]
    fn cache_round_trip() {
        let program = compile(&default_profile(CapabilitySet::docker_default())).unwrap();
        let bytes = program.to_bytes();
        let back = SeccompProgram::from_bytes(&bytes).unwrap();
        assert_eq!(back.instructions(), program.instructions());
        assert_eq!(back.flags(), program.flags());
        assert!(SeccompProgram::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(SeccompProgram::from_bytes(b"nonsense").is_err());
    }

    fn profile(
        default: LinuxSeccompAction,
        names: &[&str],
        action: LinuxSeccompAction,
    ) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(default)
            .syscalls(vec![rule(names, action)])
            .build()
            .unwrap()
    }

    #[test]
    fn compile_rejects_typos_and_unsupported_actions() {
        let typo = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid", "mkdri"],
            LinuxSeccompAction::ScmpActErrno,
        );
        assert_eq!(
            compile(&typo).unwrap_err().to_string(),
            "unknown syscall \"mkdri\""
        );
        let notify = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid"],
            LinuxSeccompAction::ScmpActNotify,
        );
        assert!(matches!(
            compile(&notify),
            Err(SeccompError::UnsupportedAction(_))
        ));
        let mut flagged = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid"],
            LinuxSeccompAction::ScmpActErrno,
        );
        flagged.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
        assert_eq!(
            compile(&flagged).unwrap().flags(),
            libc::SECCOMP_FILTER_FLAG_LOG as u32
        );
        // A rule repeating the default action is dropped, not an error.
        let same = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid"],
            LinuxSeccompAction::ScmpActAllow,
        );
        compile(&same).unwrap();
    }

    #[test]
    fn too_new_syscalls_are_skipped_only_when_safe() {
        let allow_new = profile(
            LinuxSeccompAction::ScmpActErrno,
            &["read", "mseal"],
            LinuxSeccompAction::ScmpActAllow,
        );
        assert_eq!(compile(&allow_new).unwrap().skipped(), ["mseal"]);
        let deny_new = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["mseal"],
            LinuxSeccompAction::ScmpActErrno,
        );
        assert_eq!(
            compile(&deny_new).unwrap_err().to_string(),
            "syscall \"mseal\" is too new for the installed libseccomp, so it cannot be denied"
        );
        let kill_new_over_errno = profile(
            LinuxSeccompAction::ScmpActErrno,
            &["mseal"],
            LinuxSeccompAction::ScmpActKillProcess,
        );
        assert_eq!(compile(&kill_new_over_errno).unwrap().skipped(), ["mseal"]);
    }

    #[test]
    fn same_argument_conditions_become_separate_rules() {
        let mut personality = rule(&["personality"], LinuxSeccompAction::ScmpActAllow);
        let eq = |v: u64| {
            LinuxSeccompArgBuilder::default()
                .index(0usize)
                .op(LinuxSeccompOperator::ScmpCmpEq)
                .value(v)
                .build()
                .unwrap()
        };
        personality.set_args(Some(vec![eq(0), eq(8)]));
        let profile = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![personality])
            .build()
            .unwrap();
        compile(&profile).unwrap();
    }
}
