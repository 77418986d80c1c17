//! Pod networking through the CLI with Debian's real CNI plugins: the default network,
//! named networks, ports, none and host, many pods at once, and what `status` and `list`
//! show. Traffic goes only between the tests' pods and from the host to them.

use std::time::Duration;

use crate::common::aci::AciLayout;
use crate::common::compress::Compression;
use crate::common::httpd::{free_port, http_get};
use crate::common::rootfs::busybox_rootfs;
use crate::common::Vessel;
use crate::podkit::net::{self, NetConfig, Subnet};
use crate::podkit::{wait_for, PodEnv};

/// Serves `text` over HTTP on `port` from inside a pod (busybox httpd).
fn serve(text: &str, port: u16) -> String {
    format!(
        "mkdir -p /tmp/w && echo {text} > /tmp/w/index.html && exec httpd -f -p {port} -h /tmp/w"
    )
}

/// Fetches `http://ADDR/index.html` from inside a pod, retrying while the server starts.
fn fetch_script(addr: &str) -> String {
    // (busybox's static wget crashes; nc does the GET)
    let (ip, port) = addr.rsplit_once(':').unwrap();
    format!(
        r#"for i in $(seq 100); do
  out=$(printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 2 {ip} {port} 2>/dev/null)
  case "$out" in *"200 OK"*) echo "$out"; exit 0 ;; esac
  sleep 0.1
done
exit 1"#
    )
}

fn read_uuid(f: &std::path::Path) -> String {
    std::fs::read_to_string(f).unwrap().trim().to_string()
}

#[test]
fn two_pods_on_the_default_network_reach_each_other() {
    let env = PodEnv::new();
    let (mut a, file_a) = env.spawn(&["--net=default"], &serve("hello-from-a", 7000));
    let ua = env.wait_running(&file_a);
    let ip = net::pod_ip(&env, &ua);
    assert!(ip.starts_with("172.16.28."), "{ip}");
    // rkt's fields, in status.
    let n = &net::networks(&env, &ua)[0];
    assert_eq!(n["netName"], "default");
    assert_eq!(n["netConf"], "builtin:default");
    assert_eq!(n["pluginPath"], "/usr/lib/cni/ptp");
    assert_eq!(n["ifName"], "eth0");
    assert_eq!(n["mask"], "255.255.255.0");
    assert_eq!(n["args"], "");
    // The table's NETWORKS column.
    let table = env.run(&["list", "--full"]).success().stdout;
    assert!(table.contains(&format!("default:ip4={ip}")), "{table}");
    // CHECK of the running pod.
    let check = env.run(&["status", "--check-net", &ua]).success();
    assert!(check.stdout.contains("check-default=ok"), "{check}");

    let uuid_b = env.v.path("uuid-b");
    let b = env
        .sh(
            &[
                "--net=default",
                &format!("--uuid-file-save={}", uuid_b.display()),
            ],
            &fetch_script(&format!("{ip}:7000")),
        )
        .success();
    assert!(b.stdout.contains("hello-from-a"), "{b}");
    let ub = read_uuid(&uuid_b);

    env.run(&["stop", &ua]).success();
    let _ = a.wait();
    // The exited pod keeps its record; the host keeps nothing of either pod.
    assert_eq!(net::networks(&env, &ua)[0]["ip"], ip.as_str());
    net::assert_nothing_left(&ua, &["default"]);
    net::assert_nothing_left(&ub, &["default"]);
    assert!(!net::host_route(&ip), "the route to {ip} is still there");
}

/// A busybox image whose app declares port `http` (tcp 8080).
fn web_env() -> PodEnv {
    let v = Vessel::new();
    let mut layout = AciLayout::create(&v.path("web.layout"), "example.com/web", "1");
    busybox_rootfs(&layout.rootfs());
    layout.manifest["app"]["ports"] =
        serde_json::json!([{"name": "http", "protocol": "tcp", "port": 8080}]);
    let aci = layout.build(&v.path("web.aci"), Compression::None);
    v.fetch(&aci.path_str());
    PodEnv {
        v,
        image: "example.com/web:1".into(),
    }
}

