//! Bad network input and faults: each time the pod does not start (or `gc` cleans it up),
//! the error names the network and the plugin, and the host keeps no lease, NAT rule or
//! network namespace of the pod. Fake plugins are shell scripts in the test's own
//! `<local-config>/net.d/plugins`, found before /usr/lib/cni.

use std::time::Duration;

use crate::podkit::net::{self, NetConfig, Subnet};
use crate::podkit::{wait_for, PodEnv};

/// A ptp network over `type`, with host-local on `subnet`.
fn ptp_conf(name: &str, plugin: &str, subnet: &Subnet, range: Option<(u8, u8)>) -> String {
    let mut ipam = serde_json::json!({"type": "host-local", "subnet": subnet.cidr()});
    if let Some((a, b)) = range {
        ipam["rangeStart"] = subnet.addr(a).into();
        ipam["rangeEnd"] = subnet.addr(b).into();
    }
    serde_json::json!({
        "cniVersion": "1.0.0", "name": name,
        "plugins": [{"type": plugin, "ipMasq": true, "ipam": ipam}]
    })
    .to_string()
}

/// Panics unless the pod was refused: 1 before it was made (bad input), 125 when it
/// failed to start (docker's code).
pub fn not_started(r: crate::common::Run) -> crate::common::Run {
    assert!(
        matches!(r.code(), Some(1) | Some(125)),
        "expected the pod to be refused:\n{r}"
    );
    r
}

/// Runs a pod that must not start; returns the run. No pod may be left listed.
fn refused(env: &PodEnv, flags: &[&str]) -> crate::common::Run {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&env.image, "--exec", "/bin/true"]);
    let r = not_started(env.run(&args));
    wait_for(
        "the refused pod to be gone",
        Duration::from_secs(30),
        || env.list().is_empty(),
    );
    r
}

#[test]
fn unknown_networks_and_bad_configurations_are_named() {
    let env = PodEnv::new();
    let conf = NetConfig::new();
    let r = refused(&env, &[&conf.flag(), "--net=nosuch"]);
    assert!(r.stderr.contains("unknown network \"nosuch\""), "{r}");
    assert!(
        r.stderr.contains(&conf.path("net.d").display().to_string()),
        "{r}"
    );

    conf.network("10-broken.conf", "{\"name\": \"broken\", \"type\": ");
    let r = refused(&env, &[&conf.flag(), "--net=default"]);
    assert!(
        r.stderr.contains("10-broken.conf") && r.stderr.contains("not valid JSON"),
        "{r}"
    );
    std::fs::remove_file(conf.path("net.d/10-broken.conf")).unwrap();

    conf.network(
        "10-noplugin.conflist",
        r#"{"cniVersion":"1.0.0","name":"noplugin","plugins":[]}"#,
    );
    let r = refused(&env, &[&conf.flag(), "--net=noplugin"]);
    assert!(
        r.stderr.contains("10-noplugin.conflist") && r.stderr.contains("names no plugin"),
        "{r}"
    );
    std::fs::remove_file(conf.path("net.d/10-noplugin.conflist")).unwrap();

    conf.network(
        "10-missing.conf",
        r#"{"cniVersion":"1.0.0","name":"missing","type":"no-such-plugin"}"#,
    );
    let r = refused(&env, &[&conf.flag(), "--net=missing"]);
    assert!(
        r.stderr
            .contains("network missing: plugin \"no-such-plugin\" not found in"),
        "{r}"
    );
    // A network list with a host mode.
    let r = refused(&env, &["--net=host,default"]);
    assert!(r.stderr.contains("cannot be combined"), "{r}");
}

