//! Edge coverage from SanitizerCoverage's inline 8-bit counters, when the build has them
//! (`scripts/fuzz` compiles with `-C passes=sancov-module -C llvm-args=
//! -sanitizer-coverage-inline-8bit-counters`). Each instrumented module registers its
//! counters through `__sanitizer_cov_8bit_counters_init`, defined here as libFuzzer
//! would; an input is worth keeping when some counter lands in a bucket (1, 2, 3, 4-7,
//! 8-15, ...) no earlier input reached. In an ordinary build nothing registers and the
//! feedback is off: the driver then mutates blindly from the corpus.

use std::sync::Mutex;

/// (start, len) of every module's counters.
static REGIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// Called by every instrumented module's constructor, before main.
///
/// # Safety
/// `start..end` must be the module's counter array, as the instrumentation passes it.
#[no_mangle]
pub unsafe extern "C" fn __sanitizer_cov_8bit_counters_init(start: *mut u8, end: *mut u8) {
    let len = (end as usize).saturating_sub(start as usize);
    if len > 0 {
        if let Ok(mut r) = REGIONS.lock() {
            r.push((start as usize, len));
        }
    }
}

/// The PC table the pass may emit alongside; not needed here.
#[no_mangle]
pub extern "C" fn __sanitizer_cov_pcs_init(_start: *const usize, _end: *const usize) {}

pub struct Feedback {
    regions: Vec<(usize, usize)>,
    /// Per counter, the buckets seen so far (bit i: bucket i).
    seen: Vec<u8>,
}

fn bucket(count: u8) -> u8 {
    match count {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4..=7 => 8,
        8..=15 => 16,
        16..=31 => 32,
        32..=127 => 64,
        _ => 128,
    }
}

impl Feedback {
    pub fn new() -> Feedback {
        let regions = REGIONS.lock().map(|r| r.clone()).unwrap_or_default();
        let total = regions.iter().map(|r| r.1).sum();
        Feedback {
            regions,
            seen: vec![0; total],
        }
    }

    fn counters(&self) -> impl Iterator<Item = &[u8]> + '_ {
        // SAFETY: each region is a static counter array registered by the
        // instrumentation; it lives for the whole program. Counters are bumped by
        // instrumented code on this thread only while a target runs, not while we read.
        self.regions
            .iter()
            .map(|&(start, len)| unsafe { std::slice::from_raw_parts(start as *const u8, len) })
    }

    /// Zeroes the counters before an execution.
    pub fn reset(&mut self) {
        for &(start, len) in &self.regions {
            // SAFETY: as in counters(); no target is running.
            unsafe { std::ptr::write_bytes(start as *mut u8, 0, len) };
        }
    }

    /// Notes what the last execution reached; true if anything was new.
    pub fn observe(&mut self) -> bool {
        let mut new = false;
        let mut i = 0;
        let mut seen = std::mem::take(&mut self.seen);
        for region in self.counters() {
            for &c in region {
                let b = bucket(c);
                if b != 0 && seen[i] & b == 0 {
                    seen[i] |= b;
                    new = true;
                }
                i += 1;
            }
        }
        self.seen = seen;
        new
    }

    /// (edges reached so far, edges instrumented), in an instrumented build.
    pub fn edges(&self) -> Option<(usize, usize)> {
        (!self.seen.is_empty()).then(|| {
            (
                self.seen.iter().filter(|&&s| s != 0).count(),
                self.seen.len(),
            )
        })
    }
}
