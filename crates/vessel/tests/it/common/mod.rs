//! The shared test kit: runs the built `vessel` binary against a store of its own, and
//! makes the images tests feed it (busybox root filesystems, umoci layouts, skopeo
//! archives, actool ACIs, and raw hostile tars).
//!
//! Every `Vessel` owns two temporary directories, removed when it is dropped: its `--dir`
//! and a work directory for the test's inputs and outputs.

pub mod aci;
pub mod compress;
pub mod digest;
pub mod encoding;
pub mod faults;
pub mod gpg;
pub mod host;
pub mod httpd;
pub mod jwt;
pub mod oci;
pub mod registry;
pub mod rootfs;
pub mod services;
pub mod strict_json;
pub mod tar;
pub mod token;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

pub const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");

/// A test helper from crates/vessel/examples (built by `cargo test`, or
/// `cargo build --release --examples`): a static program tests run inside pods.
pub fn example(name: &str) -> PathBuf {
    let p = Path::new(VESSEL)
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: `cargo test` builds it, or `cargo build --release --examples`",
        p.display()
    );
    p
}

/// One finished `vessel` invocation.
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics unless the command succeeded.
    pub fn success(self) -> Run {
        assert!(self.status.success(), "expected success:\n{self}");
        self
    }

    /// Panics unless the command failed with exit status 1, the status of a refused
    /// request (not a crash or a signal).
    pub fn failure(self) -> Run {
        assert_eq!(
            self.code(),
            Some(1),
            "expected a refusal with exit status 1:\n{self}"
        );
        self
    }

    /// Panics unless stderr contains every one of `needles`.
    pub fn stderr_names(self, needles: &[&str]) -> Run {
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "expected stderr to mention {n:?}:\n{self}"
            );
        }
        self
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Stdout as JSON, parsed strictly: a key written twice in an object fails the test.
    pub fn json(&self) -> Value {
        strict_json::parse(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not strict JSON ({e}):\n{self}"))
    }
}

/// A summary of a store's content, to compare before and after a refused import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreState {
    pub images: Vec<String>,
    pub layers: Vec<String>,
    pub blobs: Vec<String>,
}

/// The `vessel` binary with a fresh `--dir` of its own.
pub struct Vessel {
    dir: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Default for Vessel {
    fn default() -> Self {
        Vessel::new()
    }
}

impl Vessel {
    pub fn new() -> Vessel {
        // The CLI tests extract images with their owners and run pods: root only. Fail,
        // never pass silently, elsewhere.
        // SAFETY: geteuid has no preconditions.
        assert!(
            unsafe { libc::geteuid() } == 0,
            "the CLI tests need root (scripts/test runs the suite as root)"
        );
        Vessel {
            dir: tempfile::Builder::new()
                .prefix("vessel-test-dir-")
                .tempdir()
                .unwrap(),
            work: tempfile::Builder::new()
                .prefix("vessel-test-work-")
                .tempdir()
                .unwrap(),
        }
    }

    /// The `--dir` given to every command.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--dir`/store: blobs, images, layers, refs, tmp, locks.
    pub fn store(&self) -> PathBuf {
        self.dir().join("store")
    }

    /// A scratch directory for the test's images and outputs.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// A path in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    /// A command ready to spawn (for tests that need the process itself).
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_via(&[], args)
    }

    /// A command that runs `vessel` under `prefix` (a wrapper such as the fault
    /// injector): `PREFIX... vessel --dir DIR ARGS...`.
    pub fn command_via(&self, prefix: &[&Path], args: &[&str]) -> Command {
        let mut c = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(VESSEL);
                c
            }
            None => Command::new(VESSEL),
        };
        c.arg("--dir").arg(self.dir()).args(args);
        c.stdin(Stdio::null());
        c.env_remove("VESSEL_DIR")
            .env_remove("VESSEL_MAX_LAYER_BYTES");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        c.envs(env.iter().copied());
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("running {VESSEL}: {e}"));
        Run {
            command: format!("vessel --dir {} {}", self.dir().display(), args.join(" ")),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `fetch --insecure-options=image --full IMAGE`, which must succeed; returns the
    /// full ID printed.
    pub fn fetch(&self, image: &str) -> String {
        let run = self
            .run(&["fetch", "--insecure-options=image", "--full", image])
            .success();
        let lines = run.stdout_lines();
        assert_eq!(lines.len(), 1, "expected one image ID on stdout:\n{run}");
        lines[0].to_string()
    }

    /// `fetch --insecure-options=image IMAGE`, which must be refused.
    pub fn fetch_refused(&self, image: &str) -> Run {
        self.run(&["fetch", "--insecure-options=image", image])
            .failure()
    }

    pub fn fetch_refused_with_env(&self, image: &str, env: &[(&str, &str)]) -> Run {
        self.run_with_env(&["fetch", "--insecure-options=image", image], env)
            .failure()
    }

    /// `image list --format=json`, parsed.
    pub fn images(&self) -> Vec<Value> {
        let run = self.run(&["image", "list", "--format=json"]).success();
        run.json()
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("image list is not a JSON list:\n{run}"))
    }

    pub fn image_ids(&self) -> Vec<String> {
        self.images()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `image render IMAGE DIR --rootfs-only` into a new directory of the work dir.
    pub fn render(&self, image: &str) -> PathBuf {
        let out = self.path(&host::unique_name("rendered"));
        self.run(&[
            "image",
            "render",
            "--rootfs-only",
            image,
            out.to_str().unwrap(),
        ])
        .success();
        out
    }

    /// `image verify`, which must exit 0 and report nothing.
    pub fn assert_verify_clean(&self) {
        let run = self.run(&["image", "verify"]);
        assert!(
            run.status.success() && run.stdout.trim().is_empty(),
            "expected a sound store:\n{run}"
        );
    }

    fn names_in(&self, sub: &str) -> Vec<String> {
        let dir = self.store().join(sub);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Names of the extracted layers under store/layers.
    pub fn layer_dirs(&self) -> Vec<String> {
        self.names_in("layers")
    }

    /// `sha256/<hex>` and `sha512/<hex>` of every stored blob.
    pub fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = ["sha256", "sha512"]
            .iter()
            .flat_map(|a| {
                self.names_in(&format!("blobs/{a}"))
                    .into_iter()
                    .map(move |n| format!("{a}/{n}"))
            })
            .collect();
        v.sort();
        v
    }

    pub fn image_dirs(&self) -> Vec<String> {
        self.names_in("images")
    }

    pub fn tmp_entries(&self) -> Vec<String> {
        self.names_in("tmp")
    }

    /// After a refused import: no image, no layer, nothing left in tmp/, and a sound store.
    pub fn assert_nothing_stored(&self) {
        assert_eq!(
            self.image_ids(),
            Vec::<String>::new(),
            "a refused image is listed"
        );
        assert_eq!(
            self.image_dirs(),
            Vec::<String>::new(),
            "a refused image has a directory"
        );
        assert_eq!(
            self.layer_dirs(),
            Vec::<String>::new(),
            "a refused image left a layer"
        );
        assert_eq!(
            self.tmp_entries(),
            Vec::<String>::new(),
            "a refused import left temporary files"
        );
        self.assert_verify_clean();
    }

    /// What is in the store now: image IDs, layer directories and blobs.
    pub fn state(&self) -> StoreState {
        StoreState {
            images: self.image_ids(),
            layers: self.layer_dirs(),
            blobs: self.blobs(),
        }
    }

    /// The extracted root of the layer whose directory name is `key`.
    pub fn layer_rootfs(&self, key: &str) -> PathBuf {
        self.store().join("layers").join(key).join("rootfs")
    }
}
