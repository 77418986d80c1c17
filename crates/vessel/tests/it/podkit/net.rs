//! Networking fixtures: a local configuration directory with networks and plugins of the
//! test's own, subnets no other test on this host uses meanwhile, and what a pod may
//! leave behind on the host, counted by its UUID (CNI's container ID): IPAM leases, NAT
//! rules, pinned network namespaces. Other engineers run pod tests on this host at the
//! same time, so nothing here counts what is not the test's own.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{wait_for, PodEnv};
use crate::common::host::unique_name;

/// host-local's store of leases, shared by every runtime on the host.
pub const LEASES: &str = "/var/lib/cni/networks";

/// A `--local-config` directory holding `net.d/` and `net.d/plugins/`.
pub struct NetConfig {
    pub dir: tempfile::TempDir,
}

impl NetConfig {
    pub fn new() -> NetConfig {
        let dir = tempfile::Builder::new()
            .prefix("vessel-test-config-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("net.d/plugins")).unwrap();
        NetConfig { dir }
    }

    /// `--local-config=DIR`.
    pub fn flag(&self) -> String {
        format!("--local-config={}", self.dir.path().display())
    }

    /// Writes `net.d/<file>`.
    pub fn network(&self, file: &str, config: &str) {
        std::fs::write(self.dir.path().join("net.d").join(file), config).unwrap();
    }

    /// A plugin of the test's own: a shell script in `net.d/plugins`.
    pub fn plugin(&self, name: &str, script: &str) -> PathBuf {
        let p = self.dir.path().join("net.d/plugins").join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// A test network's traces on the host, removed when dropped (even when the test
/// failed): host-local's directory once no lease is left in it, and the bridge a bridge
/// network made.
pub struct NetworkGuard {
    pub name: String,
    pub bridge: Option<String>,
}

impl NetworkGuard {
    pub fn new(name: &str, bridge: Option<&str>) -> NetworkGuard {
        NetworkGuard {
            name: name.to_string(),
            bridge: bridge.map(str::to_string),
        }
    }
}

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        let dir = Path::new(LEASES).join(&self.name);
        // A `run --rm` pod's DEL may still be under way (host-local makes its directory
        // again): wait for the leases to go.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let leases = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok())
                })
                .count();
            if leases == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(b) = &self.bridge {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", b])
                .status();
        }
    }
}

/// A network name unique to the test (CNI names allow `-` and digits).
pub fn network_name(tag: &str) -> String {
    unique_name(tag).replace("vessel-", "vt")
}

/// A /24 locked host-wide for the test's life, never one the host routes already.
pub struct Subnet {
    pub prefix: String,
    _lock: File,
}

impl Subnet {
    pub fn new() -> Subnet {
        use rustix::fs::{flock, FlockOperation};
        let dir = Path::new("/run/vessel-test-subnets");
        std::fs::create_dir_all(dir).unwrap();
        let routes = String::from_utf8(
            std::process::Command::new("ip")
                .args(["-4", "route"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let start = std::process::id() as usize * 13;
        for k in 0..4096usize {
            let n = (start + k * 7) % 4096;
            let prefix = format!("10.{}.{}.", 200 + n / 256, n % 256);
            if routes.contains(&prefix) {
                continue;
            }
            let lock = File::create(dir.join(format!("{prefix}0"))).unwrap();
            if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                return Subnet {
                    prefix,
                    _lock: lock,
                };
            }
        }
        panic!("no free test subnet");
    }

    /// `10.x.y.0/24`.
    pub fn cidr(&self) -> String {
        format!("{}0/24", self.prefix)
    }

    pub fn addr(&self, n: u8) -> String {
        format!("{}{n}", self.prefix)
    }
}

/// host-local leases of `network` held by the pod `uuid`.
pub fn leases(network: &str, uuid: &str) -> Vec<String> {
    std::fs::read_dir(Path::new(LEASES).join(network))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|s| s.contains(uuid)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// NAT rules naming the pod (plugins tag theirs with the container ID).
pub fn nat_rules(uuid: &str) -> Vec<String> {
    let out = std::process::Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(uuid))
        .map(str::to_string)
        .collect()
}

/// Mounts (pinned network namespaces) under a directory of the pod.
pub fn pins(uuid: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(uuid))
        .map(str::to_string)
        .collect()
}

/// A host route to `ip` (ptp adds one per pod).
pub fn host_route(ip: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["route", "show", ip])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// What a pod left on the host, by kind; empty when it left nothing.
pub fn leftovers(uuid: &str, networks: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for n in networks {
        out.extend(
            leases(n, uuid)
                .into_iter()
                .map(|l| format!("lease {n}/{l}")),
        );
    }
    out.extend(nat_rules(uuid).into_iter().map(|r| format!("rule {r}")));
    out.extend(pins(uuid).into_iter().map(|m| format!("mount {m}")));
    out
}

/// Waits (a `run --rm` deletes its pod after returning) until the pod left nothing.
pub fn assert_nothing_left(uuid: &str, networks: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = leftovers(uuid, networks);
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pod {uuid} left behind:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The networks `status` records for a pod.
pub fn networks(env: &PodEnv, uuid: &str) -> Vec<Value> {
    env.status(uuid)["networks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The pod's address on its first network.
pub fn pod_ip(env: &PodEnv, uuid: &str) -> String {
    let nets = networks(env, uuid);
    nets.first()
        .and_then(|n| n["ip"].as_str())
        .unwrap_or_else(|| panic!("pod {uuid} has no address: {nets:?}"))
        .to_string()
}

/// Waits for a file to appear (a marker a fake plugin writes).
pub fn wait_file(path: &Path) {
    wait_for(&path.display().to_string(), Duration::from_secs(30), || {
        path.exists()
    });
}
