//! The service process: the pods' TCP listener (HTTP/1.1, hyper) and the registration
//! socket, either its own or passed by a service manager (socket activation), the
//! registry they share, and a watch on every registrant: when a pod's supervisor is
//! gone, so is its registration. Registrations on disk are read back at start, keeping
//! those whose supervisor still runs: a restart loses no running pod.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener, UnixStream};

use crate::keys::ServiceKey;
use crate::proto::{Reply, Request, MAX_REQUEST};
use crate::registry::{Registrant, Registry};
use crate::routes::{self, MAX_BODY};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listening on port {port}: {source} (is another metadata service running?)")]
    Port { port: u16, source: io::Error },
    #[error("a metadata service already listens on {}", .0.display())]
    AlreadyRunning(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("socket activation: {0}")]
    Activation(String),
    #[error("{0}")]
    Registry(#[from] crate::registry::RegistryError),
}

pub struct Options {
    pub port: u16,
    pub run_dir: PathBuf,
}

struct Shared {
    registry: RwLock<Registry>,
    key: ServiceKey,
    port: u16,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Sockets passed by a service manager: the registration socket (unix) and the pods'
/// listener (TCP), either or both.
fn activated() -> Result<(Option<OwnedFd>, Option<OwnedFd>), ServerError> {
    let mut unix = None;
    let mut tcp = None;
    for l in sd::take_listen_fds().map_err(|e| ServerError::Activation(e.to_string()))? {
        match l.family() {
            Some(rustix::net::AddressFamily::UNIX) if unix.is_none() => unix = Some(l.fd),
            Some(rustix::net::AddressFamily::INET | rustix::net::AddressFamily::INET6)
                if tcp.is_none() =>
            {
                tcp = Some(l.fd)
            }
            _ => {
                return Err(ServerError::Activation(format!(
                    "descriptor {:?} is neither the registration socket nor a TCP listener",
                    l.name
                )))
            }
        }
    }
    Ok((unix, tcp))
}

/// Binds the registration socket at `path`, unless a live service holds it.
fn bind_registration(path: &Path) -> Result<std::os::unix::net::UnixListener, ServerError> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServerError::AlreadyRunning(path.to_path_buf()));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at(path)(e)),
    }
    let l = std::os::unix::net::UnixListener::bind(path).map_err(io_at(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_at(path))?;
    Ok(l)
}

/// Runs the service until SIGINT or SIGTERM.
pub fn run(opts: Options) -> Result<(), ServerError> {
    let (unix_fd, tcp_fd) = activated()?;
    // The port first: a second service fails here, before touching the first's socket.
    let tcp = match tcp_fd {
        Some(fd) => std::net::TcpListener::from(fd),
        None => std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, opts.port)))
            .map_err(|source| ServerError::Port {
            port: opts.port,
            source,
        })?,
    };
    let port = tcp.local_addr().map(|a| a.port()).unwrap_or(opts.port);
    let state_dir = crate::paths::state_dir(&opts.run_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state_dir)
        .map_err(io_at(&state_dir))?;
    let key_path = crate::paths::key(&opts.run_dir);
    let key = ServiceKey::load_or_create(&key_path).map_err(io_at(&key_path))?;
    let socket_path = crate::paths::socket(&opts.run_dir);
    let (unix, bound_socket) = match unix_fd {
        Some(fd) => (std::os::unix::net::UnixListener::from(fd), false),
        None => (bind_registration(&socket_path)?, true),
    };
    let mut registry = Registry::load(&opts.run_dir)?;
    for (uuid, who) in registry.registrants() {
        if !who.alive() {
            registry.unregister_if(&uuid, who);
        }
    }
    let shared = Arc::new(Shared {
        registry: RwLock::new(registry),
        key,
        port,
    });
    tcp.set_nonblocking(true).map_err(io_at(&socket_path))?;
    unix.set_nonblocking(true).map_err(io_at(&socket_path))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_at(&socket_path))?;
    let result = rt.block_on(async move {
        let tcp = TcpListener::from_std(tcp).map_err(io_at(&socket_path))?;
        let unix = UnixListener::from_std(unix).map_err(io_at(&socket_path))?;
        let survivors = shared.registry.read().unwrap().registrants();
        for (uuid, who) in survivors {
            tokio::spawn(watch(shared.clone(), uuid, who));
        }
        tokio::spawn(serve_pods(tcp, shared.clone()));
        tokio::spawn(serve_registrations(unix, shared.clone()));
        let n = shared.registry.read().unwrap().len();
        eprintln!(
            "metadata-service: listening on port {port} for pods, on {} for registrations ({n} pods registered)",
            socket_path.display()
        );
        let _ = sd::notify(&format!(
            "READY=1\nSTATUS=port {port}, {n} pods registered"
        ));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io_at(&socket_path))?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = sd::notify("STOPPING=1");
        Ok::<(), ServerError>(())
    });
    // A socket of our own goes; a service manager's stays (it owns it). Registrations
    // stay on disk for the next start.
    if bound_socket {
        let _ = std::fs::remove_file(crate::paths::socket(&opts.run_dir));
    }
    rt.shutdown_background();
    result
}

