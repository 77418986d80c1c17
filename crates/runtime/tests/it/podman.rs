//! Debian's podman (with its conmon) driving vessel-runtime through `--runtime`: a podman
//! of the test's own (private root, runroot and tmpdir, cgroupfs, no network), a busybox
//! image imported from a tarball.

use std::path::Path;
use std::process::Command;

use crate::kit::{busybox_rootfs, in_terminal, output, require_root, Ran, RUNTIME};

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    const IMAGE: &'static str = "localhost/busybox:test";

    fn new() -> Podman {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        // podman gives a root container nofile and nproc limits above this machine's hard
        // ones (raising them needs CAP_SYS_RESOURCE: runc fails the same way); these are
        // lower.
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n",
        )
        .unwrap();
        let p = Podman { dir };
        let rootfs = p.dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = p.dir.path().join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        p.run(&["import", tar.to_str().unwrap(), Self::IMAGE]).ok();
        p
    }

    fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("timeout");
        // In the foreground: under a terminal, podman sets its modes (run_in_terminal).
        cmd.args(["--foreground", "120", "podman"]);
        for (flag, sub) in [
            ("--root", "root"),
            ("--runroot", "run"),
            ("--tmpdir", "tmp"),
        ] {
            cmd.arg(flag).arg(d.join(sub));
        }
        cmd.args(["--runtime", RUNTIME])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"));
        cmd
    }

    fn run(&self, args: &[&str]) -> Ran {
        output(self.command(args), args)
    }

    /// Under a terminal of its own (script(1)), as a user at a shell.
    fn run_in_terminal(&self, args: &[&str]) -> Ran {
        let cmd = self.command(args);
        let quote =
            |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
        let mut line = format!(
            "CONTAINERS_CONF={} {}",
            quote(self.dir.path().join("containers.conf").as_os_str()),
            quote(cmd.get_program())
        );
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&quote(a));
        }
        output(in_terminal(&line), args)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .command(&["rm", "--all", "--force", "-t", "0"])
            .output();
        let _ = self
            .command(&["pod", "rm", "--all", "--force", "-t", "0"])
            .output();
        // vfs layers are plain directories; the runroot holds nothing mounted once every
        // container is gone.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split_whitespace().nth(4) {
                if Path::new(point).starts_with(self.dir.path()) {
                    let _ = Command::new("umount").arg("-l").arg(point).status();
                }
            }
        }
    }
}

#[test]
fn podman_runs_execs_stops_and_removes() {
    let pm = Podman::new();
    let image = Podman::IMAGE;
    let r = pm.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        "echo hello from vessel; exit 3",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.shown);
    assert_eq!(r.stdout, "hello from vessel\n", "{}", r.shown);
    // A detached container that ends on SIGTERM, exec'd into, stopped, removed.
    let script = "trap 'echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.1; done";
    pm.run(&[
        "run",
        "-d",
        "--name",
        "bg",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        script,
    ])
    .ok();
    let r = pm.run(&[
        "exec",
        "-e",
        "X=1",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "bg",
        "sh",
        "-c",
        "echo $X; id -u; pwd; exit 4",
    ]);
    assert_eq!(r.code, Some(4), "{}", r.shown);
    assert_eq!(r.stdout, "1\n1000\n/tmp\n", "{}", r.shown);
    let ps = pm.run(&["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.stdout.contains("bg Up"), "{}", ps.shown);
    pm.run(&["stop", "-t", "10", "bg"]).ok();
    let inspect = pm
        .run(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "bg",
        ])
        .ok();
    assert_eq!(inspect.stdout.trim(), "exited 0", "{}", inspect.shown);
    let logs = pm.run(&["logs", "bg"]).ok();
    assert_eq!(logs.stdout, "started\ngot TERM\n", "{}", logs.shown);
    pm.run(&["rm", "bg"]).ok();
    let all = pm.run(&["ps", "-a", "-q"]).ok();
    assert!(all.stdout.trim().is_empty(), "{}", all.shown);
}

