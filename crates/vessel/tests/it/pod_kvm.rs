//! The kvm stage1 (issue 15): each pod in a QEMU virtual machine booting the host's
//! Debian kernel with Vessel's initramfs, the apps' roots shared over 9p. Every test
//! skips, saying so, where /dev/kvm is absent. On a host whose KVM is PVM (which boots no
//! distribution kernel) the pods run under QEMU's emulation: each boot takes seconds, so
//! each test boots as few machines as it can.

use std::io::Write;
use std::time::Duration;

use crate::common::httpd::{free_port, http_get};
use crate::common::Run;
use crate::podkit::net;
use crate::podkit::{cgroup_dirs, host_processes, PodEnv};

/// Whether the kvm tests can run here; says why not when they cannot.
fn kvm_here(test: &str) -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        return true;
    }
    eprintln!("SKIPPED {test}: no /dev/kvm on this machine (the kvm stage1 needs KVM)");
    false
}

/// This host's KVM is PVM, which cannot boot Debian's kernel: `--kvm-accel=auto` falls
/// back to emulation (the same test as `pod::kvm::kvm_is_pvm`).
fn kvm_is_pvm() -> bool {
    let m = |n: &str| std::path::Path::new("/sys/module").join(n).exists();
    m("kvm_pvm") && !m("kvm_intel") && !m("kvm_amd")
}

/// The warning `run` prints when the machine falls back to emulation.
const FALLBACK: &str = "KVM cannot run the guest";

/// `run --rm --stage1=kvm [flags] IMAGE [app flags] --exec /bin/sh -- -c SCRIPT`.
fn kvm(p: &PodEnv, flags: &[&str], app_flags: &[&str], script: &str) -> Run {
    let mut args = vec!["run", "--rm", "--stage1=kvm"];
    args.extend_from_slice(flags);
    args.push(&p.image);
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", script]);
    p.run(&args)
}

/// No QEMU of this test's store is left, nor a mount of its pods, nor a cgroup.
fn nothing_left(p: &PodEnv, uuid: Option<&str>) {
    let dir = p.v.dir().display().to_string();
    let qemus = || -> Vec<String> {
        host_processes("qemu-system")
            .into_iter()
            .filter(|l| l.contains(&dir))
            .collect()
    };
    // `run --rm` returns once the statuses are known; the pod's init ends QEMU right after.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !qemus().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(qemus().is_empty(), "QEMU left running: {:?}", qemus());
    let mounts = || -> Vec<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&dir))
            .map(str::to_string)
            .collect()
    };
    // `run --rm`'s child deletes the pod after `run` returned: CNI's DEL, then the
    // namespace's pin goes.
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while !mounts().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(mounts().is_empty(), "mounts left: {:?}", mounts());
    if let Some(u) = uuid {
        assert!(
            cgroup_dirs(u).is_empty(),
            "cgroups left: {:?}",
            cgroup_dirs(u)
        );
    }
}

#[test]
fn a_kvm_pod_runs_its_app_in_a_virtual_machine_and_reports_its_output_and_status() {
    if !kvm_here("a_kvm_pod_runs_its_app_in_a_virtual_machine") {
        return;
    }
    let p = PodEnv::new();
    let r = kvm(
        &p,
        &[],
        &[],
        "echo out-$(cat /proc/sys/kernel/osrelease); echo err-line >&2; \
         echo pid1=$(cat /proc/1/comm); test -x /bin/busybox && echo busybox; exit 3",
    );
    assert_eq!(r.code(), Some(3), "{r}");
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(r.stdout.contains("out-"), "{r}");
    assert!(
        !r.stdout.contains(&format!("out-{}", host_release.trim())),
        "the app runs on the host's kernel, not the guest's:\n{r}"
    );
    assert!(r.stdout.contains("busybox"), "{r}");
    assert!(r.stderr.contains("err-line"), "{r}");
    // The accelerator: KVM, or emulation said once, naming why.
    let warned = r.stderr.matches(FALLBACK).count();
    if kvm_is_pvm() {
        assert_eq!(warned, 1, "one warning of the fallback:\n{r}");
        assert!(r.stderr.contains("PVM"), "the warning names why:\n{r}");
    } else {
        assert_eq!(warned, 0, "no fallback with KVM that runs the guest:\n{r}");
    }
    nothing_left(&p, None);
}

