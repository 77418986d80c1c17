//! Fuzzing of every parser that reads outside input, on stable Rust.
//!
//! cargo-fuzz needs a nightly compiler; CI builds with stable alone (scripts/deps installs
//! no other toolchain), and a fuzz run must be part of its ordinary `cargo test`. So the
//! targets (`targets.rs`, each a `fn(&[u8])` that must never panic, and that checks
//! what it can about its parser's answer) run under a small driver of our own:
//!
//! - `cargo test -p vessel-fuzz` (so CI) replays the checked-in corpus
//!   (`corpus/<target>/`) and every crash found so far (`regressions/<target>/`), then
//!   mutates corpus entries for a bounded time per target (`VESSEL_FUZZ_SECONDS`,
//!   default 2; a fixed seed unless `VESSEL_FUZZ_SEED` is set), so a run is repeatable.
//! - `scripts/fuzz` builds the same driver with SanitizerCoverage's inline 8-bit
//!   counters (stable rustc flags: `-C passes=sancov-module`); `coverage.rs` then sees
//!   which edges each input reaches, keeps the inputs that reach new ones, and can write
//!   them to the corpus (`VESSEL_FUZZ_GROW=1`). That is coverage-guided fuzzing in the
//!   manner of libFuzzer, for long campaigns off CI.
//!
//! A panic writes the input to `target/fuzz-crashes/<target>/<hash>` before failing the
//! test; a crash found becomes a file in `regressions/<target>/` once fixed.

mod coverage;
mod mutate;
pub mod targets;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use targets::{Target, TARGETS};

/// What a run did, for the test's output and the docs.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub executions: u64,
    /// Inputs replayed from the corpus and the regressions.
    pub replayed: usize,
    /// Inputs kept because they reached new edges (only with coverage).
    pub kept: usize,
    /// Edges reached and edges instrumented (only in an instrumented build).
    pub edges: Option<(usize, usize)>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} executions, {} corpus inputs replayed",
            self.executions, self.replayed
        )?;
        if let Some((hit, total)) = self.edges {
            write!(
                f,
                ", {hit} of {total} instrumented edges reached, {} inputs kept",
                self.kept
            )?;
        }
        Ok(())
    }
}

thread_local! {
    /// The input being run, for the panic hook to save.
    static CURRENT: RefCell<(String, Vec<u8>)> = const { RefCell::new((String::new(), Vec::new())) };
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The checked-in seeds of a target.
pub fn corpus_dir(target: &str) -> PathBuf {
    crate_dir().join("corpus").join(target)
}

/// Inputs that once crashed a target, kept so they never do again.
pub fn regressions_dir(target: &str) -> PathBuf {
    crate_dir().join("regressions").join(target)
}

fn crash_dir(target: &str) -> PathBuf {
    crate_dir().join("../../target/fuzz-crashes").join(target)
}

fn read_dir_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            CURRENT.with(|c| {
                let (target, input) = &*c.borrow();
                if !target.is_empty() {
                    let dir = crash_dir(target);
                    let _ = std::fs::create_dir_all(&dir);
                    let file = dir.join(format!("{:016x}", fnv1a(input)));
                    if std::fs::write(&file, input).is_ok() {
                        eprintln!(
                            "fuzz: target {target} panicked on the input saved at {}",
                            file.display()
                        );
                    }
                }
            });
            previous(info);
        }));
    });
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn execute(target: &Target, input: &[u8]) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.0.clear();
        c.0.push_str(target.name);
        c.1.clear();
        c.1.extend_from_slice(input);
    });
    (target.run)(input);
}

/// How long to mutate, from `VESSEL_FUZZ_SECONDS` (default 2).
pub fn budget_from_env() -> Duration {
    let secs = std::env::var("VESSEL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs.max(0.0))
}

fn seed_from_env(target: &str) -> u64 {
    std::env::var("VESSEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fnv1a(target.as_bytes()))
}

/// Replays `target`'s corpus and regressions, then mutates for `budget`. Panics (failing
/// the caller's test) on the first input the target panics on, having saved it.
pub fn run(target: &Target, budget: Duration) -> Outcome {
    install_panic_hook();
    let mut corpus = read_dir_files(&corpus_dir(target.name));
    let regressions = read_dir_files(&regressions_dir(target.name));
    assert!(
        !corpus.is_empty(),
        "target {} has no corpus in {}",
        target.name,
        corpus_dir(target.name).display()
    );
    let mut outcome = Outcome::default();
    let mut cov = coverage::Feedback::new();
    for input in corpus.iter().chain(&regressions) {
        cov.reset();
        execute(target, input);
        cov.observe();
        outcome.executions += 1;
        outcome.replayed += 1;
    }
    corpus.extend(regressions);
    let grow = std::env::var_os("VESSEL_FUZZ_GROW").is_some();
    let mut rng = mutate::Rng::new(seed_from_env(target.name));
    let deadline = Instant::now() + budget;
    let mut input = Vec::new();
    while Instant::now() < deadline {
        // Check the clock every few executions only: some targets take microseconds.
        for _ in 0..16 {
            let base = &corpus[rng.below(corpus.len())];
            input.clear();
            input.extend_from_slice(base);
            let other = &corpus[rng.below(corpus.len())];
            mutate::mutate(&mut input, other, target.dictionary, &mut rng);
            cov.reset();
            execute(target, &input);
            outcome.executions += 1;
            if cov.observe() {
                outcome.kept += 1;
                if grow {
                    let file = corpus_dir(target.name).join(format!("{:016x}", fnv1a(&input)));
                    let _ = std::fs::write(file, &input);
                }
                corpus.push(input.clone());
            }
        }
    }
    outcome.edges = cov.edges();
    CURRENT.with(|c| c.borrow_mut().0.clear());
    outcome
}