#[test]
fn podman_pod_of_two_containers() {
    let pm = Podman::new();
    let image = Podman::IMAGE;
    pm.run(&[
        "pod",
        "create",
        "--name",
        "p1",
        "--network",
        "none",
        "--infra-image",
        image,
        "--infra-command",
        "sleep 100000",
    ])
    .ok();
    pm.run(&[
        "run",
        "-d",
        "--pod",
        "p1",
        "--name",
        "a",
        image,
        "sh",
        "-c",
        "echo from-a > /dev/shm/x; sleep 1000",
    ])
    .ok();
    // The second sees the first's IPC namespace (its /dev/shm) and the pod's hostname.
    let mut seen = String::new();
    for _ in 0..50 {
        let r = pm.run(&[
            "run",
            "--rm",
            "--pod",
            "p1",
            image,
            "sh",
            "-c",
            "cat /dev/shm/x; hostname",
        ]);
        seen = r.shown.clone();
        if r.code == Some(0) && r.stdout == "from-a\np1\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen.contains("from-a\np1\n"), "{seen}");
    let pods = pm
        .run(&[
            "pod",
            "ps",
            "--format",
            "{{.Name}} {{.Status}} {{.NumberOfContainers}}",
        ])
        .ok();
    assert_eq!(pods.stdout.trim(), "p1 Running 2", "{}", pods.shown);
    pm.run(&["pod", "rm", "--force", "-t", "0", "p1"]).ok();
}

#[test]
fn podman_run_it_and_exec_it() {
    let pm = Podman::new();
    let image = Podman::IMAGE;
    let r = pm.run_in_terminal(&[
        "run",
        "-it",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        // A moment before the exit: at load 6 once, the container's output never reached
        // podman's terminal (exit code right, output empty); whether the loss is in
        // conmon's attach or in the relay is not settled (see docs/oci-runtime-cli.md).
        "tty; echo in-tty; sleep 0.3; exit 2",
    ]);
    assert_eq!(r.code, Some(2), "{}", r.shown);
    assert!(r.stdout.contains("/dev/pts/0"), "{}", r.shown);
    assert!(r.stdout.contains("in-tty"), "{}", r.shown);
    pm.run(&[
        "run",
        "-d",
        "--name",
        "t",
        "--network",
        "none",
        image,
        "sleep",
        "1000",
    ])
    .ok();
    let r = pm.run_in_terminal(&["exec", "-it", "t", "sh", "-c", "tty; echo exec-tty"]);
    assert_eq!(r.code, Some(0), "{}", r.shown);
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.shown);
    assert!(r.stdout.contains("exec-tty"), "{}", r.shown);
}

/// The host's cgroup directory of `pid` in the v1 hierarchy holding `controller`.
fn v1_cgroup_of(pid: &str, controller: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, names, path) = (f.next()?, f.next()?, f.next()?);
            names.split(',').any(|n| n == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("{controller} not in {text}"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
}

#[test]
fn podman_update_changes_a_running_containers_limits() {
    let pm = Podman::new();
    let image = Podman::IMAGE;
    pm.run(&[
        "run",
        "-d",
        "--name",
        "u",
        "--network",
        "none",
        "--memory",
        "64m",
        image,
        "sleep",
        "1000",
    ])
    .ok();
    let pid = pm
        .run(&["inspect", "--format", "{{.State.Pid}}", "u"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let memory = v1_cgroup_of(&pid, "memory");
    let limit = || std::fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit().trim(), (64u64 << 20).to_string());
    pm.run(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "48m",
        "--cpu-shares",
        "256",
        "--cpuset-cpus",
        "0",
        "u",
    ])
    .ok();
    assert_eq!(limit().trim(), (32u64 << 20).to_string());
    let memsw = std::fs::read_to_string(memory.join("memory.memsw.limit_in_bytes")).unwrap();
    assert_eq!(memsw.trim(), (48u64 << 20).to_string());
    let shares = std::fs::read_to_string(v1_cgroup_of(&pid, "cpu").join("cpu.shares")).unwrap();
    assert_eq!(shares.trim(), "256");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Cpus_allowed_list:\t0\n"), "{status}");
}
