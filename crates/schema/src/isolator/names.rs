//! Names of the isolators Vessel understands.

pub const RESOURCE_MEMORY: &str = "resource/memory";
pub const RESOURCE_CPU: &str = "resource/cpu";
pub const CAPABILITIES_RETAIN_SET: &str = "os/linux/capabilities-retain-set";
pub const CAPABILITIES_REMOVE_SET: &str = "os/linux/capabilities-remove-set";
pub const SECCOMP_RETAIN_SET: &str = "os/linux/seccomp-retain-set";
pub const SECCOMP_REMOVE_SET: &str = "os/linux/seccomp-remove-set";
pub const NO_NEW_PRIVILEGES: &str = "os/linux/no-new-privileges";
pub const OOM_SCORE_ADJ: &str = "os/linux/oom-score-adj";
pub const CPU_SHARES: &str = "os/linux/cpu-shares";
pub const SELINUX_CONTEXT: &str = "os/linux/selinux-context";
pub const SYSCTL: &str = "os/unix/sysctl";

/// Every name above: each may appear at most once per app or pod.
pub const KNOWN: &[&str] = &[
    RESOURCE_MEMORY,
    RESOURCE_CPU,
    CAPABILITIES_RETAIN_SET,
    CAPABILITIES_REMOVE_SET,
    SECCOMP_RETAIN_SET,
    SECCOMP_REMOVE_SET,
    NO_NEW_PRIVILEGES,
    OOM_SCORE_ADJ,
    CPU_SHARES,
    SELINUX_CONTEXT,
    SYSCTL,
];

/// Pairs that cannot be used together.
pub const CONFLICTS: &[(&str, &str)] = &[
    (CAPABILITIES_RETAIN_SET, CAPABILITIES_REMOVE_SET),
    (SECCOMP_RETAIN_SET, SECCOMP_REMOVE_SET),
];
