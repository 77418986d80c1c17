//! The crate against Debian's plugins in /usr/lib/cni, in network namespaces the tests
//! make. Traffic goes only between those namespaces and the host's side of their links.

use std::path::Path;
use std::time::Duration;

use net::config::ConfKind;
use net::{Attachment, CheckOutcome, Invoker};
use serde_json::{json, Map, Value};

use crate::kit::{self, Netns};
use crate::require_root;

fn attachment(config: &Value, kind: ConfKind, id: &str) -> Attachment {
    Attachment {
        network: config["name"].as_str().unwrap().into(),
        origin: "test".into(),
        kind,
        config: config.to_string(),
        ifname: "eth0".into(),
        args: String::new(),
        container_id: id.into(),
        plugin_paths: kit::plugins(),
        capability_args: Map::new(),
        result: None,
    }
}

fn ptp_list(name: &str, subnet: &str, data_dir: &Path, masq: bool) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "ptp",
            "ipMasq": masq,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data_dir}
        }]
    })
}

fn inv() -> Invoker {
    Invoker::default()
}

#[test]
fn ptp_pods_reach_each_other_and_del_leaves_nothing() {
    require_root();
    let subnet = kit::subnet();
    let data = tempfile::tempdir().unwrap();
    let name = kit::unique("vtp");
    let list = ptp_list(&name, &subnet.net.to_string(), data.path(), true);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let (id1, id2) = (kit::unique("c"), kit::unique("c"));
    let mut a1 = attachment(&list, ConfKind::Conflist, &id1);
    let mut a2 = attachment(&list, ConfKind::Conflist, &id2);
    a1.check_plugins().unwrap();
    let r1 = a1.add(&ns1.path, &inv()).unwrap();
    let r2 = a2.add(&ns2.path, &inv()).unwrap();
    let ip1 = r1.primary_ip("eth0").unwrap().address.addr();
    let ip2 = r2.primary_ip("eth0").unwrap().address.addr();
    assert_ne!(ip1, ip2);
    assert!(subnet.net.contains(&ip1) && subnet.net.contains(&ip2));
    assert!(ns1.addresses().contains(&ip1.to_string()));
    let veth1 = r1.host_interfaces()[0].to_string();
    assert!(kit::link_exists(&veth1));
    assert_eq!(kit::leases(data.path(), &name, &id1).len(), 1);
    assert!(!kit::nat_rules(&id1).is_empty(), "ptp's masquerading rules");
    // Pod to pod, through the host.
    let ping = ns1.exec(&["ping", "-c", "1", "-W", "5", &ip2.to_string()]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert_eq!(a1.check(&ns1.path, &inv()).unwrap(), CheckOutcome::Ok);
    // CHECK notices a change to what ADD made (the interface's MAC address; deleting
    // the interface would make ptp's DEL lose track of its NAT rules).
    kit::sh(&[
        "ip",
        "-n",
        &ns2.name,
        "link",
        "set",
        "eth0",
        "address",
        "02:00:00:00:00:01",
    ]);
    let e = a2.check(&ns2.path, &inv()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("network {name}")) && e.contains("(CHECK)"),
        "{e}"
    );

    a1.del(Some(&ns1.path), &inv()).unwrap();
    a2.del(Some(&ns2.path), &inv()).unwrap();
    // DEL twice is fine (CNI requires it of plugins).
    a1.del(Some(&ns1.path), &inv()).unwrap();
    assert!(!kit::link_exists(&veth1));
    for id in [&id1, &id2] {
        assert!(kit::leases(data.path(), &name, id).is_empty());
        assert!(kit::nat_rules(id).is_empty(), "{:?}", kit::nat_rules(id));
    }
}

#[test]
fn older_versions_and_single_confs() {
    require_root();
    let subnet = kit::subnet();
    let data = tempfile::tempdir().unwrap();
    for version in ["0.2.0", "0.3.1", "0.4.0"] {
        let name = kit::unique("vtv");
        let conf = json!({
            "cniVersion": version, "name": name, "type": "ptp",
            "ipam": {"type": "host-local", "subnet": subnet.net.to_string(), "dataDir": data.path()}
        });
        let ns = Netns::new();
        let id = kit::unique("c");
        let mut a = attachment(&conf, ConfKind::Conf, &id);
        let r = a.add(&ns.path, &inv()).unwrap();
        let ip = r.primary_ip("eth0").unwrap().address.addr();
        assert!(subnet.net.contains(&ip), "{version}: {ip}");
        assert!(ns.addresses().contains(&ip.to_string()), "{version}");
        a.del(Some(&ns.path), &inv()).unwrap();
        assert!(kit::leases(data.path(), &name, &id).is_empty(), "{version}");
    }
}