#[test]
fn a_pod_serves_the_host_through_a_port_and_taken_ports_are_refused() {
    let env = web_env();
    let port = free_port();
    let (mut p, file) = env.spawn(
        &["--net=default", &format!("--port=http:{port}")],
        &serve("served-through-a-port", 8080),
    );
    let uuid = env.wait_running(&file);
    let body = http_get(
        &format!("127.0.0.1:{port}"),
        "/index.html",
        Duration::from_secs(20),
    );
    assert!(body.contains("served-through-a-port"), "{body}");

    // The port is the pod's while it runs: a second pod is refused before it starts.
    let pods_before = env.list().len();
    let r = env
        .run(&[
            "run",
            "--rm",
            &format!("--port=http:{port}"),
            &env.image,
            "--exec",
            "/bin/true",
        ])
        .failure();
    assert!(
        r.stderr
            .contains(&format!("host port {port}/tcp is already in use")),
        "{r}"
    );
    // A port some host program holds, likewise.
    let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let r = env
        .run(&["run", "--rm", &format!("--port=http:{taken}"), &env.image])
        .failure();
    assert!(
        r.stderr
            .contains(&format!("host port {taken}/tcp is already in use")),
        "{r}"
    );
    // A port the image does not declare.
    let r = env
        .run(&["run", "--rm", "--port=nope:9999", &env.image])
        .failure();
    assert!(
        r.stderr
            .contains("--port nope: no app of the pod declares a port of that name")
            && r.stderr.contains("http (8080/tcp of app web)"),
        "{r}"
    );
    assert_eq!(
        env.list().len(),
        pods_before,
        "a refused pod was left behind"
    );

    env.run(&["stop", &uuid]).success();
    let _ = p.wait();
    net::assert_nothing_left(&uuid, &["default"]);
    // The forwarding went with it.
    assert!(
        std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(2)
        )
        .is_err(),
        "port {port} still answers"
    );
}

#[test]
fn none_has_loopback_only_and_host_shares_the_hosts_interfaces() {
    let env = PodEnv::new();
    let names = |dev: &str| -> Vec<String> {
        dev.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect()
    };
    let none = env.sh(&["--net=none"], "cat /proc/net/dev").success();
    assert_eq!(names(&none.stdout), ["lo"], "{none}");
    let host = env.sh(&["--net=host"], "cat /proc/net/dev").success();
    let ours = std::fs::read_to_string("/proc/net/dev").unwrap();
    let eth = names(&ours)
        .into_iter()
        .find(|n| n != "lo" && !n.starts_with("veth"))
        .expect("the host has an interface besides lo");
    assert!(names(&host.stdout).contains(&eth), "{host}");
    // The default network: loopback and eth0.
    let def = env.sh(&["--net=default"], "cat /proc/net/dev").success();
    let mut got = names(&def.stdout);
    got.sort();
    assert_eq!(got, ["eth0", "lo"], "{def}");
}

#[test]
fn a_named_bridge_network_joins_two_pods_with_cni_args() {
    let conf = NetConfig::new();
    let subnet = Subnet::new();
    let name = net::network_name("br");
    let bridge = format!("vtb{}", &subnet.prefix.replace('.', "")[2..]);
    let _guard = net::NetworkGuard::new(&name, Some(&bridge));
    // Dropped before the guard: its pods are gone when the guard cleans up.
    let env = PodEnv::new();
    conf.network(
        "10-bridge.conflist",
        &serde_json::json!({
            "cniVersion": "1.0.0", "name": name,
            "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": true,
                "ipam": {"type": "host-local", "subnet": subnet.cidr()}}]
        })
        .to_string(),
    );
    let fixed = subnet.addr(77);
    let net_a = format!("--net={name}:IgnoreUnknown=1;IP={fixed}");
    let (mut a, file_a) = env.spawn(&[&conf.flag(), &net_a], &serve("on-the-bridge", 7000));
    let ua = env.wait_running(&file_a);
    let nets = net::networks(&env, &ua);
    // The pod also joined default-restricted (rkt's rule), after the named network.
    assert_eq!(nets.len(), 2, "{nets:?}");
    assert_eq!(nets[0]["netName"], name.as_str());
    assert_eq!(nets[0]["ip"], fixed.as_str(), "CNI_ARGS IP= was not used");
    assert_eq!(nets[0]["args"], format!("IgnoreUnknown=1;IP={fixed}"));
    assert_eq!(
        nets[0]["netConf"],
        conf.path("net.d/10-bridge.conflist").display().to_string()
    );
    assert_eq!(nets[1]["netName"], "default-restricted");
    assert_eq!(nets[1]["ifName"], "eth1");
    assert!(
        nets[1]["ip"].as_str().unwrap().starts_with("172.31."),
        "{nets:?}"
    );

    let uuid_b = env.v.path("uuid-b");
    let b = env
        .sh(
            &[
                &conf.flag(),
                &format!("--net={name}"),
                &format!("--uuid-file-save={}", uuid_b.display()),
            ],
            &fetch_script(&format!("{fixed}:7000")),
        )
        .success();
    assert!(b.stdout.contains("on-the-bridge"), "{b}");
    let ub = read_uuid(&uuid_b);
    env.run(&["stop", &ua]).success();
    let _ = a.wait();
    for u in [&ua, &ub] {
        net::assert_nothing_left(u, &[&name, "default-restricted"]);
    }
}

