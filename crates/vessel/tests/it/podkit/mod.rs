//! Pod fixtures on top of the common kit: a store holding a busybox ACI, helpers to run
//! pods and read their status, and a guard that stops and removes every pod a test leaves.

pub mod net;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::{Run, Vessel};

pub const IMAGE: &str = "example.com/busybox:1";

pub struct PodEnv {
    pub v: Vessel,
    pub image: String,
}

impl PodEnv {
    /// A fresh `--dir` whose store holds the busybox image.
    pub fn new() -> PodEnv {
        let v = Vessel::new();
        let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
        v.fetch(&aci.path_str());
        PodEnv {
            v,
            image: IMAGE.to_string(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.v.run(args)
    }

    /// `prepare ARGS`, which must succeed: the new pod's UUID.
    pub fn prepare(&self, args: &[&str]) -> String {
        let mut all = vec!["prepare"];
        all.extend_from_slice(args);
        self.v.run(&all).success().stdout.trim().to_string()
    }

    /// `run --rm [pod flags] IMAGE --exec /bin/sh -- -c SCRIPT`.
    pub fn sh(&self, pod_flags: &[&str], script: &str) -> Run {
        self.sh_app(pod_flags, &[], script)
    }

    pub fn sh_app(&self, pod_flags: &[&str], app_flags: &[&str], script: &str) -> Run {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&offline(pod_flags));
        args.extend_from_slice(pod_flags);
        args.push(&self.image);
        args.extend_from_slice(app_flags);
        args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", script]);
        self.v.run(&args)
    }

    /// `run --detach [pod flags] IMAGE --exec ARGV[0] -- ARGV[1..]`: the pod's UUID, once
    /// its app runs.
    pub fn detached(&self, pod_flags: &[&str], argv: &[&str]) -> String {
        let mut args = vec!["run", "--detach"];
        args.extend_from_slice(pod_flags);
        args.extend_from_slice(&[&self.image, "--exec", argv[0], "--"]);
        args.extend_from_slice(&argv[1..]);
        self.v.run(&args).success().stdout.trim().to_string()
    }

    /// Starts `run` and returns the process, with the UUID saved to a file.
    pub fn spawn(&self, pod_flags: &[&str], script: &str) -> (Child, PathBuf) {
        let uuid_file = self
            .v
            .path(&format!("uuid-{}", crate::common::host::unique_name("pod")));
        let mut args = vec![
            "run".to_string(),
            format!("--uuid-file-save={}", uuid_file.display()),
        ];
        args.extend(offline(pod_flags).iter().map(|s| s.to_string()));
        args.extend(pod_flags.iter().map(|s| s.to_string()));
        args.extend([
            self.image.clone(),
            "--exec".into(),
            "/bin/sh".into(),
            "--".into(),
            "-c".into(),
            script.into(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = self.v.command(&refs);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        (c.spawn().expect("spawning vessel run"), uuid_file)
    }

    /// Waits for a UUID file to appear and the pod to be running.
    pub fn wait_running(&self, uuid_file: &std::path::Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(u) = std::fs::read_to_string(uuid_file) {
                let u = u.trim().to_string();
                if !u.is_empty()
                    && self.status(&u)["state"] == "running"
                    && self.status(&u)["apps"]
                        .as_array()
                        .is_some_and(|a| a.iter().all(|x| x.get("pid").is_some()))
                {
                    return u;
                }
            }
            assert!(
                Instant::now() < deadline,
                "pod did not start running in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn status(&self, uuid: &str) -> Value {
        self.v
            .run(&["status", "--format=json", uuid])
            .success()
            .json()
    }

    pub fn list(&self) -> Vec<Value> {
        self.v
            .run(&["list", "--format=json"])
            .success()
            .json()
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The app's exit code as status reports it.
    pub fn app_exit(&self, uuid: &str, app: &str) -> Option<i64> {
        self.status(uuid)["apps"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == app)?["exit_code"]
            .as_i64()
    }
}

impl Drop for PodEnv {
    fn drop(&mut self) {
        for p in self.list() {
            if p["state"] == "running" {
                let _ = self
                    .v
                    .run(&["stop", "--force", p["name"].as_str().unwrap_or("")]);
            }
        }
        let _ = self
            .v
            .run(&["gc", "--grace-period=0s", "--expire-prepared=0s"]);
    }
}

/// `--net=none` unless the flags choose a network: the helpers' pods need none, and a
/// CNI network costs each start and stop the plugins' runs (pod_net tests networks).
fn offline(pod_flags: &[&str]) -> Vec<&'static str> {
    if pod_flags.iter().any(|f| f.starts_with("--net")) {
        Vec::new()
    } else {
        vec!["--net=none"]
    }
}

/// The cgroup directories of a pod on this host, in any hierarchy.
pub fn cgroup_dirs(uuid: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = ent.path().join("vessel").join(uuid);
        if p.exists() {
            out.push(p);
        }
        let p = std::path::Path::new("/sys/fs/cgroup/vessel").join(uuid);
        if p.exists() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Host processes whose command line contains `needle`.
pub fn host_processes(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(ent.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{}: {cmd}", ent.file_name().to_string_lossy()));
            }
        }
    }
    out
}

pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