#[test]
fn two_apps_share_one_machine_and_a_host_volume() {
    if !kvm_here("two_apps_share_one_machine_and_a_host_volume") {
        return;
    }
    let p = PodEnv::new();
    let host = p.v.path("kvm-volume");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "host-data\n").unwrap();
    let vol = format!("--volume=data,kind=host,source={}", host.display());
    let boot_id = "cat /proc/sys/kernel/random/boot_id";
    // No KVM device: auto falls back to emulation, saying so once.
    let r = p.v.run_with_env(&[
        "run", "--rm", "--stage1=kvm", "--net=none", &vol,
        &p.image, "--name=first", "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--", "-c",
        &format!("echo first-boot=$({boot_id}); echo nets=$(ls /sys/class/net); cat /data/from-host; echo written-by-first > /data/first"),
        "---",
        &p.image, "--name=second", "--mount=volume=data,target=/data", "--exec", "/bin/sh", "--", "-c",
        &format!("echo second-boot=$({boot_id}); echo written-by-second > /data/second; exit 4"),
        "---",
    ], &[("VESSEL_KVM_DEVICE", "/nonexistent/kvm")]);
    assert_eq!(r.stderr.matches(FALLBACK).count(), 1, "{r}");
    assert!(
        r.stderr.contains("no KVM: /nonexistent/kvm") && r.stderr.contains("tcg"),
        "the warning names why and what runs instead:\n{r}"
    );
    assert_eq!(r.code(), Some(4), "the second app's status:\n{r}");
    let boot = |who: &str| -> String {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{who}-boot=")))
            .unwrap_or_else(|| panic!("no boot id from {who}:\n{r}"))
            .to_string()
    };
    assert_eq!(
        boot("first"),
        boot("second"),
        "both apps run in one machine"
    );
    let host_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_ne!(
        boot("first"),
        host_boot.trim(),
        "the apps run on the host's kernel"
    );
    assert!(
        r.stdout.contains("host-data"),
        "the volume's file is seen:\n{r}"
    );
    assert!(
        r.stdout.lines().any(|l| l == "nets=lo"),
        "--net=none: loopback only in the machine:\n{r}"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("first")).unwrap(),
        "written-by-first\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("second")).unwrap(),
        "written-by-second\n"
    );
    nothing_left(&p, None);
}

