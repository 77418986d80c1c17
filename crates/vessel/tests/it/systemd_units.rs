//! Vessel under systemd, with the protocols made by the test (systemd is not PID 1 on
//! these machines): `vessel run` as a `Type=notify` unit's ExecStart tells READY=1 once
//! its apps run; the services take the sockets a `.socket` unit passes (LISTEN_FDS) and
//! tell READY=1 too. An app whose image says it speaks sd_notify makes the pod ready
//! itself; sockets passed to `vessel run` reach the apps' socket-activated ports (the
//! apps are crates/vessel/examples/sd_app.rs).

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::services::free_port;
use crate::common::VESSEL;
use crate::podkit::PodEnv;

/// A `$NOTIFY_SOCKET` of the test's own.
struct Notify {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sock: UnixDatagram,
}

impl Notify {
    fn new() -> Notify {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Notify {
            _dir: dir,
            path,
            sock,
        }
    }

    /// The messages already sent, without waiting.
    fn drain(&self) -> Vec<String> {
        self.sock.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.sock.set_nonblocking(false).unwrap();
        out
    }

    fn next(&self) -> String {
        let mut buf = vec![0u8; 4096];
        // A signal to the test process (another test's child exiting) interrupts the wait.
        let n = loop {
            match self.sock.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.expect("a notification within 30 s"),
            }
        };
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

#[test]
fn run_tells_ready_once_its_apps_run() {
    let p = PodEnv::new();
    let n = Notify::new();
    let saved = p.v.path("uuid");
    let mut child =
        p.v.command(&[
            "run",
            &format!("--uuid-file-save={}", saved.display()),
            &p.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 0.05; done",
        ])
        .env("NOTIFY_SOCKET", &n.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let msg = n.next();
    let uuid = std::fs::read_to_string(&saved).unwrap().trim().to_string();
    assert_eq!(msg, format!("READY=1\nSTATUS=pod {uuid}: apps running"));
    // When it says so, the app runs.
    let st = p.status(&uuid);
    assert_eq!(st["state"], "running", "{st}");
    assert!(st["apps"][0].get("pid").is_some(), "{st}");
    p.run(&["stop", &uuid]).success();
    assert!(child.wait().unwrap().success());

    // An app that cannot start: a status saying why, never READY=1.
    let r =
        p.v.command(&["run", "--rm", &p.image, "--exec", "/no/such/program"])
            .env("NOTIFY_SOCKET", &n.path)
            .output()
            .unwrap();
    assert!(!r.status.success());
    let msg = n.next();
    assert!(msg.starts_with("STATUS=pod "), "{msg}");
    assert!(!msg.contains("READY=1"), "{msg}");
}

/// Spawns `vessel ARGS` with `fds` at 3, 4, ... and LISTEN_FDS/LISTEN_PID for it, as a
/// service manager does (the pid is known only in the child: a shell sets it, then execs).
fn activated(
    args: &[&str],
    fds: &[i32],
    names: Option<&str>,
    notify: &Notify,
    log: &std::path::Path,
) -> std::process::Child {
    let names = names
        .map(|n| format!("LISTEN_FDNAMES='{n}' "))
        .unwrap_or_default();
    let script = format!(
        "{names}LISTEN_PID=$$ LISTEN_FDS={} exec \"$0\" \"$@\"",
        fds.len()
    );
    let fds = fds.to_vec();
    let out = std::fs::File::create(log).unwrap();
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).arg(VESSEL).args(args);
    c.env("NOTIFY_SOCKET", &notify.path)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // SAFETY: only dup2 and fcntl between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                let target = 3 + i as i32;
                if libc::dup2(*fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::fcntl(target, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
    c.spawn().unwrap()
}

#[test]
fn the_services_take_passed_sockets_and_tell_ready() {
    let n = Notify::new();
    let run_dir = tempfile::tempdir().unwrap();
    // The metadata service: the pods' TCP port and the registration socket, both passed.
    let tcp = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let sock_path = run_dir.path().join("metadata-svc.sock");
    let unix = UnixListener::bind(&sock_path).unwrap();
    let log = run_dir.path().join("mds.log");
    let mut mds = activated(
        &["metadata-service", "--listen-port", "1"],
        &[tcp.as_raw_fd(), unix.as_raw_fd()],
        None,
        &n,
        &log,
    );
    let msg = n.next();
    assert!(msg.starts_with("READY=1\n"), "{msg}");
    assert!(msg.contains(&format!("port {port}")), "{msg}");
    // It answers on the passed registration socket with the passed port.
    let client = mds::client::Client::new(&sock_path);
    assert_eq!(client.ping().unwrap(), port);
    let _ = mds.kill();
    let _ = mds.wait();
    // The socket is the manager's: it is left in place.
    assert!(sock_path.exists());

    // The API service: its TCP listener, passed.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = run_dir.path().join("api.log");
    let mut api = activated(
        &["--dir", dir.path().to_str().unwrap(), "api-service"],
        &[tcp.as_raw_fd()],
        None,
        &n,
        &log,
    );
    let msg = n.next();
    assert!(msg.starts_with("READY=1\n"), "{msg}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = rt
        .block_on(crate::common::services::ApiClient::connect(format!(
            "http://{addr}"
        )))
        .unwrap();
    let info = rt
        .block_on(c.get_info(api::v1alpha::GetInfoRequest {}))
        .unwrap()
        .into_inner();
    assert_eq!(info.info.unwrap().api_version, "1.0.0-alpha");
    // Sockets passed and --listen as well: refused, as rkt does.
    let tcp2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let log2 = run_dir.path().join("api2.log");
    let mut both = activated(
        &[
            "--dir",
            dir.path().to_str().unwrap(),
            "api-service",
            &format!("--listen=127.0.0.1:{}", free_port()),
        ],
        &[tcp2.as_raw_fd()],
        None,
        &n,
        &log2,
    );
    let st = both.wait().unwrap();
    assert!(!st.success());
    let text = std::fs::read_to_string(&log2).unwrap();
    assert!(text.contains("--listen"), "{text}");
    let _ = api.kill();
    let _ = api.wait();
}

/// An image of busybox and the sd_app helper, its manifest edited by `edit`; its name.
fn sd_image(p: &PodEnv, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    use crate::common::aci::AciLayout;
    let mut layout = AciLayout::create(
        &p.v.path(&format!("{name}.layout")),
        &format!("example.com/{name}"),
        "1",
    );
    crate::common::rootfs::busybox_rootfs(&layout.rootfs());
    std::fs::copy(
        crate::common::example("sd_app"),
        layout.rootfs().join("sd_app"),
    )
    .unwrap();
    edit(&mut layout.manifest);
    let aci = layout.build(
        &p.v.path(&format!("{name}.aci")),
        crate::common::compress::Compression::None,
    );
    p.v.fetch(&aci.path_str());
    format!("example.com/{name}:1")
}

fn speaks_sd_notify(m: &mut serde_json::Value) {
    m["annotations"] = serde_json::json!([
        {"name": "appc.io/executor/supports-systemd-notify", "value": "true"}
    ]);
}

#[test]
fn an_app_that_speaks_sd_notify_makes_the_pod_ready_itself() {
    let p = PodEnv::new();
    let image = sd_image(&p, "notifier", speaks_sd_notify);
    let n = Notify::new();
    let saved = p.v.path("uuid");
    // A status first (with a MAINPID that must not pass), READY=1 half a second later.
    let script = "echo \"socket=$NOTIFY_SOCKET\"
/sd_app notify \"STATUS=warming up
MAINPID=1\"
sleep 0.5
/sd_app notify \"READY=1
STATUS=serving\" WATCHDOG=1
trap 'exit 0' TERM; while true; do sleep 0.05; done";
    let child =
        p.v.command(&[
            "run",
            &format!("--uuid-file-save={}", saved.display()),
            "--net=none",
            &image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            script,
        ])
        .env("NOTIFY_SOCKET", &n.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut before = Vec::new();
    let ready = loop {
        let m = n.next();
        if m.contains("READY=1") {
            break m;
        }
        before.push(m);
    };
    let uuid = std::fs::read_to_string(&saved).unwrap().trim().to_string();
    // Ready when the app said so, with its status; not when the pod started.
    assert_eq!(ready, "READY=1\nSTATUS=serving", "before: {before:?}");
    assert!(
        before.contains(&format!(
            "STATUS=pod {uuid}: apps running, waiting for notifier to be ready"
        )),
        "{before:?}"
    );
    assert!(
        before.contains(&"STATUS=warming up".to_string()),
        "{before:?}"
    );
    assert_eq!(n.next(), "WATCHDOG=1");
    p.run(&["stop", &uuid]).success();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("socket=/run/notify/notify.sock"),
        "{out:?}"
    );

    // An app that gives up before it is ready: its status passes, READY=1 never does.
    let r =
        p.v.command(&[
            "run",
            "--rm",
            "--net=none",
            &image,
            "--exec",
            "/sd_app",
            "--",
            "notify",
            "STATUS=giving up",
        ])
        .env("NOTIFY_SOCKET", &n.path)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let all = n.drain();
    assert!(all.contains(&"STATUS=giving up".to_string()), "{all:?}");
    assert!(all.iter().all(|m| !m.contains("READY=1")), "{all:?}");

    // Not under a unit: the app's messages are read and dropped, and it runs as ever.
    let r = p.run(&[
        "run",
        "--rm",
        "--net=none",
        &image,
        "--exec",
        "/sd_app",
        "--",
        "notify",
        "READY=1",
    ]);
    r.success();
}

#[test]
fn passed_sockets_reach_the_apps_socket_activated_ports() {
    use std::io::{BufRead, BufReader, Write};
    let p = PodEnv::new();
    let port = crate::common::services::free_port();
    let image = sd_image(&p, "activated", |m| {
        m["app"]["ports"] = serde_json::json!([
            {"name": "echo", "protocol": "tcp", "port": port, "socketActivated": true},
            {"name": "admin", "protocol": "tcp", "port": 9, "socketActivated": true},
        ]);
    });
    // One socket on the port the app declares, one on another port, named after its port.
    let by_number = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let by_name = TcpListener::bind("127.0.0.1:0").unwrap();
    let n = Notify::new();
    let log = p.v.path("activated.log");
    let dir = p.v.dir().to_str().unwrap().to_string();
    let serve = [
        "--dir",
        &dir,
        "run",
        "--rm",
        "--net=none",
        &image,
        "--exec",
        "/sd_app",
        "--",
        "serve",
    ];
    let mut child = activated(
        &serve,
        &[by_number.as_raw_fd(), by_name.as_raw_fd()],
        Some("unit.socket:admin"),
        &n,
        &log,
    );
    assert!(n.next().starts_with("READY=1\n"));
    let ask = |addr: std::net::SocketAddr, word: &str| {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        writeln!(c, "{word}").unwrap();
        let mut line = String::new();
        BufReader::new(c).read_line(&mut line).unwrap();
        line.trim_end().to_string()
    };
    // Renumbered from 3 in the order passed, named after the ports, LISTEN_PID the app's.
    assert_eq!(
        ask(by_number.local_addr().unwrap(), "one"),
        "fds=2 names=echo:admin fd=3 one"
    );
    assert_eq!(
        ask(by_name.local_addr().unwrap(), "two"),
        "fds=2 names=echo:admin fd=4 two"
    );
    let st = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(st.success(), "{text}");
    assert!(text.contains("LISTEN_FDS=2"), "{text}");

    // A socket that fits no port: refused, naming it, and nothing keeps running.
    let stray = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let log = p.v.path("stray.log");
    let mut child = activated(&serve, &[stray.as_raw_fd()], None, &n, &log);
    let st = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!st.success(), "{text}");
    assert!(text.contains("fits no socket-activated port"), "{text}");
    assert!(
        text.contains(&format!("{}/udp", stray.local_addr().unwrap())),
        "{text}"
    );
    assert!(text.contains("echo"), "{text}");
    assert!(
        p.list().iter().all(|pod| pod["state"] != "running"),
        "{:?}",
        p.list()
    );
}
