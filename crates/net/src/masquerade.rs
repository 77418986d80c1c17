//! Masquerading of the built-in `default` network: one rule set for the whole subnet, kept
//! on the host, instead of the ptp plugin's per-pod `ipMasq` rules.
//!
//! Why: with `ipMasq`, every ADD runs iptables eight times (a chain per pod, its rules, a
//! jump from POSTROUTING) and every DEL five times, about two thirds of the plugin's
//! execution, and DEL's runs hold the xtables lock while the next pod's ADD waits for it.
//! The subnet's rules do the same job for every pod at once (as Docker and podman's netavark
//! do per network): a start checks them with one iptables run, in parallel with ADD, and
//! a stop runs none. Links, addresses and routes stay the plugin's.
//!
//! The rules are host-wide, like host-local's leases: every store on the host routes the
//! same subnet through the same host. They are never removed (removing them while another
//! store's pods run would cut those off); they match only the default subnet's sources, so
//! with no pod running they do nothing.
//!
//! A network configuration file named `default` replaces the built-in network, and with it
//! this: such a file masquerades as its plugins say.

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};

use rustix::fs::{flock, FlockOperation};

use crate::error::{NetError, Result};

/// The chain holding the subnet's rules, and the comment on the jump to it.
const CHAIN: &str = "VESSEL-DEFAULT";
const COMMENT: &str = "vessel: masquerade the default network";
/// Serialises the check-then-add of two starts (so the jump is added once).
const LOCK: &str = "/run/lock/vessel-masquerade.lock";
/// Where iptables is looked for when vessel's own PATH has none.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The jump from POSTROUTING for `subnet`, as iptables arguments after `-t nat -C`.
fn jump(subnet: &str) -> [&str; 9] {
    [
        "POSTROUTING",
        "-s",
        subnet,
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        CHAIN,
    ]
}

/// The rules in iptables-restore's form: the chain (created, or emptied and written
/// again: the same two rules whatever was there) and the jump to it. Traffic within the
/// subnet and multicast keep their source, as with ptp's own rules.
fn restore_input(subnet: &str) -> String {
    format!(
        "*nat\n:{CHAIN} - [0:0]\n-A {CHAIN} -d {subnet} -j RETURN\n-A {CHAIN} ! -d 224.0.0.0/4 -j MASQUERADE\n-A POSTROUTING -s {subnet} -m comment --comment \"{COMMENT}\" -j {CHAIN}\nCOMMIT\n"
    )
}

/// Makes sure traffic from `subnet` leaving it is masqueraded. One iptables run when the
/// rules are there; otherwise, under a host-wide lock, one iptables-restore.
pub fn ensure(network: &str, subnet: &str) -> Result<()> {
    if jump_present(network, subnet)? {
        return Ok(());
    }
    let lock = File::create(LOCK).map_err(|e| NetError::io(LOCK, e))?;
    flock(&lock, FlockOperation::LockExclusive).map_err(|e| NetError::io(LOCK, e.into()))?;
    if jump_present(network, subnet)? {
        return Ok(());
    }
    let fail = |reason: String| NetError::Plugin {
        network: network.to_string(),
        plugin: "iptables-restore".into(),
        command: "masquerade",
        reason,
    };
    let mut child = iptables("iptables-restore")
        .args(["--noflush", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    let input = restore_input(subnet);
    let written = child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes());
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for it: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    written.map_err(|e| fail(format!("writing its input: {e}")))
}

/// Whether POSTROUTING jumps to the chain for `subnet` (`iptables -C`: 0 yes, 1 no).
fn jump_present(network: &str, subnet: &str) -> Result<bool> {
    let out = iptables("iptables")
        .args(["-t", "nat", "-C"])
        .args(jump(subnet))
        .arg("--wait")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| NetError::Plugin {
            network: network.to_string(),
            plugin: "iptables".into(),
            command: "masquerade",
            reason: format!("cannot run it: {e}"),
        })?;
    match out.status.code() {
        Some(0) => Ok(true),
        // 1: no such rule; 2 with "does not exist": no such chain yet.
        Some(1) | Some(2) => Ok(false),
        _ => Err(NetError::Plugin {
            network: network.to_string(),
            plugin: "iptables".into(),
            command: "masquerade",
            reason: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }),
    }
}

fn iptables(program: &str) -> Command {
    let mut c = Command::new(program);
    if std::env::var_os("PATH").is_none() {
        c.env("PATH", PATH);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_input_writes_the_chain_and_the_jump_once() {
        let s = restore_input("172.16.28.0/24");
        assert!(s.starts_with("*nat\n:VESSEL-DEFAULT - [0:0]\n"), "{s}");
        assert!(s.contains("-A VESSEL-DEFAULT -d 172.16.28.0/24 -j RETURN\n"));
        assert!(s.contains("-A VESSEL-DEFAULT ! -d 224.0.0.0/4 -j MASQUERADE\n"));
        assert_eq!(s.matches("-A POSTROUTING").count(), 1);
        assert!(s.ends_with("COMMIT\n"));
    }

    #[test]
    fn the_check_names_the_same_jump_as_the_restore() {
        let check = jump("10.1.0.0/24").join(" ");
        let restore = restore_input("10.1.0.0/24");
        let line = restore
            .lines()
            .find(|l| l.starts_with("-A POSTROUTING"))
            .unwrap();
        assert_eq!(line.replace('"', ""), format!("-A {check}"));
    }
}