#[test]
fn ipv6_where_the_config_asks_for_it() {
    require_root();
    let subnet = kit::subnet();
    let data = tempfile::tempdir().unwrap();
    let o = subnet.v4.network().octets();
    let v6 = format!("fd76:7465:{:x}{:02x}::/64", o[1], o[2]);
    let list = json!({
        "cniVersion": "1.0.0", "name": kit::unique("vt6"),
        "plugins": [{"type": "ptp", "ipam": {"type": "host-local", "dataDir": data.path(),
            "ranges": [[{"subnet": subnet.net.to_string()}], [{"subnet": v6}]]}}]
    });
    let ns = Netns::new();
    let mut a = attachment(&list, ConfKind::Conflist, &kit::unique("c"));
    let r = a.add(&ns.path, &inv()).unwrap();
    let six = r
        .pod_ips("eth0")
        .into_iter()
        .find(|i| i.address.addr().is_ipv6())
        .expect("an IPv6 address")
        .address
        .addr();
    assert!(ns.addresses().contains(&six.to_string()));
    // The IPv4 address stays the primary one.
    assert!(r.primary_ip("eth0").unwrap().address.addr().is_ipv4());
    a.del(Some(&ns.path), &inv()).unwrap();
}

#[test]
fn a_bridge_with_portmap_forwards_a_host_port() {
    require_root();
    let subnet = kit::subnet();
    let data = tempfile::tempdir().unwrap();
    let name = kit::unique("vtb");
    let bridge = format!("vtb{}", &subnet.addr(0).replace('.', "")[2..]);
    let list = json!({
        "cniVersion": "1.0.0", "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true,
             "ipam": {"type": "host-local", "subnet": subnet.net.to_string(), "dataDir": data.path()}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    let host_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ns = Netns::new();
    let id = kit::unique("c");
    let mut a = attachment(&list, ConfKind::Conflist, &id);
    a.capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": host_port, "containerPort": 8080, "protocol": "tcp"}]),
    );
    let r = a.add(&ns.path, &inv()).unwrap();
    let pod_ip = r.primary_ip("eth0").unwrap().address.addr();
    // A server in the namespace; the host reaches it through the mapped port.
    let mut server = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c"])
        .arg(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',8080))\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\nc.sendall(b'hello from the pod')\nc.close()",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(server.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let rules = kit::nat_rules(&id).join("\n");
    assert!(rules.contains(&host_port.to_string()), "{rules}");
    let got = read_from(&format!("127.0.0.1:{host_port}"));
    assert_eq!(got, "hello from the pod", "pod {pod_ip}");
    let _ = server.wait();
    a.del(Some(&ns.path), &inv()).unwrap();
    assert!(kit::nat_rules(&id).is_empty(), "{:?}", kit::nat_rules(&id));
    assert!(kit::leases(data.path(), &name, &id).is_empty());
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .status();
}

fn read_from(addr: &str) -> String {
    use std::io::Read;
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_failing_plugin_is_named_with_its_message() {
    require_root();
    let ns = Netns::new();
    let data = tempfile::tempdir().unwrap();
    let name = kit::unique("vtf");
    let list = json!({
        "cniVersion": "1.0.0", "name": name,
        "plugins": [{"type": "ptp", "ipam": {"type": "host-local", "subnet": "not-a-subnet", "dataDir": data.path()}}]
    });
    let mut a = attachment(&list, ConfKind::Conflist, &kit::unique("c"));
    let e = a.add(&ns.path, &inv()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("network {name}: plugin /usr/lib/cni/ptp (ADD): ")),
        "{e}"
    );
    assert!(e.contains("not-a-subnet"), "{e}");
    // DEL reads the same configuration: it fails the same way, and says so.
    let e = a.del(Some(&ns.path), &inv()).unwrap_err().to_string();
    assert!(e.contains("(DEL)") && e.contains(&name), "{e}");
}

#[test]
fn a_pinned_namespace_outlives_its_processes_until_unpinned() {
    require_root();
    let subnet = kit::subnet();
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("netns");
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .unwrap();
    // unshare(1) execs sleep in the new namespace: wait until it differs from ours.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let ns_link = format!("/proc/{}/ns/net", holder.id());
    kit_wait(|| std::fs::read_link(&ns_link).is_ok_and(|l| l != ours));
    net::netns::pin(holder.id() as i32, &pin).unwrap();
    assert!(net::netns::is_pinned(&pin));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let name = kit::unique("vtn");
    let list = ptp_list(&name, &subnet.net.to_string(), data.path(), true);
    let id = kit::unique("c");
    let mut a = attachment(&list, ConfKind::Conflist, &id);
    a.add(&pin, &inv()).unwrap();
    assert!(!kit::nat_rules(&id).is_empty());
    a.del(Some(&pin), &inv()).unwrap();
    // With the namespace alive, ptp found its addresses and removed its rules.
    assert!(kit::nat_rules(&id).is_empty());
    net::netns::unpin(&pin).unwrap();
    assert!(!pin.exists());
    net::netns::unpin(&pin).unwrap();
}

fn kit_wait(mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}
