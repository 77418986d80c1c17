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
//!
//! | file | holds |
//! |---|---|
//! | `tables.rs` | data: the syscall lists by theme, the named groups, architectures, errno names |
//! | `profiles.rs` | Vessel's default profile and appc's isolators, as OCI profiles |
//! | `compiler.rs` | an OCI profile to BPF, with libseccomp |
//! | `program.rs` | a compiled filter: its bytes (the cache's and the hand-over's) and loading it |

mod compiler;
mod profiles;
mod program;
mod tables;

pub use compiler::compile;
pub use profiles::{appc_profile, default_profile, narrow_profile, AppcSeccompMode, Narrowed};
pub use program::{SeccompProgram, SockFilter};
pub use tables::{
    errno_from_name, group_names, lookup_group, resolve_names, SyscallGroup, SyscallSet,
    NEWER_KERNEL_SYSCALLS,
};

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