#[test]
fn a_failing_plugin_is_named_and_del_runs_with_the_same_input() {
    let conf = NetConfig::new();
    let subnet = Subnet::new();
    let name = net::network_name("fail");
    let _guard = net::NetworkGuard::new(&name, None);
    // Dropped before the guard: its pods are gone when the guard cleans up.
    let env = PodEnv::new();
    let log = conf.path("calls");
    conf.plugin(
        "failer",
        &format!(
            r#"echo "$CNI_COMMAND $CNI_IFNAME $CNI_CONTAINERID $(cat)" >> {log}
[ "$CNI_COMMAND" = ADD ] || exit 0
echo '{{"cniVersion":"1.0.0","code":11,"msg":"the fake network is down","details":"try later"}}'
exit 1"#,
            log = log.display()
        ),
    );
    conf.network("10-f.conflist", &ptp_conf(&name, "failer", &subnet, None));
    let uuid_file = env.v.path("uuid");
    let r = refused(
        &env,
        &[
            &conf.flag(),
            &format!("--net={name}"),
            &format!("--uuid-file-save={}", uuid_file.display()),
        ],
    );
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    let plugin = conf.path("net.d/plugins/failer").display().to_string();
    assert!(
        r.stderr.contains(&format!(
            "network {name}: plugin {plugin} (ADD): the fake network is down; try later"
        )),
        "{r}"
    );
    // DEL ran too (CNI: after a failed ADD as well), with the same interface, container
    // ID and configuration.
    wait_for("DEL", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.lines().any(|x| x.starts_with("DEL")))
    });
    let calls = std::fs::read_to_string(&log).unwrap();
    let add = calls.lines().find(|l| l.starts_with("ADD")).unwrap();
    let del = calls.lines().find(|l| l.starts_with("DEL")).unwrap();
    assert_eq!(
        add[3..],
        del[3..],
        "DEL's input differs from ADD's:\n{calls}"
    );
    assert!(add.contains(&format!(" eth0 {uuid} ")), "{calls}");
    net::assert_nothing_left(&uuid, &[&name, "default-restricted"]);
}

#[test]
fn a_hanging_plugin_is_killed_after_the_timeout() {
    let conf = NetConfig::new();
    let subnet = Subnet::new();
    let name = net::network_name("hang");
    let _guard = net::NetworkGuard::new(&name, None);
    // Dropped before the guard: its pods are gone when the guard cleans up.
    let env = PodEnv::new();
    let pids = conf.path("pids");
    conf.plugin(
        "hanger",
        &format!(
            "[ \"$CNI_COMMAND\" = ADD ] || exit 0\nsleep 300 &\necho $! >> {}\nwait",
            pids.display()
        ),
    );
    conf.network("10-h.conflist", &ptp_conf(&name, "hanger", &subnet, None));
    let uuid_file = env.v.path("uuid");
    let started = std::time::Instant::now();
    let r = env.v.run_with_env(
        &[
            "run",
            "--rm",
            &conf.flag(),
            &format!("--net={name}"),
            &format!("--uuid-file-save={}", uuid_file.display()),
            &env.image,
            "--exec",
            "/bin/true",
        ],
        &[("VESSEL_CNI_TIMEOUT", "1s")],
    );
    let r = not_started(r);
    assert!(started.elapsed() < Duration::from_secs(60), "{r}");
    let plugin = conf.path("net.d/plugins/hanger").display().to_string();
    assert!(
        r.stderr.contains(&format!(
            "network {name}: plugin {plugin} (ADD) did not finish within 1s; it was killed"
        )),
        "{r}"
    );
    // What the plugin started went with it.
    let pid: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the plugin's child to die", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .map_or(true, |c| !c.contains("sleep"))
    });
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    net::assert_nothing_left(&uuid, &[&name, "default-restricted"]);
}