#[test]
fn enter_runs_a_command_in_a_kvm_pod_and_stop_kills_a_guest_ignoring_it_after_the_timeout() {
    if !kvm_here("stop_ends_a_kvm_pod") {
        return;
    }
    let p = PodEnv::new();
    // One app stops on SIGTERM, the other ignores it.
    let out = p
        .run(&[
            "run",
            "--detach",
            "--stage1=kvm",
            &p.image,
            "--name=polite",
            "--exec",
            "/bin/sleep",
            "--",
            "1000",
            "---",
            &p.image,
            "--name=stubborn",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "trap '' TERM; echo trapped; while true; do sleep 1; done",
            "---",
        ])
        .success();
    let uuid = out.stdout.trim().to_string();
    let status = p.status(&uuid);
    assert_eq!(status["state"], "running");
    if kvm_is_pvm() {
        assert_eq!(status["accelerator"], "tcg", "{status}");
        assert!(
            status["accelerator_fallback"]
                .as_str()
                .is_some_and(|w| w.contains("PVM")),
            "{status}"
        );
    } else {
        assert_eq!(status["accelerator"], "kvm", "{status}");
        assert!(status.get("accelerator_fallback").is_none(), "{status}");
    }
    // enter runs a command in an app of the machine: its root, the guest's kernel, stdin
    // relayed in, output and exit code back.
    let mut c = p.v.command(&[
        "enter",
        "--app=polite",
        &uuid,
        "/bin/sh",
        "-c",
        "read line; echo got-$line; echo boot-$(cat /proc/sys/kernel/random/boot_id); \
         test -x /bin/busybox && echo in-root; echo to-stderr >&2; exit 7",
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello-from-host\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let shown = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(7),
        "enter's exit code is the command's: {shown}"
    );
    assert!(
        stdout.contains("got-hello-from-host"),
        "stdin reaches it: {shown}"
    );
    assert!(
        stdout.contains("in-root"),
        "it runs in the app's root: {shown}"
    );
    assert!(stderr.contains("to-stderr"), "{shown}");
    let host_boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert!(
        stdout.contains("boot-") && !stdout.contains(&format!("boot-{}", host_boot.trim())),
        "it runs in the machine, not on the host: {shown}"
    );
    // A command that cannot run: 127, as in the default flavour.
    let r =
        p.v.run(&["enter", "--app=polite", &uuid, "/no/such/command"]);
    assert_eq!(r.code(), Some(127), "{r}");
    // Started is not yet trapping: the shell says when it ignores SIGTERM.
    crate::podkit::wait_for(
        "the stubborn app's trap",
        std::time::Duration::from_secs(60),
        || p.v.run(&["logs", &uuid]).stdout.contains("trapped"),
    );
    let started = std::time::Instant::now();
    p.v.run(&["stop", "--timeout=3s", &uuid]).success();
    crate::podkit::wait_for(
        "the pod to exit",
        std::time::Duration::from_secs(30),
        || p.status(&uuid)["state"] == "exited",
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "the stubborn app held the pod until the timeout: {}",
        p.status(&uuid)
    );
    assert_eq!(
        p.app_exit(&uuid, "polite"),
        Some(143),
        "{}",
        p.status(&uuid)
    );
    assert_eq!(
        p.app_exit(&uuid, "stubborn"),
        Some(137),
        "{}",
        p.status(&uuid)
    );
    // enter of a pod that has stopped is refused.
    let r =
        p.v.run(&["enter", "--app=polite", &uuid, "/bin/true"])
            .failure();
    assert!(r.stderr.contains("running"), "{r}");
    p.v.run(&["rm", &uuid]).success();
    nothing_left(&p, Some(&uuid));
}

#[test]
fn a_kvm_pod_whose_qemu_is_killed_ends_with_an_error_and_leaves_nothing() {
    if !kvm_here("a_kvm_pod_whose_qemu_is_killed") {
        return;
    }
    let p = PodEnv::new();
    let uuid = p.detached(&["--stage1=kvm"], &["/bin/sleep", "1000"]);
    let qemu: Vec<i32> = host_processes("qemu-system")
        .into_iter()
        .filter(|l| l.contains(&uuid))
        .filter_map(|l| l.split(':').next()?.trim().parse().ok())
        .collect();
    assert_eq!(qemu.len(), 1, "one QEMU for the pod");
    // SAFETY: a signal to a process this test started through vessel.
    unsafe { libc::kill(qemu[0], libc::SIGKILL) };
    crate::podkit::wait_for(
        "the pod to exit",
        std::time::Duration::from_secs(30),
        || p.status(&uuid)["state"] == "exited",
    );
    let status = p.status(&uuid);
    let error = status["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("QEMU ended"), "the error says so: {status}");
    assert_eq!(p.app_exit(&uuid, "busybox"), Some(137), "{status}");
    p.v.run(&["rm", &uuid]).success();
    net::assert_nothing_left(&uuid, &["default"]);
    nothing_left(&p, Some(&uuid));
}

#[test]
fn a_kernel_that_does_not_boot_times_out_with_a_clear_error() {
    if !kvm_here("a_kernel_that_does_not_boot_times_out") {
        return;
    }
    let p = PodEnv::new();
    // A real kernel's header (so its version and modules are found) over a payload that
    // is junk: the decompressor halts the machine.
    let real = std::fs::read_dir("/boot")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vmlinuz-")
        })
        .expect("a /boot/vmlinuz-* (linux-image-amd64)");
    let mut bytes = std::fs::read(&real).unwrap();
    let from = 64 << 10;
    for (i, b) in bytes[from..].iter_mut().enumerate().take(4 << 20) {
        *b = (i as u8).wrapping_mul(31) ^ 0x5a;
    }
    let broken = p.v.path("vmlinuz-broken");
    std::fs::write(&broken, &bytes).unwrap();
    let args = [
        "run",
        "--rm",
        "--stage1=kvm",
        &p.image,
        "--exec",
        "/bin/true",
    ];
    let started = std::time::Instant::now();
    let r = p.v.run_with_env(
        &args,
        &[
            ("VESSEL_KVM_KERNEL", broken.to_str().unwrap()),
            ("VESSEL_KVM_BOOT_TIMEOUT", "8"),
        ],
    );
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(r.stderr.contains("did not boot within 8 s"), "{r}");
    assert!(
        r.stderr.contains("vmlinuz-broken"),
        "the error names the kernel:\n{r}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{r}"
    );
    nothing_left(&p, None);
}