#[test]
fn twenty_pods_at_once_get_distinct_addresses_and_leave_nothing() {
    let env = PodEnv::new();
    let mut children = Vec::new();
    for i in 0..20 {
        let f = env.v.path(&format!("uuid-{i}"));
        let mut c = env.v.command(&[
            "run",
            "--rm",
            "--net=default",
            &format!("--uuid-file-save={}", f.display()),
            &env.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "ip -4 -o addr show eth0",
        ]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        children.push((c.spawn().unwrap(), f));
    }
    let mut ips = Vec::new();
    let mut uuids = Vec::new();
    for (c, f) in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        let ip = line
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        ips.push(ip);
        uuids.push(read_uuid(&f));
    }
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 20, "{ips:?}");
    for u in &uuids {
        net::assert_nothing_left(u, &["default"]);
    }
    wait_for("the pods to be gone", Duration::from_secs(30), || {
        env.list().is_empty()
    });
}

#[test]
fn a_pod_in_a_user_namespace_joins_the_default_network() {
    let env = PodEnv::new();
    let uuid_file = env.v.path("uuid");
    let r = env
        .sh(
            &[
                "--private-users",
                "--net=default",
                &format!("--uuid-file-save={}", uuid_file.display()),
            ],
            "ip -4 -o addr show eth0; cat /proc/self/uid_map",
        )
        .success();
    assert!(r.stdout.contains("inet 172.16.28."), "{r}");
    net::assert_nothing_left(&read_uuid(&uuid_file), &["default"]);
}

