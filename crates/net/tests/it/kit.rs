//! What the real-plugin tests need: network namespaces of their own (`ip netns add`),
//! subnets no other test on this host uses at the same time, names unique to the test,
//! and ways to look at the host (links, NAT rules).

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use ipnet::Ipv4Net;
use net::PluginPaths;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call (CNI container IDs, network names).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn sh(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace made with `ip netns add`, deleted when dropped.
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("vtn");
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns {
            path: PathBuf::from("/run/netns").join(&name),
            name,
        }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, cmd: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }

    pub fn addresses(&self) -> String {
        sh(&["ip", "-n", &self.name, "addr"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A /24 for one test, locked host-wide for its life (tests of other engineers and other
/// test binaries run on this host at the same time): 10.2xx.y.0/24, never one the host
/// already routes.
pub struct Subnet {
    pub net: ipnet::IpNet,
    pub v4: Ipv4Net,
    _lock: File,
}

impl Subnet {
    /// The n-th address of the subnet.
    pub fn addr(&self, n: u8) -> String {
        let o = self.v4.network().octets();
        format!("{}.{}.{}.{n}", o[0], o[1], o[2])
    }
}

pub fn subnet() -> Subnet {
    use rustix::fs::{flock, FlockOperation};
    let dir = PathBuf::from("/run/vessel-test-subnets");
    std::fs::create_dir_all(&dir).unwrap();
    let routes = sh(&["ip", "-4", "route"]);
    let start = std::process::id() as usize;
    for k in 0..4096usize {
        let n = (start + k * 7) % 4096;
        let net: Ipv4Net = format!("10.{}.{}.0/24", 200 + n / 256, n % 256)
            .parse()
            .unwrap();
        let prefix = format!("10.{}.{}.", 200 + n / 256, n % 256);
        if routes.contains(&prefix) {
            continue;
        }
        let lock = File::create(dir.join(net.network().to_string())).unwrap();
        if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
            return Subnet {
                net: net.into(),
                v4: net,
                _lock: lock,
            };
        }
    }
    panic!("no free test subnet");
}

/// The distribution's plugins.
pub fn plugins() -> PluginPaths {
    PluginPaths(vec![PathBuf::from("/usr/lib/cni")])
}

/// NAT rules mentioning `id` (plugins tag theirs with the container ID).
pub fn nat_rules(id: &str) -> Vec<String> {
    sh(&["iptables", "-t", "nat", "-S"])
        .lines()
        .filter(|l| l.contains(id))
        .map(str::to_string)
        .collect()
}

/// Whether a host link of that name exists.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Files of host-local's store for `network` under `data_dir` naming `id`.
pub fn leases(data_dir: &std::path::Path, network: &str, id: &str) -> Vec<String> {
    std::fs::read_dir(data_dir.join(network))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|s| s.contains(id)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
