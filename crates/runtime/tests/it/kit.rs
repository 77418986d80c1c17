//! The runtime's test kit: a busybox bundle (Debian's busybox-static) and the built
//! `vessel-runtime` run against a --root of the test's own.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_vessel-runtime");

pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (namespaces, cgroups, mounts)"
    );
}

/// One finished invocation.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub shown: String,
}

impl Ran {
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, Some(0), "{}", self.shown);
        self
    }

    /// Failed with status 1, saying `what` on stderr.
    pub fn fails_with(self, what: &str) -> Ran {
        assert_eq!(self.code, Some(1), "{}", self.shown);
        assert!(
            self.stderr.contains(what),
            "want {what:?} in:\n{}",
            self.shown
        );
        self
    }
}

/// A runtime root and a bundle, removed (containers deleted first) when dropped.
pub struct Env {
    pub root: tempfile::TempDir,
    pub bundle: tempfile::TempDir,
}

impl Env {
    pub fn new(args: &[&str]) -> Env {
        require_root();
        let root = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        busybox_rootfs(&bundle.path().join("rootfs"));
        let env = Env { root, bundle };
        env.run(&["spec", "--bundle", env.bundle.path().to_str().unwrap()])
            .ok();
        env.edit_config(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = serde_json::json!(args);
        });
        env
    }

    pub fn config_path(&self) -> PathBuf {
        self.bundle.path().join("config.json")
    }

    pub fn edit_config(&self, change: impl FnOnce(&mut serde_json::Value)) {
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.config_path()).unwrap()).unwrap();
        change(&mut c);
        std::fs::write(self.config_path(), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(RUNTIME);
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd.current_dir(self.bundle.path());
        cmd
    }

    /// Runs to completion. Output goes through files, not pipes: a created container's
    /// process keeps the runtime's stdout and stderr open, as runc's does.
    pub fn run(&self, args: &[&str]) -> Ran {
        output(self.command(args), args)
    }

    pub fn state(&self, id: &str) -> serde_json::Value {
        let r = self.run(&["state", id]).ok();
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Nothing of `id` is left: no state directory, no staging directory, no cgroup.
    pub fn assert_gone(&self, id: &str) {
        assert!(
            !self.root.path().join(id).exists(),
            "{id}'s directory is left"
        );
        assert!(!self.root.path().join(format!(".{id}.creating")).exists());
        for c in [
            "memory", "pids", "freezer", "cpuacct", "cpuset", "cpu", "devices",
        ] {
            let p = Path::new("/sys/fs/cgroup")
                .join(c)
                .join("vessel-runtime")
                .join(id);
            assert!(!p.exists(), "{} is left", p.display());
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root.path()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if !id.starts_with('.') {
                    let _ = self.command(&["delete", "--force", &id]).output();
                }
            }
        }
    }
}

/// `script(1)` running the shell command `line` on a terminal of its own, as a user at a
/// shell would. The shell is fixed (script runs `$SHELL -c`): dash and bash differ in
/// which process ends up in the terminal's foreground group. A command in `line` that
/// sets the terminal's modes must be in that group (`timeout --foreground`), or the kernel
/// stops it with SIGTTOU.
pub fn in_terminal(line: &str) -> Command {
    let mut cmd = Command::new("script");
    cmd.arg("-qec")
        .arg(line)
        .arg("/dev/null")
        .env("SHELL", "/bin/sh");
    cmd
}

/// Runs `cmd` with stdout and stderr in files, waiting only for the command itself.
pub fn output(mut cmd: Command, args: &[&str]) -> Ran {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    ran(
        args,
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        },
    )
}

pub fn ran(args: &[&str], out: Output) -> Ran {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let shown = format!(
        "`vessel-runtime {}` exited with {:?}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
        args.join(" "),
        out.status.code()
    );
    Ran {
        code: out.status.code(),
        stdout,
        stderr,
        shown,
    }
}

/// /bin/busybox with a link per applet, /etc/passwd and /etc/group, /tmp.
pub fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (is busybox-static installed?)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    for d in ["tmp", "root", "home/app"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}
