//! The one HTTP client of vessel: blocking (ureq over rustls), one agent per server so that
//! each gets its own certificate authorities, and the user's insecure options applied in
//! one place. No async runtime: `run` takes this path too and must stay lean.
//!
//! TLS trusts the system's CAs plus `<config>/certs.d/<host[:port]>/*.crt` (local config
//! first, then system config). Plain HTTP is refused unless `--insecure-options=http`.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ureq::http::{Response, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Body};

use crate::error::{FetchError, Result};

/// Seconds without a byte from a server before giving up (override: VESSEL_FETCH_TIMEOUT).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Manifests, keys, signatures, discovery pages: never more than this.
pub const SMALL_LIMIT: u64 = 8 << 20;

#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// `--insecure-options=tls`: accept any certificate.
    pub insecure_tls: bool,
    /// `--insecure-options=http`: allow plain HTTP.
    pub allow_http: bool,
    /// Where `certs.d/` is looked for, first match wins per file name.
    pub config_dirs: Vec<PathBuf>,
}

pub struct Http {
    settings: HttpSettings,
    agents: Mutex<HashMap<String, Agent>>,
    system_roots: OnceLock<Option<Arc<Vec<Certificate<'static>>>>>,
}

pub fn timeout() -> Duration {
    let secs = std::env::var("VESSEL_FETCH_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(DEFAULT_TIMEOUT_SECS as f64);
    Duration::from_secs_f64(secs)
}

/// The words that explain a timeout, for every place one can surface.
pub fn timeout_reason() -> String {
    format!(
        "the server sent nothing for {} s (timed out; set VESSEL_FETCH_TIMEOUT=SECONDS to wait longer)",
        timeout().as_secs_f64()
    )
}

/// Describes an error of ureq in the words a user needs.
pub fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => timeout_reason(),
        ureq::Error::Io(io) => describe_io(io),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "could not connect".into(),
        other => other.to_string(),
    }
}

/// Describes an error met while reading a response body.
pub fn describe_io(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::TimedOut
        || e.to_string().to_ascii_lowercase().contains("timeout")
    {
        return timeout_reason();
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            format!("the connection closed before the whole answer arrived ({e})")
        }
        std::io::ErrorKind::ConnectionRefused => format!("connection refused ({e})"),
        _ => e.to_string(),
    }
}