#[test]
fn kvm_refuses_what_it_cannot_run_before_any_machine_starts() {
    if !kvm_here("kvm_refuses_what_it_cannot_run") {
        return;
    }
    let p = PodEnv::new();
    let args = [
        "run",
        "--rm",
        "--stage1=kvm",
        &p.image,
        "--exec",
        "/bin/true",
    ];
    // --kvm-accel=kvm refuses where KVM cannot run the guest: no KVM (the device named
    // elsewhere), or a PVM one.
    let accel_kvm = [
        "run",
        "--rm",
        "--stage1=kvm",
        "--kvm-accel=kvm",
        &p.image,
        "--exec",
        "/bin/true",
    ];
    let r =
        p.v.run_with_env(&accel_kvm, &[("VESSEL_KVM_DEVICE", "/nonexistent/kvm")]);
    assert_eq!(r.code(), Some(125), "a pod that cannot start:\n{r}");
    assert!(
        r.stderr.contains("--kvm-accel=kvm needs KVM")
            && r.stderr.contains("/nonexistent/kvm")
            && !r.stderr.contains(FALLBACK),
        "{r}"
    );
    let r = p.v.run_with_env(
        &args,
        &[
            ("VESSEL_KVM_ACCEL", "kvm"),
            ("VESSEL_KVM_DEVICE", "/nonexistent/kvm"),
        ],
    );
    assert_eq!(r.code(), Some(125), "VESSEL_KVM_ACCEL=kvm likewise:\n{r}");
    if kvm_is_pvm() {
        let r = p.run(&accel_kvm);
        assert_eq!(r.code(), Some(125), "{r}");
        assert!(r.stderr.contains("PVM"), "the refusal says why:\n{r}");
    }
    // No kernel, a kernel that is no kernel.
    let r =
        p.v.run_with_env(&args, &[("VESSEL_KVM_KERNEL", "/nonexistent/vmlinuz")]);
    assert_eq!(r.code(), Some(125), "{r}");
    assert!(
        r.stderr.contains("/nonexistent/vmlinuz") && r.stderr.contains("no such file"),
        "{r}"
    );
    let junk = p.v.path("junk-kernel");
    std::fs::write(&junk, vec![0x42u8; 8192]).unwrap();
    let r =
        p.v.run_with_env(&args, &[("VESSEL_KVM_KERNEL", junk.to_str().unwrap())]);
    assert_eq!(r.code(), Some(125), "{r}");
    assert!(r.stderr.contains("not a Linux kernel"), "{r}");
    // What the flavour does not do is a usage error.
    for (flag, needle) in [
        ("--net=host", "network stack of its own"),
        ("--private-users", "--private-users"),
        ("--ipc=parent", "--ipc=parent"),
        ("--kvm-accel=fast", "auto, kvm and tcg"),
    ] {
        let r = p.run(&[
            "run",
            "--rm",
            "--stage1=kvm",
            flag,
            &p.image,
            "--exec",
            "/bin/true",
        ]);
        assert_eq!(r.code(), Some(2), "{flag}:\n{r}");
        assert!(
            r.stderr.contains(needle) && r.stderr.contains("kvm"),
            "{flag}:\n{r}"
        );
    }
    // A prepared kvm pod cannot be moved onto the host's network either.
    let uuid = p.prepare(&["--stage1=kvm", &p.image, "--exec", "/bin/true"]);
    let r = p.run(&["run-prepared", "--net=host", &uuid]);
    assert_eq!(r.code(), Some(2), "{r}");
    assert!(r.stderr.contains("kvm stage1"), "{r}");
    p.run(&["rm", &uuid]).success();
    let r = p.run(&[
        "run",
        "--rm",
        "--kvm-accel=tcg",
        &p.image,
        "--exec",
        "/bin/true",
    ]);
    assert_eq!(r.code(), Some(2), "--kvm-accel without kvm:\n{r}");
    assert!(r.stderr.contains("not kvm"), "{r}");
    nothing_left(&p, None);
    assert!(p.list().iter().all(|pod| pod["state"] != "running"));
}

