//! net's one integration test binary: the crate driving Debian's real CNI plugins in
//! network namespaces the tests make. They fail, never pass silently, when not run as root.

mod kit;
mod real_plugins;

/// Fails the test unless it runs as root (scripts/test runs the suite as root).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "this test needs root (scripts/test runs the suite as root)"
    );
}