#[test]
fn a_used_up_address_range_refuses_the_next_pod() {
    let conf = NetConfig::new();
    let subnet = Subnet::new();
    let name = net::network_name("full");
    let _guard = net::NetworkGuard::new(&name, None);
    // Dropped before the guard: its pods are gone when the guard cleans up.
    let env = PodEnv::new();
    conf.network(
        "10-one.conflist",
        &ptp_conf(&name, "ptp", &subnet, Some((10, 10))),
    );
    let (mut holder, file) = env.spawn(&[&conf.flag(), &format!("--net={name}")], "sleep 60");
    let ua = env.wait_running(&file);
    assert_eq!(net::pod_ip(&env, &ua), subnet.addr(10));
    let uuid_b = env.v.path("uuid-b");
    let args = [
        "run".to_string(),
        "--rm".into(),
        conf.flag(),
        format!("--net={name}"),
        format!("--uuid-file-save={}", uuid_b.display()),
        env.image.clone(),
        "--exec".into(),
        "/bin/true".into(),
    ];
    let r = not_started(env.run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(
        r.stderr
            .contains(&format!("network {name}: plugin /usr/lib/cni/ptp (ADD)"))
            && r.stderr.contains("no IP addresses available"),
        "{r}"
    );
    let ub = std::fs::read_to_string(&uuid_b).unwrap().trim().to_string();
    net::assert_nothing_left(&ub, &[&name, "default-restricted"]);
    // The first pod still holds its address.
    assert_eq!(net::leases(&name, &ua).len(), 1);
    env.run(&["stop", "--force", &ua]).success();
    let _ = holder.wait();
    net::assert_nothing_left(&ua, &[&name, "default-restricted"]);
}

#[test]
fn a_killed_supervisor_leaves_gc_enough_to_clean_up() {
    let env = PodEnv::new();
    let (mut sup, file) = env.spawn(
        &[
            "--net=default",
            &format!("--port=tcp:80::{}", crate::common::httpd::free_port()),
        ],
        "sleep 60",
    );
    let uuid = env.wait_running(&file);
    assert!(!net::leftovers(&uuid, &["default"]).is_empty());
    sup.kill().unwrap();
    let _ = sup.wait();
    wait_for("the pod to show exited", Duration::from_secs(20), || {
        env.status(&uuid)["state"] == "exited"
    });
    // Its network outlives it until gc: the namespace is pinned, the lease and rules held.
    assert!(!net::pins(&uuid).is_empty());
    env.run(&["gc", "--grace-period=0s"]).success();
    net::assert_nothing_left(&uuid, &["default"]);
    assert!(env.list().is_empty());
}

#[test]
fn a_supervisor_killed_during_add_leaves_gc_enough_to_clean_up() {
    let conf = NetConfig::new();
    let subnet = Subnet::new();
    let name = net::network_name("slow");
    let _guard = net::NetworkGuard::new(&name, None);
    // Dropped before the guard: its pods are gone when the guard cleans up.
    let env = PodEnv::new();
    let marker = conf.path("added");
    // ptp's ADD, then a pause before answering: the supervisor is killed in that pause,
    // with the veth, the address and the NAT rules made.
    conf.plugin(
        "slowptp",
        &format!(
            "out=$(/usr/lib/cni/ptp) || {{ echo \"$out\"; exit 1; }}\n[ \"$CNI_COMMAND\" = ADD ] && {{ touch {}; sleep 2; }}\necho \"$out\"",
            marker.display()
        ),
    );
    conf.network(
        "10-slow.conflist",
        &ptp_conf(&name, "slowptp", &subnet, None),
    );
    let (mut sup, file) = env.spawn(&[&conf.flag(), &format!("--net={name}")], "sleep 60");
    net::wait_file(&marker);
    let uuid = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_eq!(
        net::leases(&name, &uuid).len(),
        1,
        "ADD had allocated an address"
    );
    sup.kill().unwrap();
    let _ = sup.wait();
    // gc waits for what the plugin started (it holds the pod's lock) and then runs DEL.
    wait_for("gc to remove the pod", Duration::from_secs(30), || {
        env.run(&["gc", "--grace-period=0s", "--expire-prepared=0s"]);
        env.list().is_empty()
    });
    net::assert_nothing_left(&uuid, &[&name, "default-restricted"]);
}
