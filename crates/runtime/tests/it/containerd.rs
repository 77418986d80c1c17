//! Debian's containerd driving vessel-runtime through its runc shim (containerd-shim-runc-v2
//! with `ctr run --runc-binary`): a containerd of the test's own (private root, state and
//! socket, the CRI plugin off), a busybox OCI image made with umoci and imported.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::kit::{busybox_rootfs, in_terminal, output, require_root, Ran, RUNTIME};

struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
}

impl Containerd {
    fn start() -> Containerd {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{0}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{0}/containerd.sock.ttrpc\"\n",
            d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (scripts/deps installs it)");
        let c = Containerd { dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.ctr(&["version"]).code != Some(0) {
            assert!(
                Instant::now() < deadline,
                "containerd did not come up: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Ran {
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg("ctr")
            .arg("-a")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args);
        output(cmd, args)
    }

    /// A busybox image made with umoci, imported as docker.io/library/busybox:test.
    fn import_busybox(&self) -> &'static str {
        let d = self.dir.path();
        let layout = d.join("layout");
        let umoci = |args: &[&str]| {
            let st = Command::new("umoci").args(args).status().unwrap();
            assert!(st.success(), "umoci {args:?}");
        };
        let image = format!("{}:test", layout.display());
        umoci(&["init", "--layout", layout.to_str().unwrap()]);
        umoci(&["new", "--image", &image]);
        let bundle = d.join("unpacked");
        umoci(&["unpack", "--image", &image, bundle.to_str().unwrap()]);
        busybox_rootfs(&bundle.join("rootfs"));
        umoci(&["repack", "--image", &image, bundle.to_str().unwrap()]);
        umoci(&["config", "--image", &image, "--config.cmd", "sh"]);
        let tar = d.join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ctr(&[
            "images",
            "import",
            "--base-name",
            "docker.io/library/busybox",
            tar.to_str().unwrap(),
        ])
        .ok();
        "docker.io/library/busybox:test"
    }

    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ls = self.ctr(&["task", "ls"]).ok();
            if ls
                .stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains(want))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never {want}:\n{}",
                ls.stdout
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // A failed test leaves tasks: their shims and processes would outlive containerd.
        let tasks = self.ctr(&["task", "ls", "-q"]).stdout;
        for id in tasks.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["task", "delete", "--force", id]);
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // The overlay snapshots stay mounted under the root until unmounted.
        let root = self.dir.path().join("root");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split_whitespace().nth(4) {
                if Path::new(point).starts_with(&root) {
                    let _ = Command::new("umount").arg("-l").arg(point).status();
                }
            }
        }
    }
}

fn runtime() -> PathBuf {
    PathBuf::from(RUNTIME)
}

#[test]
fn ctr_runs_containers_on_vessel_runtime() {
    let ctd = Containerd::start();
    let image = ctd.import_busybox();
    let rt = runtime();
    let rt = rt.to_str().unwrap();
    // A container in the foreground: its output and its status.
    let r = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        rt,
        image,
        "ctr-fg",
        "sh",
        "-c",
        "echo hello from vessel; exit 3",
    ]);
    assert_eq!(r.code, Some(3), "{}\n{}", r.shown, ctd.log());
    assert_eq!(r.stdout, "hello from vessel\n", "{}", r.shown);
    // Its output through a log file.
    let log = ctd.dir.path().join("ctr-log.txt");
    let uri = format!("file://{}", log.display());
    ctd.ctr(&[
        "run",
        "--rm",
        "--log-uri",
        &uri,
        "--runc-binary",
        rt,
        image,
        "ctr-log",
        "echo",
        "logged",
    ])
    .ok();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("logged"), "log file: {text:?}");
    // A detached one: listed, paused, resumed, killed, deleted.
    ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        rt,
        image,
        "ctr-bg",
        "sleep",
        "1000",
    ])
    .ok();
    ctd.wait_status("ctr-bg", "RUNNING");
    let ps = ctd.ctr(&["task", "ps", "ctr-bg"]).ok();
    assert_eq!(ps.stdout.lines().count(), 2, "{}", ps.stdout);
    // A process joining it: its output and status come back through the shim.
    let r = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "ctr-bg",
        "sh",
        "-c",
        "echo in-exec; cat /proc/1/cmdline; exit 6",
    ]);
    assert_eq!(r.code, Some(6), "{}\n{}", r.shown, ctd.log());
    assert_eq!(r.stdout, "in-exec\nsleep\u{0}1000\u{0}", "{}", r.shown);
    ctd.ctr(&["task", "pause", "ctr-bg"]).ok();
    ctd.wait_status("ctr-bg", "PAUSED");
    ctd.ctr(&["task", "resume", "ctr-bg"]).ok();
    ctd.wait_status("ctr-bg", "RUNNING");
    ctd.ctr(&["task", "kill", "-s", "KILL", "ctr-bg"]).ok();
    ctd.wait_status("ctr-bg", "STOPPED");
    ctd.ctr(&["task", "delete", "ctr-bg"]).ok();
    ctd.ctr(&["container", "rm", "ctr-bg"]).ok();
    assert!(!ctd.ctr(&["task", "ls"]).ok().stdout.contains("ctr-bg"));
    assert!(!Path::new("/run/containerd/runc/default/ctr-bg").exists());
}

