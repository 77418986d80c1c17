//! The systemd cgroup driver (`--systemd-cgroup`) against a real systemd: these machines
//! do not run systemd as PID 1, so the test boots Debian's /lib/systemd/systemd as PID 1
//! of a pid and mount namespace of its own (its own /run, and a unit directory holding
//! one empty target so it starts nothing else), talks to it on its private socket from
//! inside those namespaces (nsenter), and stops it after, removing the cgroups it made.
//! Without a systemd, the driver's clear error.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::{output, require_root, Env, Ran, RUNTIME};

const SYSTEMD: &str = "/lib/systemd/systemd";
/// Cgroups a booted systemd makes at each hierarchy's root (it is given no cgroup
/// namespace, so its root is the host's, as a container's systemd without one).
const SYSTEMD_CGROUPS: &[&str] = &["init.scope", "system.slice"];

/// A systemd booted for one test; killed, and its cgroups removed, when dropped.
struct Booted {
    unshare: Child,
    pid: i32,
    _units: tempfile::TempDir,
}

fn cgroup_roots() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split_whitespace().nth(4).map(PathBuf::from))
        .collect()
}

/// rmdir of `dir` and everything below it, children first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Booted {
    fn boot() -> Booted {
        require_root();
        assert!(
            Path::new(SYSTEMD).exists(),
            "{SYSTEMD} (is Debian's systemd package installed?)"
        );
        for root in cgroup_roots() {
            for name in SYSTEMD_CGROUPS {
                assert!(
                    !root.join(name).exists(),
                    "{} exists: another systemd runs here",
                    root.join(name).display()
                );
            }
        }
        let units = tempfile::tempdir().unwrap();
        std::fs::write(
            units.path().join("vessel-test.target"),
            "[Unit]\nDescription=vessel-runtime systemd driver test\n",
        )
        .unwrap();
        let script = format!(
            "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /etc/systemd/system && \
             cp {}/vessel-test.target /etc/systemd/system/ && \
             exec env -i container=vessel-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
             {SYSTEMD} --system --unit=vessel-test.target --log-level=warning",
            units.path().display()
        );
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--propagation",
                "private",
            ])
            .args(["/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            let pid = std::fs::read_to_string(&children)
                .ok()
                .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()));
            if let Some(pid) = pid {
                break pid;
            }
            assert!(Instant::now() < deadline, "unshare made no child");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut booted = Booted {
            unshare,
            pid,
            _units: units,
        };
        // Up once it answers on its private socket.
        loop {
            let up = booted
                .nsenter(&["systemctl", "show", "--property=Version", "--value"])
                .output()
                .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
            if up {
                break;
            }
            if let Ok(Some(status)) = booted.unshare.try_wait() {
                panic!("systemd did not boot: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        booted
    }

    /// A command run in systemd's pid and mount namespaces.
    fn nsenter(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "-p", "--"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `vessel-runtime --systemd-cgroup ARGS` with `env`'s root, beside systemd.
    fn runtime(&self, env: &Env, args: &[&str]) -> Ran {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "-p"])
            // nsenter -m moves to the target's working directory unless told.
            .arg(format!("--wd={}", env.bundle.path().display()))
            .args(["--", RUNTIME, "--root", env.root.path().to_str().unwrap()])
            .arg("--systemd-cgroup")
            .args(args);
        output(cmd, args)
    }

    fn show(&self, unit: &str, property: &str) -> String {
        let out = self
            .nsenter(&[
                "systemctl",
                "show",
                unit,
                &format!("--property={property}"),
                "--value",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        // PID 1 of its pid namespace: everything in the namespace dies with it.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.pid).unwrap(),
            rustix::process::Signal::KILL,
        );
        let _ = self.unshare.wait();
        for root in cgroup_roots() {
            for name in SYSTEMD_CGROUPS {
                remove_tree(&root.join(name));
            }
        }
    }
}

#[test]
fn systemd_scope_holds_the_container_with_its_limits() {
    let sd = Booted::boot();
    let env = Env::new(&["/bin/sleep", "300"]);
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = "system.slice:vessel-test:c1".into();
        c["linux"]["resources"] = serde_json::json!({
            "memory": {"limit": 64 << 20},
            "pids": {"limit": 100},
            "devices": [{"allow": false, "access": "rwm"}]
        });
    });
    let unit = "vessel-test-c1.scope";
    sd.runtime(&env, &["run", "--detach", "c1"]).ok();
    assert_eq!(sd.show(unit, "ActiveState"), "active");
    assert_eq!(
        sd.show(unit, "ControlGroup"),
        "/system.slice/vessel-test-c1.scope"
    );
    assert_eq!(sd.show(unit, "Delegate"), "yes");
    assert_eq!(sd.show(unit, "TasksMax"), "100");
    assert_eq!(sd.show(unit, "DevicePolicy"), "strict");
    let state: serde_json::Value =
        serde_json::from_str(&sd.runtime(&env, &["state", "c1"]).ok().stdout).unwrap();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap().to_string();
    // The container's process (pid as systemd's namespace numbers it) is in the scope.
    let cgroups = sd
        .nsenter(&["cat", &format!("/proc/{pid}/cgroup")])
        .output()
        .unwrap();
    let cgroups = String::from_utf8_lossy(&cgroups.stdout).into_owned();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let memory_dir = if v2 {
        PathBuf::from("/sys/fs/cgroup/system.slice/vessel-test-c1.scope")
    } else {
        PathBuf::from("/sys/fs/cgroup/memory/system.slice/vessel-test-c1.scope")
    };
    let limit_file = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let limit = || {
        std::fs::read_to_string(memory_dir.join(limit_file))
            .unwrap()
            .trim()
            .to_string()
    };
    for line in cgroups.lines().filter(|l| {
        v2 || [
            ":memory:",
            ":pids:",
            ":devices:",
            ":freezer:",
            ":name=systemd:",
        ]
        .iter()
        .any(|c| l.contains(c))
    }) {
        assert!(
            line.ends_with("/system.slice/vessel-test-c1.scope"),
            "{line} in\n{cgroups}"
        );
    }
    assert_eq!(limit(), (64u64 << 20).to_string());
    // ps and pause work on the unit's cgroup.
    let ps = sd.runtime(&env, &["ps", "--format", "json", "c1"]).ok();
    assert!(ps.stdout.contains(&pid), "{}", ps.shown);
    sd.runtime(&env, &["pause", "c1"]).ok();
    let state = sd.runtime(&env, &["state", "c1"]).ok();
    assert!(state.stdout.contains("\"paused\""), "{}", state.shown);
    sd.runtime(&env, &["resume", "c1"]).ok();

    // update: the property and the file; systemd applying the unit again keeps the
    // devices closed.
    sd.runtime(&env, &["update", "--memory", "128m", "c1"]).ok();
    let memory_property = if v2 { "MemoryMax" } else { "MemoryLimit" };
    assert_eq!(sd.show(unit, memory_property), (128u64 << 20).to_string());
    assert_eq!(limit(), (128u64 << 20).to_string());
    if !v2 {
        let list = std::fs::read_to_string(
            "/sys/fs/cgroup/devices/system.slice/vessel-test-c1.scope/devices.list",
        )
        .unwrap();
        assert!(!list.contains("a *:* rwm"), "devices opened: {list}");
        assert!(list.contains("c 1:3 rwm"), "{list}");
    }

    sd.runtime(&env, &["kill", "--all", "c1", "KILL"]).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sd
        .runtime(&env, &["state", "c1"])
        .ok()
        .stdout
        .contains("stopped")
    {
        assert!(Instant::now() < deadline, "c1 did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    sd.runtime(&env, &["delete", "c1"]).ok();
    assert_ne!(sd.show(unit, "ActiveState"), "active");
    assert!(!memory_dir.exists(), "{} is left", memory_dir.display());
    assert!(!env.root.path().join("c1").exists());
    // delete of a container whose unit is gone already is fine. (Killed first: the
    // container's init ignores the SIGTERM of systemd's stop, which would wait 90 s.)
    sd.runtime(&env, &["run", "--detach", "c1"]).ok();
    sd.runtime(&env, &["kill", "c1", "KILL"]).ok();
    sd.nsenter(&["systemctl", "stop", unit]).status().unwrap();
    assert_ne!(sd.show(unit, "ActiveState"), "active");
    sd.runtime(&env, &["delete", "--force", "c1"]).ok();
    assert!(!env.root.path().join("c1").exists());
}

#[test]
fn systemd_cgroup_without_systemd_is_a_clear_error() {
    let env = Env::new(&["/bin/true"]);
    // A /run of its own: no system bus, no systemd private socket, whatever the host.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /run && exec {RUNTIME} --root {} --systemd-cgroup run c1",
            env.root.path().display()
        ))
        .current_dir(env.bundle.path());
    output(cmd, &["--systemd-cgroup", "run", "c1"])
        .fails_with("--systemd-cgroup: no systemd answers here")
        .fails_with("/run/systemd/private");
    env.assert_gone("c1");
}

#[test]
fn systemd_cgroups_path_in_the_wrong_form_is_refused() {
    let env = Env::new(&["/bin/true"]);
    env.edit_config(|c| c["linux"]["cgroupsPath"] = "/not/systemd/form".into());
    // (The log line escapes the quotes of runc's text.)
    env.run(&["--systemd-cgroup", "run", "c1"])
        .fails_with("expected cgroupsPath to be of format")
        .fails_with("slice:prefix:name")
        .fails_with("/not/systemd/form");
    env.edit_config(|c| c["linux"]["cgroupsPath"] = "a--b.slice:p:c1".into());
    env.run(&["--systemd-cgroup", "run", "c1"])
        .fails_with("invalid slice name")
        .fails_with("empty part between '-' separators");
    env.assert_gone("c1");
}