#[test]
fn a_kvm_pod_on_the_default_network_reaches_the_host_and_serves_it() {
    if !kvm_here("a_kvm_pod_on_the_default_network") {
        return;
    }
    let p = PodEnv::new();
    // A server of the test's on the host, which the guest reaches at the default
    // network's gateway (the host's end of the pod's link); it notes who called.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = listener.local_addr().unwrap().port();
    let callers = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let callers = callers.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let mut s = s;
                if let Ok(peer) = s.peer_addr() {
                    callers.lock().unwrap().push(peer.ip().to_string());
                }
                let _ = s.write_all(b"hello-from-host\n");
            }
        });
    }
    let forwarded = free_port();
    let script = format!(
        r#"mkdir -p /w && echo served-from-guest > /w/index.html
echo mac-$(cat /sys/class/net/eth0/address) > /w/mac.html
cat /etc/hosts > /w/hosts.html
for i in $(seq 150); do
  out=$(nc -w 3 172.16.28.1 {host_port} </dev/null 2>/dev/null)
  case "$out" in *hello-from-host*) echo "got-$out" > /w/got.html; break ;; esac
  sleep 0.2
done
exec httpd -f -p 8080 -h /w"#
    );
    let uuid = p.detached(
        &[
            "--stage1=kvm",
            "--net=default",
            &format!("--port=tcp:8080:127.0.0.1:{forwarded}"),
        ],
        &["/bin/sh", "-c", &script],
    );
    let n = &net::networks(&p, &uuid)[0];
    assert_eq!(n["netName"], "default", "{n}");
    assert_eq!(n["ifName"], "eth0", "{n}");
    let ip = net::pod_ip(&p, &uuid);
    // The host reaches the guest's server at the pod's address, and through the port.
    let body = http_get(
        &format!("{ip}:8080"),
        "/index.html",
        Duration::from_secs(60),
    );
    assert!(body.contains("served-from-guest"), "{body}");
    let body = http_get(
        &format!("127.0.0.1:{forwarded}"),
        "/index.html",
        Duration::from_secs(60),
    );
    assert!(body.contains("served-from-guest"), "through --port: {body}");
    // The guest reached the host, from the pod's address, with the CNI interface's MAC.
    let got = http_get(&format!("{ip}:8080"), "/got.html", Duration::from_secs(60));
    assert!(got.contains("got-hello-from-host"), "{got}");
    assert!(
        callers.lock().unwrap().contains(&ip),
        "the host saw the guest's calls come from {ip}: {:?}",
        callers.lock().unwrap()
    );
    let mac = http_get(&format!("{ip}:8080"), "/mac.html", Duration::from_secs(60));
    assert!(mac.contains("mac-") && !mac.contains("mac-\n"), "{mac}");
    // /etc/hosts names the pod on its address, as the default flavour's does.
    let hosts = http_get(
        &format!("{ip}:8080"),
        "/hosts.html",
        Duration::from_secs(60),
    );
    assert!(hosts.contains(&ip), "{hosts}");
    // It runs in the machine: the host's namespace of the pod has its interface, a tap
    // beside it, and no app.
    p.v.run(&["stop", &uuid]).success();
    crate::podkit::wait_for("the pod to exit", Duration::from_secs(60), || {
        p.status(&uuid)["state"] == "exited"
    });
    p.v.run(&["rm", &uuid]).success();
    // No lease, NAT rule, pinned namespace (with it its taps and their qdiscs), QEMU,
    // mount or cgroup is left; no tap ever reached the host's namespace.
    net::assert_nothing_left(&uuid, &["default"]);
    nothing_left(&p, Some(&uuid));
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains("vessel-tap"),
        "a tap on the host"
    );
    assert!(!net::host_route(&ip), "the route to {ip} is still there");
}