#[test]
fn run_prepared_may_choose_other_networks() {
    let env = PodEnv::new();
    let uuid = env
        .run(&[
            "prepare",
            "--net=none",
            &env.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "ip -4 -o addr show eth0",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let r = env.run(&["run-prepared", "--net=default", &uuid]).success();
    assert!(r.stdout.contains("inet 172.16.28."), "{r}");
    assert_eq!(net::networks(&env, &uuid)[0]["netName"], "default");
    env.run(&["rm", &uuid]).success();
    net::assert_nothing_left(&uuid, &["default"]);
}

#[test]
fn default_restricted_has_no_way_out_but_a_link_to_the_host() {
    let env = PodEnv::new();
    let r = env
        .sh(
            &["--net=default-restricted"],
            "ip -4 route; echo ---; ip -4 addr show eth0",
        )
        .success();
    let (routes, addrs) = r.stdout.split_once("---").unwrap();
    assert!(!routes.contains("default"), "a route out:\n{r}");
    assert!(addrs.contains("inet 172.31."), "{r}");
    // The host's side of the link is routed (the metadata service listens there).
    assert!(
        routes.lines().any(|l| l.starts_with("172.31.")),
        "no route to the host's side:\n{r}"
    );
    // The default network, by contrast, routes everything through the host.
    let d = env.sh(&["--net=default"], "ip -4 route").success();
    assert!(d.stdout.contains("default via 172.16.28."), "{d}");
}

#[test]
fn all_joins_every_network_and_ipv6_where_the_config_asks() {
    let conf = NetConfig::new();
    let subnet = Subnet::new();
    let name = net::network_name("v6");
    let _guard = net::NetworkGuard::new(&name, None);
    let env = PodEnv::new();
    let octets: Vec<u8> = subnet
        .prefix
        .trim_end_matches('.')
        .split('.')
        .map(|o| o.parse().unwrap())
        .collect();
    let v6 = format!("fd76:7465:{:x}{:02x}::", octets[1], octets[2]);
    conf.network(
        "10-dual.conflist",
        &serde_json::json!({
            "cniVersion": "1.0.0", "name": name,
            "plugins": [{"type": "ptp", "ipam": {"type": "host-local",
                "ranges": [[{"subnet": subnet.cidr()}], [{"subnet": format!("{v6}/64")}]]}}]
        })
        .to_string(),
    );
    let (mut pod, file) = env.spawn(
        &[&conf.flag(), "--net=all"],
        "ip -6 addr show eth0 > /tmp/v6; sleep 30",
    );
    let uuid = env.wait_running(&file);
    let nets = net::networks(&env, &uuid);
    let mut names: Vec<&str> = nets
        .iter()
        .map(|n| n["netName"].as_str().unwrap())
        .collect();
    names.sort();
    let mut want = vec![name.as_str(), "default", "default-restricted"];
    want.sort();
    assert_eq!(names, want, "{nets:?}");
    // Configuration files sort before the built-ins (rkt's 99-*): ours is eth0.
    assert_eq!(nets[0]["netName"], name.as_str());
    assert_eq!(nets[0]["ifName"], "eth0");
    let inside = env
        .run(&["enter", &uuid, "/bin/cat", "/tmp/v6"])
        .success()
        .stdout;
    assert!(inside.contains(&format!("inet6 {v6}")), "{inside}");
    env.run(&["stop", &uuid]).success();
    let _ = pod.wait();
    net::assert_nothing_left(&uuid, &[&name, "default", "default-restricted"]);
}

/// A network namespace standing for the world beyond the host: a veth to the host on a
/// test subnet (the host's side `.1`, the namespace's `.2`), removed when dropped.
struct Outside {
    netns: String,
}

impl Outside {
    fn new(subnet: &Subnet) -> Outside {
        let tag = subnet
            .prefix
            .trim_end_matches('.')
            .replace("10.", "")
            .replace('.', "x");
        let netns = format!("vt-outside-{tag}");
        let (host_if, ns_if) = (format!("vo{tag}h"), format!("vo{tag}n"));
        let ip = |args: &[&str]| {
            let st = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &netns]);
        let outside = Outside { netns };
        let ns = outside.netns.as_str();
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", ns,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", subnet.addr(1)),
            "dev",
            &host_if,
        ]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", subnet.addr(2)),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", ns, "link", "set", &ns_if, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        outside
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth, and with it the host's side.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// NAT rules of Vessel's own (the default subnet's masquerading).
fn vessel_nat_rules() -> Vec<String> {
    let out = std::process::Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("VESSEL-DEFAULT"))
        .map(str::to_string)
        .collect()
}

#[test]
fn traffic_leaving_the_default_network_is_masqueraded_by_the_subnets_rules() {
    let env = PodEnv::new();
    let subnet = Subnet::new();
    let outside = Outside::new(&subnet);
    // A server beyond the host that prints the address it sees the client come from.
    // It has no route back to the pods' subnet: only a masqueraded request gets an answer.
    let port = free_port();
    let server = std::process::Command::new("ip")
        .args(["netns", "exec", &outside.netns, "python3", "-c"])
        .arg(format!(
            "import socket\ns=socket.socket()\ns.bind(('0.0.0.0',{port}))\ns.listen()\n\
             s.settimeout(60)\nc,a=s.accept()\nc.sendall(b'seen')\nprint(a[0])"
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let target = subnet.addr(2);
    let uuid_file = env.v.path("uuid");
    let r = env.sh(
        &[
            "--net=default",
            &format!("--uuid-file-save={}", uuid_file.display()),
        ],
        &format!(
            "for i in $(seq 100); do out=$(echo hi | nc -w 2 {target} {port}); \
             [ \"$out\" = seen ] && exit 0; sleep 0.1; done; exit 1"
        ),
    );
    let seen = server.wait_with_output().unwrap();
    r.success();
    let uuid = read_uuid(&uuid_file);
    assert_eq!(
        String::from_utf8_lossy(&seen.stdout).trim(),
        subnet.addr(1),
        "the server beyond the host saw the pod's own address, not the host's"
    );
    // One rule set for the subnet, whatever the number of pods; none of the pod's own.
    let rules = vessel_nat_rules();
    assert_eq!(
        rules
            .iter()
            .filter(|l| l.starts_with("-A POSTROUTING -s 172.16.28.0/24"))
            .count(),
        1,
        "{rules:#?}"
    );
    assert!(
        rules.contains(&"-A VESSEL-DEFAULT ! -d 224.0.0.0/4 -j MASQUERADE".to_string()),
        "{rules:#?}"
    );
    net::assert_nothing_left(&uuid, &["default"]);
}