/// The address a request came from, IPv4-mapped IPv6 as IPv4.
fn source(addr: SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        ip => ip,
    }
}

async fn serve_pods(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait, do not spin.
                eprintln!("metadata-service: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let ip = source(peer);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| answer(req, ip, shared.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn answer(
    req: hyper::Request<Incoming>,
    ip: IpAddr,
    shared: Arc<Shared>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || routes::Response::error(413, format!("the body is over {MAX_BODY} bytes"));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let response = if declared.is_some_and(|n| n > MAX_BODY as u64) {
        too_large()
    } else {
        match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Err(_) => too_large(),
            Ok(body) => {
                let body = body.to_bytes();
                let pod = shared.registry.read().unwrap().by_ip(ip);
                routes::route(
                    pod.as_deref(),
                    ip,
                    &shared.key,
                    &routes::Request {
                        method: method.as_str(),
                        path: &path,
                        content_type: content_type.as_deref(),
                        body: &body,
                    },
                )
            }
        }
    };
    let mut out = hyper::Response::new(Full::new(if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(response.body)
    }));
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(response.content_type),
    );
    if let Some(allow) = response.allow {
        out.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    Ok(out)
}

async fn serve_registrations(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(registration(stream, shared.clone()));
            }
            Err(e) => {
                eprintln!("metadata-service: accept on the registration socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn registration(stream: UnixStream, shared: Arc<Shared>) {
    let cred = stream.peer_cred().ok();
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let read = BufReader::new(read)
        .take(MAX_REQUEST as u64 + 1)
        .read_until(b'\n', &mut line)
        .await;
    let reply = match (read, cred) {
        (Err(e), _) => Reply::err(format!("reading the request: {e}")),
        (_, None) => Reply::err("cannot tell who is asking"),
        (Ok(_), _) if line.len() > MAX_REQUEST => {
            Reply::err(format!("request over {MAX_REQUEST} bytes"))
        }
        (Ok(_), Some(c)) => match serde_json::from_slice::<Request>(&line) {
            Err(e) => Reply::err(format!("request is not a registration: {e}")),
            Ok(Request::Ping) => Reply::ok(Some(shared.port)),
            // Only root registers pods: nobody else can pretend to be one.
            Ok(_) if c.uid() != 0 && c.uid() != rustix::process::geteuid().as_raw() => {
                Reply::err(format!("uid {} may not register pods", c.uid()))
            }
            Ok(Request::Register(reg)) => match c.pid().and_then(Registrant::of) {
                None => Reply::err("the registering process is gone"),
                Some(who) => {
                    let uuid = reg.uuid.clone();
                    let done = shared.registry.write().unwrap().register(reg, who);
                    match done {
                        Ok(()) => {
                            tokio::spawn(watch(shared.clone(), uuid, who));
                            Reply::ok(Some(shared.port))
                        }
                        Err(e) => Reply::err(e.to_string()),
                    }
                }
            },
            Ok(Request::Unregister { uuid }) => {
                shared.registry.write().unwrap().unregister(&uuid);
                Reply::ok(None)
            }
        },
    };
    let mut out = serde_json::to_vec(&reply).expect("serialisable");
    out.push(b'\n');
    let _ = write.write_all(&out).await;
}

/// Waits for a registrant to end, then forgets its pod (unless registered again since).
async fn watch(shared: Arc<Shared>, uuid: String, who: Registrant) {
    let pid = rustix::process::Pid::from_raw(who.pid);
    let fd = pid
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::NONBLOCK).ok());
    if let Some(fd) = fd {
        // Opened after the start time was read: make sure it is the same process.
        if who.alive() {
            // SAFETY: the AsyncFd owns the OwnedFd, so it stays open and the same.
            if let Ok(afd) = unsafe { tokio::io::unix::AsyncFd::register(fd) } {
                let _ = afd.readable().await;
            }
        }
    }
    shared.registry.write().unwrap().unregister_if(&uuid, who);
}
