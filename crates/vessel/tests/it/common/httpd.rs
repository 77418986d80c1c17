//! Small HTTP servers on 127.0.0.1 for fetch tests: a plain HTTP file server with canned
//! answers (ETags, Cache-Control, HTML error pages) and faults (stall, drop halfway), a
//! fault-injecting proxy in front of a real registry, and an HTTPS file server run by
//! `openssl s_server -WWW`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do to an answer on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Send this many bytes of the answer (head included), then nothing, keeping the
    /// connection open.
    StallAfter(usize),
    /// Send this many bytes of the answer, then close the connection.
    DropAfter(usize),
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub fault: Fault,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: body.into(),
            fault: Fault::None,
        }
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
            fault: Fault::None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn fault(mut self, f: Fault) -> Reply {
        self.fault = f;
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request's head: its path (query included) and headers.
pub fn read_head(s: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let path = request_line.split_whitespace().nth(1)?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Seen { path, headers })
}

/// Writes `data` as `fault` says; `sent` counts bytes already written on this answer.
fn send_with_fault(
    out: &mut TcpStream,
    data: &[u8],
    sent: &mut usize,
    fault: Fault,
    stop: &AtomicBool,
) -> bool {
    let limit = match fault {
        Fault::None => usize::MAX,
        Fault::StallAfter(n) | Fault::DropAfter(n) => n,
    };
    let room = limit.saturating_sub(*sent).min(data.len());
    if out.write_all(&data[..room]).is_err() {
        return false;
    }
    *sent += room;
    if room < data.len() {
        let _ = out.flush();
        if let Fault::StallAfter(_) = fault {
            // Hold the connection open, silent, until the test ends.
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = out.shutdown(std::net::Shutdown::Both);
        return false;
    }
    true
}

/// Accepts connections on 127.0.0.1 until dropped, one thread per connection.
pub struct Acceptor {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Acceptor {
    pub fn start(handle: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Acceptor::on(listener, handle)
    }

    fn on(
        listener: TcpListener,
        handle: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> Acceptor {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let h = handle.clone();
                        let s2 = s.clone();
                        std::thread::spawn(move || h(conn, &s2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Acceptor { port, stop }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A plain HTTP server with canned answers by path (query included).
pub struct Httpd {
    acceptor: Acceptor,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Httpd {
    pub fn start() -> Httpd {
        Httpd::serve(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// On a given port (80 for plain-HTTP discovery); None if it is taken.
    pub fn start_on(port: u16) -> Option<Httpd> {
        TcpListener::bind(("127.0.0.1", port))
            .ok()
            .map(Httpd::serve)
    }

    fn serve(listener: TcpListener) -> Httpd {
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        let acceptor =
            Acceptor::on(listener, move |mut conn, stop| {
                let Some(seen_now) = read_head(&mut conn) else {
                    return;
                };
                let path = seen_now.path.clone();
                s.lock().unwrap().push(seen_now.clone());
                let reply =
                    r.lock().unwrap().get(&path).cloned().unwrap_or_else(|| {
                        Reply::html(404, "<html><body>404 not found</body></html>")
                    });
                let etag = reply
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("etag"))
                    .map(|(_, v)| v.clone());
                let not_modified =
                    etag.is_some() && etag.as_deref() == seen_now.header("if-none-match");
                let (status, body): (u16, &[u8]) = if not_modified {
                    (304, b"")
                } else {
                    (reply.status, &reply.body)
                };
                let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                if status != 304 {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let mut sent = 0;
                if send_with_fault(&mut conn, head.as_bytes(), &mut sent, reply.fault, stop) {
                    send_with_fault(&mut conn, body, &mut sent, reply.fault, stop);
                }
            });
        Httpd {
            acceptor,
            routes,
            seen,
        }
    }

    pub fn port(&self) -> u16 {
        self.acceptor.port
    }

    /// `http://127.0.0.1:PORT/PATH`
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port(),
            path.trim_start_matches('/')
        )
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes
            .lock()
            .unwrap()
            .insert(format!("/{}", path.trim_start_matches('/')), reply);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn requests_for(&self, path: &str) -> Vec<Seen> {
        let p = format!("/{}", path.trim_start_matches('/'));
        self.requests()
            .into_iter()
            .filter(|s| s.path == p)
            .collect()
    }
}

/// A proxy to a server on 127.0.0.1 that faults the answers to requests whose path
/// contains a pattern (one request per connection, so each answer is faulted alone).
pub struct FaultProxy {
    acceptor: Acceptor,
}

impl FaultProxy {
    pub fn start(upstream: u16, pattern: &str, fault: Fault) -> FaultProxy {
        let pattern = pattern.to_string();
        let acceptor = Acceptor::start(move |mut client, stop| {
            let Some(Seen { path, headers }) = read_head(&mut client) else {
                return;
            };
            let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let request_line = format!("GET {path} HTTP/1.1\r\n");
            let mut head = request_line;
            for (k, v) in headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("connection"))
            {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("Connection: close\r\n\r\n");
            if up.write_all(head.as_bytes()).is_err() {
                return;
            }
            let fault = if path.contains(&pattern) {
                fault
            } else {
                Fault::None
            };
            let mut buf = [0u8; 64 << 10];
            let mut sent = 0;
            loop {
                let n = match up.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if !send_with_fault(&mut client, &buf[..n], &mut sent, fault, stop) {
                    return;
                }
            }
        });
        FaultProxy { acceptor }
    }

    /// `127.0.0.1:PORT`, to name the registry through the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.acceptor.port)
    }
}

/// An HTTPS file server: `openssl s_server -WWW` serving `root` (a query string is part of
/// the file name, so `app?ac-discovery=1` is a file). It answers 200 to everything.
pub struct TlsFileServer {
    child: Child,
    pub port: u16,
}

impl TlsFileServer {
    pub fn start(root: &Path, cert: &Path, key: &Path, port: Option<u16>) -> TlsFileServer {
        let port = port.unwrap_or_else(free_port);
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running openssl s_server");
        wait_for_port(port);
        TlsFileServer { child, port }
    }
}

impl Drop for TlsFileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
/// A port nothing listens on, never the same twice in one test process: the kernel may
/// hand a just-closed port out again, and two registries started at once would then share
/// it (one fails to bind while the other answers for both).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// GET `path` from `addr` (host:port), retried until a 200 answer or `within` has passed:
/// the server (often in a pod just started) may not listen yet. Returns the whole answer.
pub fn http_get(addr: &str, path: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let got = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                Ok(out)
            });
        match got {
            Ok(body) if body.contains(" 200 ") => return body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("GET http://{addr}{path}: {other:?}"),
        }
    }
}

/// Waits (up to 15 s) until something accepts connections on the port.
pub fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port} after 15 s");
}

/// Serialises the tests that need the well-known ports 80 and 443 (appc discovery has no
/// port in names), across threads and test processes.
pub struct WellKnownPorts {
    _file: std::fs::File,
}

impl WellKnownPorts {
    pub fn lock() -> WellKnownPorts {
        let p = PathBuf::from("/tmp/vessel-tests-well-known-ports.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        let rc = unsafe { libc_flock(f.as_raw_fd(), 2) };
        assert_eq!(rc, 0, "flock {}", p.display());
        WellKnownPorts { _file: f }
    }
}

extern "C" {
    #[link_name = "flock"]
    fn libc_flock(fd: i32, op: i32) -> i32;
}
