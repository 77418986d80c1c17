//! The `api-service` process: one TCP listener (`--listen`, or the sockets a service
//! manager passed, as rkt: not both), tonic's HTTP/2 server, the event watcher, and
//! a clean end on SIGINT/SIGTERM.

use std::io;
use std::path::PathBuf;

use tokio_stream::wrappers::TcpListenerStream;

use crate::service::{Flags, Service};
use crate::v1alpha::public_api_server::PublicApiServer;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listening on {addr}: {source} (is another api service running?)")]
    Listen { addr: String, source: io::Error },
    #[error("--listen {0:?} names no address")]
    NoAddress(String),
    #[error("socket activation: {0}")]
    Activation(String),
    #[error("started with sockets from the service manager and --listen: give one or the other")]
    Both,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("serving: {0}")]
    Serve(#[from] tonic::transport::Error),
}

pub struct Options {
    /// None: the default (`localhost:15441`) unless sockets were passed.
    pub listen: Option<String>,
    pub vessel_dir: PathBuf,
    pub version: String,
    pub flags: Flags,
}

pub fn run(opts: Options) -> Result<(), ServerError> {
    let passed = sd::take_listen_fds().map_err(|e| ServerError::Activation(e.to_string()))?;
    if !passed.is_empty() && opts.listen.is_some() {
        return Err(ServerError::Both);
    }
    // The pod tree and store exist before they are watched.
    pod::Pods::open(&opts.vessel_dir).map_err(io::Error::other)?;
    store::Store::open(&opts.vessel_dir).map_err(io::Error::other)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = match passed.into_iter().next() {
            Some(l) => {
                let std_l = std::net::TcpListener::from(l.fd);
                std_l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(std_l)?
            }
            None => {
                let addr = opts
                    .listen
                    .clone()
                    .unwrap_or_else(|| crate::DEFAULT_LISTEN.into());
                let resolved = tokio::net::lookup_host(&addr)
                    .await
                    .map_err(|source| ServerError::Listen {
                        addr: addr.clone(),
                        source,
                    })?
                    .next()
                    .ok_or_else(|| ServerError::NoAddress(addr.clone()))?;
                tokio::net::TcpListener::bind(resolved)
                    .await
                    .map_err(|source| ServerError::Listen { addr, source })?
            }
        };
        let events = crate::events::start(&opts.vessel_dir)?;
        let local = listener.local_addr()?;
        let svc = Service {
            vessel_dir: opts.vessel_dir.clone(),
            version: opts.version.clone(),
            flags: opts.flags.clone(),
            events,
            pods: Default::default(),
        };
        eprintln!("api-service: listening on {local}");
        let _ = sd::notify(&format!("READY=1\nSTATUS=listening on {local}"));
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = sd::notify("STOPPING=1");
        };
        tonic::transport::Server::builder()
            .add_service(PublicApiServer::new(svc))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await?;
        Ok::<(), ServerError>(())
    })?;
    rt.shutdown_background();
    Ok(())
}
