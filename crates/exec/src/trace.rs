//! `VESSEL_TRACE=1` prints how long each phase of starting and ending a pod took, in
//! milliseconds since the process started, to stderr. For profiling the run path.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

fn start() -> Option<Instant> {
    *START.get_or_init(|| std::env::var_os("VESSEL_TRACE").map(|_| Instant::now()))
}

/// Call early in main so times count from process start.
pub fn init() {
    let _ = start();
}

pub fn mark(what: &str) {
    if let Some(t) = start() {
        eprintln!("[{:8.3} ms] {what}", t.elapsed().as_secs_f64() * 1000.0);
    }
}
