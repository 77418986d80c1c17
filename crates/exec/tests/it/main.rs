//! exec's one integration test binary: root tests of the primitives on the real kernel.
//! They fail, never pass silently, when not run as root.

mod caps_apply;
mod cgroups_real;
mod seccomp_filters;

/// Fails the test unless it runs as root (scripts/test runs the suite as root).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test needs root (scripts/test runs the suite as root)"
    );
}