#[test]
fn ctr_gives_a_terminal() {
    let ctd = Containerd::start();
    let image = ctd.import_busybox();
    let rt = runtime();
    // ctr -t needs a terminal of its own: script(1) gives it one.
    let inner = format!(
        "timeout --foreground 60 ctr -a {} run --rm -t --runc-binary {} {image} ctr-tty sh -c 'tty; echo in-tty'",
        ctd.dir.path().join("containerd.sock").display(),
        rt.display()
    );
    let r = output(in_terminal(&inner), &["script", "ctr run -t"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.shown, ctd.log());
    assert!(r.stdout.contains("/dev/pts/0"), "{}", r.shown);
    assert!(r.stdout.contains("in-tty"), "{}", r.shown);
    // And a process joining a running container on a terminal of its own.
    ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        rt.to_str().unwrap(),
        image,
        "ctr-tty-bg",
        "sleep",
        "1000",
    ])
    .ok();
    ctd.wait_status("ctr-tty-bg", "RUNNING");
    let inner = format!(
        "timeout --foreground 60 ctr -a {} task exec -t --exec-id e2 ctr-tty-bg sh -c 'tty; echo exec-in-tty'",
        ctd.dir.path().join("containerd.sock").display(),
    );
    let r = output(in_terminal(&inner), &["script", "ctr task exec -t"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.shown, ctd.log());
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.shown);
    assert!(r.stdout.contains("exec-in-tty"), "{}", r.shown);
    ctd.ctr(&["task", "kill", "-s", "KILL", "ctr-tty-bg"]).ok();
    ctd.wait_status("ctr-tty-bg", "STOPPED");
    ctd.ctr(&["task", "delete", "ctr-tty-bg"]).ok();
}

/// The runtime handler a Kubernetes node names (docs/kubernetes.md): containerd parses a
/// CRI configuration with a `vessel` handler whose BinaryName is vessel-runtime, and its
/// runc shim, given those options (`BinaryName`, `Root`), runs containers on it.
#[test]
fn a_runtime_handler_with_binary_name() {
    let ctd = Containerd::start();
    let image = ctd.import_busybox();
    let d = ctd.dir.path();
    let state_root = d.join("vessel-runtime-root");
    let options = format!(
        "BinaryName = \"{}\"\nRoot = \"{}\"\nSystemdCgroup = false\n",
        RUNTIME,
        state_root.display()
    );
    // The CRI plugin's view of a node's config.toml, as docs/kubernetes.md writes it.
    let cri = format!(
        "version = 2\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.vessel]\n  \
         runtime_type = \"io.containerd.runc.v2\"\n  \
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.vessel.options]\n    {}",
        options.replace('\n', "\n    ")
    );
    std::fs::write(d.join("cri.toml"), &cri).unwrap();
    let dump = Command::new("containerd")
        .arg("--config")
        .arg(d.join("cri.toml"))
        .args(["config", "dump"])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(
        dump.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.vessel]"),
        "{dump}"
    );
    assert!(
        dump.contains(&format!("BinaryName = \"{RUNTIME}\"")),
        "{dump}"
    );
    // The same options through the shim (what the CRI plugin passes it for that
    // handler: BinaryName and Root): the container is vessel-runtime's, its state under
    // Root, by namespace.
    ctd.ctr(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        RUNTIME,
        "--runc-root",
        state_root.to_str().unwrap(),
        image,
        "ctr-handler",
        "sleep",
        "1000",
    ])
    .ok();
    ctd.wait_status("ctr-handler", "RUNNING");
    let mut state = Command::new(RUNTIME);
    state
        .arg("--root")
        .arg(state_root.join("default"))
        .args(["state", "ctr-handler"]);
    let r = output(state, &["state", "ctr-handler"]).ok();
    assert!(
        r.stdout.contains("\"status\": \"running\"") || r.stdout.contains("\"status\":\"running\""),
        "{}",
        r.shown
    );
    ctd.ctr(&["task", "kill", "-s", "KILL", "ctr-handler"]).ok();
    ctd.wait_status("ctr-handler", "STOPPED");
    ctd.ctr(&["task", "delete", "ctr-handler"]).ok();
    ctd.ctr(&["container", "rm", "ctr-handler"]).ok();
}
