//! Kit for the metadata and API service tests: network namespaces with a veth link to
//! the host (the way a pod reaches the host), a metadata service of the test's own
//! (its own `VESSEL_RUN_DIR` and port), and raw HTTP from inside a namespace (curl).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::VESSEL;

static LINK: AtomicU32 = AtomicU32::new(0);

/// A network namespace joined to the host by a veth pair: host side `.1/30`, namespace
/// side `.2/30`, in 10.201.N.0 (N unique in this test process).
pub struct Netns {
    pub name: String,
    pub host_ip: Ipv4Addr,
    pub ip: Ipv4Addr,
}

impl Netns {
    pub fn new() -> Netns {
        let n = LINK.fetch_add(1, Ordering::Relaxed);
        assert!(n < 64, "too many namespaces for 10.201.0.0/16");
        let id = std::process::id() % 1000;
        let name = format!("vsl-mds-{id}-{n}");
        let host_if = format!("vmh{id}x{n}");
        let ns_if = format!("vmn{id}x{n}");
        let base = (n * 4) as u8;
        let third = 200u8.wrapping_add((id % 50) as u8);
        let host_ip = Ipv4Addr::new(10, third, base / 4, 1);
        let ip = Ipv4Addr::new(10, third, base / 4, 2);
        let sh = |args: &str| {
            let st = Command::new("sh").arg("-c").arg(args).status().unwrap();
            assert!(st.success(), "`{args}` failed (tests need root)");
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&format!("ip netns add {name}"));
        sh(&format!(
            "ip link add {host_if} type veth peer name {ns_if} netns {name} && \
             ip addr add {host_ip}/30 dev {host_if} && ip link set {host_if} up && \
             ip -n {name} addr add {ip}/30 dev {ns_if} && ip -n {name} link set {ns_if} up && \
             ip -n {name} link set lo up"
        ));
        Netns { name, host_ip, ip }
    }

    /// `curl -i` from inside the namespace: the raw response.
    pub fn curl(&self, args: &[&str]) -> HttpResponse {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "curl",
                "-s",
                "-i",
                "--max-time",
                "10",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {args:?} from {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        HttpResponse::parse(&out.stdout)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and so the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// One parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn parse(mut raw: &[u8]) -> HttpResponse {
        // Interim answers (100 Continue) come first: the final one follows.
        while raw.starts_with(b"HTTP/1.1 1") {
            let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            raw = &raw[end + 4..];
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// A free TCP port on this host (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `vessel metadata-service` of the test's own.
pub struct Mds {
    pub child: Option<Child>,
    pub run_dir: PathBuf,
    pub port: u16,
    _tmp: Option<tempfile::TempDir>,
    pub log: PathBuf,
}

impl Mds {
    pub fn start() -> Mds {
        let tmp = tempfile::tempdir().unwrap();
        let run_dir = tmp.path().to_path_buf();
        let mut m = Mds {
            child: None,
            run_dir,
            port: free_port(),
            _tmp: Some(tmp),
            log: PathBuf::new(),
        };
        m.log = m.run_dir.join("service.log");
        m.restart();
        m
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("metadata-svc.sock")
    }

    pub fn client(&self) -> mds::client::Client {
        mds::client::Client::new(self.socket())
    }

    /// `vessel metadata-service` with this service's port and run dir.
    pub fn command(run_dir: &Path, port: u16) -> Command {
        let mut c = Command::new(VESSEL);
        c.args(["metadata-service", "--listen-port", &port.to_string()])
            .env("VESSEL_RUN_DIR", run_dir)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null());
        c
    }

    /// Starts (again) and waits until it answers on its socket.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Mds::command(&self.run_dir, self.port)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn wait_ready(&mut self) {
        let t = Instant::now();
        loop {
            if self.client().ping().is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "metadata service exited with {st}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(t.elapsed() < Duration::from_secs(20), "service not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, host: Ipv4Addr, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }
}

impl Drop for Mds {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // SIGTERM: the service removes its socket.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
        }
        if let Some(mut c) = self.child.take() {
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `vessel api-service` on a free loopback port, over one `--dir`, with a gRPC client
/// (rkt's v1alpha, generated from the same vendored .proto) and a runtime to drive it.
pub struct ApiService {
    pub child: Child,
    pub addr: String,
    pub rt: tokio::runtime::Runtime,
    pub log: PathBuf,
}

pub type ApiClient = api::v1alpha::public_api_client::PublicApiClient<tonic::transport::Channel>;

impl ApiService {
    pub fn start(dir: &Path, log: PathBuf) -> ApiService {
        let addr = format!("127.0.0.1:{}", free_port());
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(VESSEL)
            .arg("--dir")
            .arg(dir)
            .args(["api-service", "--listen", &addr])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut s = ApiService {
            child,
            addr,
            rt,
            log,
        };
        let t = Instant::now();
        while s.try_client().is_none() {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("api service exited with {st}: {}", s.log_text());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "api service not ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_client(&self) -> Option<ApiClient> {
        let url = format!("http://{}", self.addr);
        self.rt.block_on(ApiClient::connect(url)).ok()
    }

    pub fn client(&self) -> ApiClient {
        self.try_client().expect("connecting to the api service")
    }
}

impl Drop for ApiService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
