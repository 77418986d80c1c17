//! Fault injection: `tests/it/fault/faultwrap.c`, compiled with gcc at test time, runs
//! `vessel` under a seccomp filter whose supervisor fails the Nth write, fsync, rename,
//! mkdir, file creation or unlink on a path under the test's `--dir` (see the C file for why
//! seccomp and not LD_PRELOAD: the binary is static).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use super::{Run, Vessel};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fault/faultwrap.c");

/// The kinds of call the wrapper counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Write,
    Fsync,
    Rename,
    Mkdir,
    /// open, openat, openat2 or creat with O_CREAT.
    Create,
    /// unlink, unlinkat (files and directories) or rmdir.
    Unlink,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Write,
        Kind::Fsync,
        Kind::Rename,
        Kind::Mkdir,
        Kind::Create,
        Kind::Unlink,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Write => "write",
            Kind::Fsync => "fsync",
            Kind::Rename => "rename",
            Kind::Mkdir => "mkdir",
            Kind::Create => "create",
            Kind::Unlink => "unlink",
        }
    }
}

/// Fail the `nth` call of `kind` with `errno` (a name the wrapper knows: EIO, ENOSPC).
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub kind: Kind,
    pub nth: u64,
    pub errno: &'static str,
}

impl Fault {
    /// The message `strerror` gives for the errno, as Rust's io::Error prints it.
    pub fn message(&self) -> &'static str {
        match self.errno {
            "EIO" => "Input/output error",
            "ENOSPC" => "No space left on device",
            other => panic!("no message known for {other}"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind.name(), self.nth, self.errno)
    }
}

/// What the wrapper saw: calls of each kind under `--dir`, and the call it failed.
#[derive(Debug, Default)]
pub struct Report {
    pub counts: BTreeMap<String, u64>,
    pub injected: Option<String>,
}

impl Report {
    pub fn count(&self, kind: Kind) -> u64 {
        self.counts.get(kind.name()).copied().unwrap_or(0)
    }

    fn parse(text: &str) -> Report {
        let mut r = Report::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("injected ") {
                r.injected = Some(rest.to_string());
            } else if let Some((k, n)) = line.split_once(' ') {
                r.counts.insert(k.to_string(), n.parse().unwrap());
            }
        }
        r
    }
}

/// The compiled wrapper, in a directory of its own.
pub struct FaultWrap {
    dir: tempfile::TempDir,
}

impl FaultWrap {
    /// Compiles faultwrap.c with gcc.
    pub fn build() -> FaultWrap {
        let dir = tempfile::Builder::new()
            .prefix("vessel-test-faultwrap-")
            .tempdir()
            .unwrap();
        let out = Command::new("gcc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(dir.path().join("faultwrap"))
            .arg(SOURCE)
            .output()
            .expect("running gcc (the fault-injection tests compile their wrapper)");
        assert!(
            out.status.success(),
            "gcc {SOURCE}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        FaultWrap { dir }
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("faultwrap")
    }

    /// Runs `vessel ARGS` under the wrapper, counting calls under `v.dir()` and failing
    /// the one `fault` names.
    pub fn run(&self, v: &Vessel, fault: Option<Fault>, args: &[&str]) -> (Run, Report) {
        self.run_on(v, fault, None, args)
    }

    /// As [`FaultWrap::run`], counting only calls on paths that contain `only`.
    pub fn run_on(
        &self,
        v: &Vessel,
        fault: Option<Fault>,
        only: Option<&str>,
        args: &[&str],
    ) -> (Run, Report) {
        let report = self.dir.path().join("report");
        let _ = std::fs::remove_file(&report);
        let bin = self.bin();
        let mut c = v.command_via(&[bin.as_path()], args);
        c.env("VESSEL_FAULT_DIR", v.dir())
            .env("VESSEL_FAULT_REPORT", &report);
        match only {
            Some(text) => c.env("VESSEL_FAULT_PATH", text),
            None => c.env_remove("VESSEL_FAULT_PATH"),
        };
        match fault {
            Some(f) => c.env("VESSEL_FAULT", f.to_string()),
            None => c.env_remove("VESSEL_FAULT"),
        };
        let out = c.output().expect("running faultwrap");
        let run = Run {
            command: format!(
                "VESSEL_FAULT={} faultwrap vessel --dir {} {}",
                fault.map(|f| f.to_string()).unwrap_or_default(),
                v.dir().display(),
                args.join(" ")
            ),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let text = std::fs::read_to_string(&report)
            .unwrap_or_else(|e| panic!("no report from faultwrap ({e}):\n{run}"));
        (run, Report::parse(&text))
    }
}

/// Which of `total` calls to fail: all of them when few, else the first three, the last,
/// and evenly spaced ones between, `max` in all.
pub fn picks(total: u64, max: u64) -> Vec<u64> {
    if total <= max {
        return (1..=total).collect();
    }
    let mut v: Vec<u64> = (1..=3.min(max)).collect();
    let rest = max.saturating_sub(v.len() as u64 + 1);
    for i in 1..=rest {
        v.push(3 + i * (total - 3) / (rest + 1));
    }
    v.push(total);
    v.dedup();
    v
}
