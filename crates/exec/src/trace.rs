//! `VESSEL_TRACE=1` prints how long each phase of starting and ending a pod took, in
//! milliseconds since `vessel` started, to stderr. The pod's init, which runs with an empty
//! environment after an exec, gets the origin through its plan.

use std::sync::OnceLock;

static ORIGIN: OnceLock<Option<u64>> = OnceLock::new();

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Call early in main so times count from process start.
pub fn init() {
    let _ = ORIGIN.get_or_init(|| std::env::var_os("VESSEL_TRACE").map(|_| now_ns()));
}

/// The origin to hand to a process that cannot see our environment (None: not tracing).
pub fn origin() -> Option<u64> {
    ORIGIN.get().copied().flatten()
}

/// Adopts an origin handed over by the parent.
pub fn set_origin(origin: Option<u64>) {
    let _ = ORIGIN.set(origin);
}

/// A mark for a moment taken earlier (`now()`), before the origin was known.
pub fn mark_at(what: &str, at_ns: u64) {
    if let Some(Some(t)) = ORIGIN.get() {
        eprintln!(
            "[{:8.3} ms] {what}",
            (at_ns.saturating_sub(*t)) as f64 / 1e6
        );
    }
}

/// Now, for `mark_at`.
pub fn now() -> u64 {
    now_ns()
}

pub fn mark(what: &str) {
    if let Some(Some(t)) = ORIGIN.get() {
        eprintln!(
            "[{:8.3} ms] {what}",
            (now_ns().saturating_sub(*t)) as f64 / 1e6
        );
    }
}
