//! The data of seccomp filtering, apart from the logic (as rkt keeps its lists apart):
//! syscall lists by theme, the named groups built from them, what each capability grants,
//! the architectures a filter covers, and errno names.

use std::collections::BTreeSet;

use libseccomp::ScmpSyscall;
use oci_spec::runtime::Arch;

use super::SeccompError;
use crate::caps::Capability;

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
pub(super) const LIFECYCLE: &[&str] = &[
    "execve", "execveat", "exit", "exit_group", "restart_syscall", "rt_sigreturn", "sigreturn",
];

/// Paths, metadata and descriptors.
#[rustfmt::skip]
pub(super) const FILES: &[&str] = &[
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
pub(super) const XATTRS: &[&str] = &[
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat",
    "lgetxattr", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr",
    "removexattr", "removexattrat", "setxattr", "setxattrat",
];

/// Reading, writing, syncing and moving data, including POSIX AIO.
#[rustfmt::skip]
pub(super) const IO: &[&str] = &[
    "_llseek", "arm_fadvise64_64", "arm_sync_file_range", "cachestat", "copy_file_range",
    "fadvise64", "fadvise64_64", "fallocate", "fdatasync", "fsync", "io_cancel", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "lseek",
    "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readv", "sendfile", "sendfile64", "splice", "sync", "sync_file_range", "sync_file_range2",
    "syncfs", "tee", "vmsplice", "write", "writev",
];

/// Address space management.
#[rustfmt::skip]
pub(super) const MEMORY: &[&str] = &[
    "brk", "madvise", "map_shadow_stack", "membarrier", "mincore", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock",
    "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "process_mrelease",
    "remap_file_pages",
];

/// Processes and threads (`clone` and `clone3` are handled apart, with
/// conditions).
#[rustfmt::skip]
pub(super) const PROCESSES: &[&str] = &[
    "arch_prctl", "fork", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "get_robust_list", "get_thread_area", "getcpu", "getpgid", "getpgrp",
    "getpid", "getppid", "getrandom", "getrlimit", "getrusage", "getsid", "gettid",
    "pidfd_open", "prctl", "prlimit64", "rseq", "set_robust_list", "set_thread_area",
    "set_tid_address", "setpgid", "setrlimit", "setsid", "sysinfo", "ugetrlimit", "uname",
    "vfork", "wait4", "waitid", "waitpid",
];

/// User and group ids.
#[rustfmt::skip]
pub(super) const CREDENTIALS: &[&str] = &[
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
];

/// Priorities, affinity and scheduling policy.
#[rustfmt::skip]
pub(super) const SCHEDULING: &[&str] = &[
    "getpriority", "ioprio_get", "ioprio_set", "nice", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    "setpriority",
];

#[rustfmt::skip]
pub(super) const SIGNALS: &[&str] = &[
    "alarm", "kill", "pause", "pidfd_send_signal", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal",
    "signalfd", "signalfd4", "sigpending", "sigprocmask", "sigsuspend", "tgkill", "tkill",
];

/// Reading clocks, sleeping and timers. `adjtimex` only reads without
/// CAP_SYS_TIME, which the kernel checks itself.
#[rustfmt::skip]
pub(super) const TIME: &[&str] = &[
    "adjtimex", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep",
    "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
];

/// Waiting for events on descriptors.
#[rustfmt::skip]
pub(super) const EVENTS: &[&str] = &[
    "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "poll", "ppoll",
    "ppoll_time64", "pselect6", "pselect6_time64", "select",
];

/// Pipes, System V and POSIX IPC (namespaced per pod).
#[rustfmt::skip]
pub(super) const IPC: &[&str] = &[
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "pipe", "pipe2", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat",
    "shmctl", "shmdt", "shmget",
];

/// Sockets (`socket` itself is handled apart, with a condition). On i386,
/// `socketcall` multiplexes these through a pointer seccomp cannot read,
/// so it is allowed whole.
#[rustfmt::skip]
pub(super) const NETWORK: &[&str] = &[
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
    "sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
];

/// Dropping privileges further: nested seccomp filters, Landlock,
/// capability sets (which can only shrink without CAP_SETPCAP).
#[rustfmt::skip]
pub(super) const SANDBOXING: &[&str] = &[
    "capget", "capset", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lsm_get_self_attr", "lsm_list_modules", "seccomp",
];

/// Debugging other processes of the pod. Allowed since Linux 4.8, where
/// ptrace can no longer be used to bypass seccomp; the kernel's ptrace
/// access checks and the pod's pid namespace still apply.
#[rustfmt::skip]
pub(super) const DEBUG: &[&str] = &[
    "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
];

/// Architecture-specific helpers that libcs use.
pub(super) const ARCH_SPECIFIC: &[&str] = &["breakpoint", "cacheflush", "set_tls"];

// What the default profile denies, by theme.
#[rustfmt::skip]
pub(super) const MOUNT: &[&str] = &[
    "fsconfig", "fsmount", "fsopen", "fspick", "listmount", "mount", "mount_setattr",
    "move_mount", "open_tree", "open_tree_attr", "pivot_root", "statmount", "umount", "umount2",
];
pub(super) const NAMESPACES: &[&str] = &["setns", "unshare"];
pub(super) const MODULES: &[&str] = &["delete_module", "finit_module", "init_module"];
pub(super) const LEGACY_MODULES: &[&str] = &["create_module", "get_kernel_syms", "query_module"];
pub(super) const REBOOT: &[&str] = &["reboot"];
pub(super) const KEXEC: &[&str] = &["kexec_file_load", "kexec_load"];
pub(super) const SWAP: &[&str] = &["swapoff", "swapon"];
#[rustfmt::skip]
pub(super) const CLOCK: &[&str] = &[
    "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday",
    "stime",
];
/// The kernel keyring is not namespaced.
pub(super) const KEYRING: &[&str] = &["add_key", "keyctl", "request_key"];
pub(super) const ACCOUNTING: &[&str] = &["acct"];
pub(super) const RAW_IO: &[&str] = &["ioperm", "iopl"];
#[rustfmt::skip]
pub(super) const NUMA: &[&str] = &[
    "get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
    "set_mempolicy_home_node",
];
pub(super) const KERNEL_TRACING: &[&str] =
    &["bpf", "fanotify_init", "lookup_dcookie", "perf_event_open"];
/// open_by_handle_at opens any file of a mounted filesystem, escaping the
/// rootfs (the "shocker" breakout).
pub(super) const FILE_HANDLES: &[&str] = &["name_to_handle_at", "open_by_handle_at"];
#[rustfmt::skip]
pub(super) const HOST_ADMIN: &[&str] = &[
    "quotactl", "quotactl_fd", "setdomainname", "sethostname", "syslog", "vhangup",
];
pub(super) const CHROOT: &[&str] = &["chroot"];
/// io_uring runs operations outside seccomp's view and has been a steady
/// source of kernel exploits; programs fall back to ordinary syscalls.
pub(super) const IO_URING: &[&str] = &["io_uring_enter", "io_uring_register", "io_uring_setup"];
/// userfaultfd makes kernel races easy to win; needs CAP_SYS_PTRACE here.
pub(super) const USERFAULTFD: &[&str] = &["userfaultfd"];
#[rustfmt::skip]
pub(super) const OBSOLETE: &[&str] = &[
    "_sysctl", "afs_syscall", "bdflush", "getpmsg", "modify_ldt", "nfsservctl", "putpmsg",
    "security", "sysfs", "tuxcall", "uselib", "ustat", "vm86", "vm86old", "vserver",
];

/// The groups allowed whatever the capabilities, with the names of their
/// `@vessel/...` lookups.
pub(super) const DEFAULT_ALLOWED_GROUPS: &[(&str, &[&str])] = &[
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
pub(super) const DENIED_GROUPS: &[(&str, &[&str])] = &[
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
pub(super) fn capability_grants() -> Vec<(Capability, &'static [&'static str])> {
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
        // Not open_by_handle_at: with a handle (guessable: an inode number) and any
        // descriptor on a filesystem it opens any file there, outside every bind mount
        // ("shocker"). Docker allows it with CAP_DAC_READ_SEARCH; Vessel only when an
        // operator's own profile names it (`--seccomp mode=retain,...`).
        (Capability::DAC_READ_SEARCH, &["name_to_handle_at"]),
    ]
}

/// Syscalls the default profile denies whatever the capabilities (checked
/// by the tests; no capability grant may include them).
#[cfg(test)]
pub(super) const ALWAYS_DENIED: &[&[&str]] = &[
    KEYRING,
    KEXEC,
    SWAP,
    LEGACY_MODULES,
    IO_URING,
    OBSOLETE,
    &["open_by_handle_at"],
];

/// Vessel's blacklist for appc `seccomp-remove-set`: calls that act on the
/// whole host and that no application in a pod needs.
pub(super) const VESSEL_DEFAULT_BLACKLIST: &[&[&str]] = &[
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
pub(super) const CONDITIONAL: &[&str] = &["clone", "clone3", "personality", "socket"];

/// The members of a named group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyscallGroup {
    /// Every syscall (`@appc.io/all`).
    All,
    Syscalls(Vec<&'static str>),
}

pub(super) fn flatten(lists: &[&[&'static str]]) -> Vec<&'static str> {
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
pub(super) enum Resolution {
    /// Known to libseccomp (possibly absent on the native architecture).
    Known(ScmpSyscall),
    /// A real syscall the installed libseccomp cannot express.
    TooNew,
}

pub(super) fn resolve_syscall(name: &str) -> Result<Resolution, SeccompError> {
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

/// Namespace flags of clone(2); creating namespaces needs CAP_SYS_ADMIN
/// and is the usual first step of kernel exploits from containers.
pub(super) const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// personality(2) values programs use: Linux, 32-bit Linux, the UNAME26
/// compatibility flag with either, and querying the current value.
pub(super) const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The argument holding clone's flags (s390 swaps the first two).
pub(super) const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// The default profile's architecture: the host's native ABI alone.
pub(super) fn native_architecture() -> Vec<Arch> {
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
pub(super) fn host_architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
