//! Rootless user-mode networking (issue 14): `--net=slirp4netns`, the rootless default
//! where slirp4netns is installed, with `--port` forwarded by slirp4netns itself. Run by a
//! real user the test makes (see `rootless::User`).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::httpd::{free_port, http_get};
use crate::common::Vessel;
use crate::rootless::User;

/// The user's processes still running (not zombies), as "pid comm", from their own ids and
/// their range.
fn running(u: &User) -> Vec<String> {
    let mine = |uid: u32| uid == u.uid || u.subids.is_some_and(|(s, n)| uid >= s && uid < s + n);
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<i32>().is_err() || !std::fs::metadata(e.path()).is_ok_and(|m| mine(m.uid()))
        {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !stat.is_empty() && !zombie {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            out.push(format!("{name} {}", comm.trim()));
        }
    }
    out
}

fn wait_nothing_running(u: &User) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = running(u);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pod serves HTTP with its port forwarded to 127.0.0.1 of the host; the host reaches
/// it there, and a second pod of the user reaches it through slirp's address of the host's
/// loopback (10.0.2.2). A host port in use is refused before a pod exists. Stop, rm and
/// gc leave nothing running, slirp4netns included, as does a supervisor killed.
#[test]
fn user_mode_network_forwards_ports_between_a_users_pods() {
    let v = Vessel::new();
    let u = User::new(true);
    u.fetch_busybox(&v);
    let port = free_port();
    let forward = format!("--port=tcp:80:127.0.0.1:{port}");
    let uuid = u
        .run(&[
            "run",
            "--detach",
            &forward,
            "example.com/busybox:1",
            "--exec=/bin/sh",
            "--",
            "-c",
            "mkdir -p /www && echo served-by-pod > /www/index.html && exec httpd -f -p 80 -h /www",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    // The network as CNI pods show theirs.
    let status = u.run(&["status", "--format=json", &uuid]).success().json();
    let nets = status["networks"].as_array().cloned().unwrap_or_default();
    assert_eq!(nets.len(), 1, "{status}");
    assert_eq!(nets[0]["netName"], "slirp4netns", "{status}");
    assert_eq!(nets[0]["ip"], "10.0.2.100", "{status}");
    assert_eq!(nets[0]["gateway"], "10.0.2.2", "{status}");
    let list = u.run(&["list"]).success();
    assert!(list.stdout.contains("slirp4netns:ip4=10.0.2.100"), "{list}");

    assert!(
        http_get(&format!("127.0.0.1:{port}"), "/", Duration::from_secs(5))
            .contains("served-by-pod")
    );
    // The default network of a rootless pod (no --net): the same user-mode network.
    let r = u
        .run(&[
            "run",
            "--rm",
            "example.com/busybox:1",
            "--exec=/bin/sh",
            "--",
            "-c",
            &format!(
                "cat /etc/resolv.conf; for i in 1 2 3 4 5; do wget -q -O- http://10.0.2.2:{port}/ && exit 0; sleep 0.2; done; exit 1"
            ),
        ])
        .success();
    assert!(r.stdout.contains("nameserver 10.0.2.3"), "{r}");
    assert!(r.stdout.contains("served-by-pod"), "{r}");

    // The port is the first pod's: refused before a second pod exists.
    let before = u.run(&["list", "--format=json"]).success().json();
    u.run(&[
        "run",
        &forward,
        "--net=slirp4netns",
        "example.com/busybox:1",
        "--exec=/bin/true",
    ])
    .failure()
    .stderr_names(&[&port.to_string(), "already in use"]);
    let after = u.run(&["list", "--format=json"]).success().json();
    assert_eq!(
        before.as_array().map(Vec::len),
        after.as_array().map(Vec::len),
        "{after}"
    );

    u.run(&["stop", &uuid]).success();
    let mut state = Value::Null;
    for _ in 0..50 {
        state = u.run(&["status", "--format=json", &uuid]).success().json();
        if state["state"] == "exited" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state["state"], "exited", "{state}");
    wait_nothing_running(&u);
    // The port is free again: slirp4netns let it go.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the forwarded port is free again");

    // A supervisor killed: slirp4netns ends with it (its exit fd closes).
    let uuid2 = u
        .run(&[
            "run",
            "--detach",
            "example.com/busybox:1",
            "--exec=/bin/sleep",
            "--",
            "600",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let slirps: Vec<String> = running(&u)
        .into_iter()
        .filter(|p| p.ends_with(" slirp4netns"))
        .collect();
    assert_eq!(slirps.len(), 1, "{:?}", running(&u));
    let slirp_pid: i32 = slirps[0].split(' ').next().unwrap().parse().unwrap();
    let supervisor = std::fs::read_to_string(format!("/proc/{slirp_pid}/stat")).unwrap();
    let ppid: i32 = supervisor
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: a signal to the test user's supervisor.
    unsafe { libc::kill(ppid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&u).iter().any(|p| p.ends_with(" slirp4netns")) {
        assert!(
            Instant::now() < deadline,
            "slirp4netns outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    u.run(&["rm", &uuid2]).success();
    u.run(&["rm", &uuid]).success();
    u.run(&["gc", "--grace-period=0s"]).success();
    wait_nothing_running(&u);
    let list = u.run(&["list", "--format=json"]).success().json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}