#[test]
fn a_kvm_pod_on_a_named_network_and_the_default_one_gets_both_interfaces() {
    if !kvm_here("a_kvm_pod_on_a_named_network_and_the_default_one") {
        return;
    }
    let conf = net::NetConfig::new();
    let subnet = net::Subnet::new();
    let name = net::network_name("kvm");
    let _guard = net::NetworkGuard::new(&name, None);
    let p = PodEnv::new();
    conf.network(
        "10-kvm.conflist",
        &serde_json::json!({
            "cniVersion": "1.0.0", "name": name,
            "plugins": [{"type": "ptp", "mtu": 1400,
                "ipam": {"type": "host-local", "subnet": subnet.cidr()}}]
        })
        .to_string(),
    );
    let script = r#"mkdir -p /w
echo nets=$(ls /sys/class/net) > /w/index.html
echo mtu=$(cat /sys/class/net/eth0/mtu) >> /w/index.html
exec httpd -f -p 8080 -h /w"#;
    let uuid = p.detached(
        &[
            &conf.flag(),
            "--stage1=kvm",
            &format!("--net={name},default"),
        ],
        &["/bin/sh", "-c", script],
    );
    let nets = net::networks(&p, &uuid);
    assert_eq!(nets.len(), 2, "{nets:?}");
    assert_eq!(nets[0]["netName"], name.as_str());
    assert_eq!(nets[1]["netName"], "default");
    assert_eq!(nets[1]["ifName"], "eth1");
    // The host reaches the machine on each network, at that network's address.
    let mut bodies = Vec::new();
    for n in &nets {
        let ip = n["ip"].as_str().unwrap();
        bodies.push(http_get(
            &format!("{ip}:8080"),
            "/index.html",
            Duration::from_secs(60),
        ));
    }
    assert!(
        nets[0]["ip"].as_str().unwrap().starts_with(&subnet.prefix),
        "{nets:?}"
    );
    assert!(bodies[0].contains("nets=eth0 eth1 lo"), "{}", bodies[0]);
    assert!(
        bodies[0].contains("mtu=1400"),
        "the plugin's MTU: {}",
        bodies[0]
    );
    p.v.run(&["stop", &uuid]).success();
    crate::podkit::wait_for("the pod to exit", Duration::from_secs(60), || {
        p.status(&uuid)["state"] == "exited"
    });
    p.v.run(&["rm", &uuid]).success();
    net::assert_nothing_left(&uuid, &[&name, "default"]);
    nothing_left(&p, Some(&uuid));
}