impl Http {
    pub fn new(settings: HttpSettings) -> Http {
        Http {
            settings,
            agents: Mutex::new(HashMap::new()),
            system_roots: OnceLock::new(),
        }
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// GET `url`; any status comes back as a response (the caller decides what it means).
    pub fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<Response<Body>> {
        self.request("GET", url, headers)
    }

    pub fn head(&self, url: &str, headers: &[(&str, String)]) -> Result<Response<Body>> {
        self.request("HEAD", url, headers)
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<Body>> {
        let uri: Uri = url
            .parse()
            .map_err(|e| FetchError::http(url, format!("not a valid URL: {e}")))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.settings.allow_http => {}
            Some("http") => {
                return Err(FetchError::http(
                    url,
                    "plain HTTP is not allowed; pass --insecure-options=http to allow it",
                ))
            }
            other => {
                return Err(FetchError::http(
                    url,
                    format!("unsupported URL scheme {:?}", other.unwrap_or("")),
                ))
            }
        }
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| FetchError::http(url, "the URL names no host"))?;
        let agent = self.agent_for(&authority)?;
        let result = if method == "HEAD" {
            let mut req = agent.head(url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            req.call()
        } else {
            let mut req = agent.get(url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            req.call()
        };
        result.map_err(|e| FetchError::http(url, describe(&e)))
    }

    fn agent_for(&self, authority: &str) -> Result<Agent> {
        let mut agents = self.agents.lock().unwrap();
        if let Some(a) = agents.get(authority) {
            return Ok(a.clone());
        }
        let tls = if self.settings.insecure_tls {
            TlsConfig::builder().disable_verification(true).build()
        } else {
            TlsConfig::builder()
                .root_certs(self.roots_for(authority)?)
                .build()
        };
        let t = timeout();
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!self.settings.allow_http)
            .user_agent(concat!("vessel/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .timeout_connect(Some(t))
            .timeout_per_read(Some(t))
            .timeout_recv_response(Some(t))
            // Blobs come as they are stored: no transparent decompression.
            .accept_encoding("identity")
            .build()
            .into();
        agents.insert(authority.to_string(), agent.clone());
        Ok(agent)
    }

    /// The system's CAs plus the extra ones configured for this server.
    fn roots_for(&self, authority: &str) -> Result<RootCerts> {
        let extra = self.extra_cas(authority)?;
        let system = self.system_roots.get_or_init(load_system_roots).clone();
        match system {
            None if extra.is_empty() => Ok(RootCerts::WebPki),
            None => Ok(RootCerts::Specific(Arc::new(extra))),
            Some(sys) => {
                let mut all = (*sys).clone();
                all.extend(extra);
                Ok(RootCerts::Specific(Arc::new(all)))
            }
        }
    }

    fn extra_cas(&self, authority: &str) -> Result<Vec<Certificate<'static>>> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for dir in &self.settings.config_dirs {
            let d = dir.join("certs.d").join(authority);
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            names.sort();
            for p in names {
                let is_ca = p.extension().is_some_and(|e| e == "crt");
                let name = p.file_name().map(|n| n.to_os_string());
                if !is_ca || !seen.insert(name) {
                    continue;
                }
                let pem = std::fs::read(&p).map_err(|e| FetchError::File {
                    path: p.clone(),
                    reason: e.to_string(),
                })?;
                let certs = parse_certs(&pem);
                if certs.is_empty() {
                    return Err(FetchError::File {
                        path: p,
                        reason: "holds no PEM certificate".into(),
                    });
                }
                out.extend(certs);
            }
        }
        Ok(out)
    }
}

fn parse_certs(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// The system's CA bundle (Debian's ca-certificates), or None to fall back to the
/// Mozilla roots compiled in.
fn load_system_roots() -> Option<Arc<Vec<Certificate<'static>>>> {
    let candidates = [
        std::env::var("SSL_CERT_FILE").ok(),
        Some("/etc/ssl/certs/ca-certificates.crt".into()),
        Some("/etc/pki/tls/certs/ca-bundle.crt".into()),
    ];
    for c in candidates.into_iter().flatten() {
        if let Ok(pem) = std::fs::read(&c) {
            let certs = parse_certs(&pem);
            if !certs.is_empty() {
                return Some(Arc::new(certs));
            }
        }
    }
    None
}

/// Reads a small answer whole, refusing one larger than `limit`.
pub fn read_limited(resp: Response<Body>, url: &str, limit: u64) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| FetchError::http(url, describe_io(&e)))?;
    if data.len() as u64 > limit {
        return Err(FetchError::http(
            url,
            format!("the answer is larger than {limit} bytes"),
        ));
    }
    Ok(data)
}

/// A short description of an unexpected status, with the start of the body when it is text.
pub fn status_error(url: &str, resp: Response<Body>) -> FetchError {
    let status = resp.status();
    let body = read_limited(resp, url, 64 << 10).unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet: String = snippet.chars().take(200).collect();
    let reason = match status.as_u16() {
        401 => {
            "401 Unauthorized: the server wants credentials (add them to <local-config>/auth.d/)"
                .to_string()
        }
        403 => "403 Forbidden: the credentials do not give access".to_string(),
        404 => "404 Not Found".to_string(),
        s => format!(
            "unexpected status {s} {}",
            status.canonical_reason().unwrap_or("")
        ),
    };
    if snippet.is_empty() {
        FetchError::http(url, reason)
    } else {
        FetchError::http(url, format!("{reason}: {snippet}"))
    }
}

/// A header's value as text.
pub fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Says which download failed, and in plain words, when reading a body fails.
pub struct Described<R> {
    inner: R,
    url: String,
}

impl<R> Described<R> {
    pub fn new(url: &str, inner: R) -> Described<R> {
        Described {
            inner,
            url: url.to_string(),
        }
    }
}

impl<R: Read> Read for Described<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("downloading {}: {}", self.url, describe_io(&e)),
            )
        })
    }
}
