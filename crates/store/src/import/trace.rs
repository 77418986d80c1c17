//! `VESSEL_TRACE=1` prints when each step of an import ended (stream extracted, tree
//! recorded, synced, committed), in milliseconds since the import's first step, to stderr.
//! It shows where a fetch spends its time without a profiler; off, it costs one load.

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Option<Instant>> = OnceLock::new();

fn origin() -> Option<Instant> {
    *ORIGIN.get_or_init(|| std::env::var_os("VESSEL_TRACE").map(|_| Instant::now()))
}

/// Prints `what` with the time since the first mark, when tracing.
pub fn mark(what: impl FnOnce() -> String) {
    if let Some(t) = origin() {
        eprintln!(
            "[store {:8.3} ms] {}",
            t.elapsed().as_secs_f64() * 1e3,
            what()
        );
    }
}
