//! The registrant's side of `proto`: blocking, on a std unix stream, with timeouts, so
//! `vessel run` and `gc` need no async runtime and never hang on a stuck service.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proto::{Registration, Reply, Request};

/// How long one exchange may take.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no metadata service listens on {}: {source}", path.display())]
    NotRunning { path: PathBuf, source: io::Error },
    #[error("metadata service on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("metadata service on {}: bad reply: {reason}", path.display())]
    BadReply { path: PathBuf, reason: String },
    #[error("metadata service on {} refused: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

/// A connection to the service's registration socket.
pub struct Client {
    path: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            path: socket.into(),
        }
    }

    /// The service at the default socket (`$VESSEL_RUN_DIR`).
    pub fn default_socket() -> Client {
        Client::new(crate::paths::socket(&crate::paths::run_dir()))
    }

    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// The port pods reach the service on, if a service answers.
    pub fn ping(&self) -> Result<u16, ClientError> {
        let r = self.exchange(&Request::Ping)?;
        r.port.ok_or_else(|| ClientError::BadReply {
            path: self.path.clone(),
            reason: "no port in the reply".into(),
        })
    }

    /// Registers a pod; returns the service's port.
    pub fn register(&self, reg: &Registration) -> Result<u16, ClientError> {
        let r = self.exchange(&Request::Register(reg.clone()))?;
        Ok(r.port.unwrap_or(crate::DEFAULT_PORT))
    }

    /// Forgets a pod. Forgetting a pod the service does not know is not an error.
    pub fn unregister(&self, uuid: &str) -> Result<(), ClientError> {
        self.exchange(&Request::Unregister {
            uuid: uuid.to_string(),
        })
        .map(|_| ())
    }

    fn exchange(&self, req: &Request) -> Result<Reply, ClientError> {
        let io_err = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        let stream = UnixStream::connect(&self.path).map_err(|source| ClientError::NotRunning {
            path: self.path.clone(),
            source,
        })?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io_err)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io_err)?;
        let mut line = serde_json::to_vec(req).expect("serialisable");
        line.push(b'\n');
        (&stream).write_all(&line).map_err(io_err)?;
        let mut answer = String::new();
        BufReader::new(&stream)
            .read_line(&mut answer)
            .map_err(io_err)?;
        let reply: Reply =
            serde_json::from_str(answer.trim()).map_err(|e| ClientError::BadReply {
                path: self.path.clone(),
                reason: if answer.is_empty() {
                    "the service closed the connection".into()
                } else {
                    e.to_string()
                },
            })?;
        if !reply.ok {
            return Err(ClientError::Refused {
                path: self.path.clone(),
                reason: reply.error.unwrap_or_default(),
            });
        }
        Ok(reply)
    }
}
