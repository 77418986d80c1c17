//! A client for one repository of an OCI distribution registry: the API base found by a
//! ping of `/v2/`, authentication answered once and reused, manifests read whole and
//! checked, blobs streamed (the store hashes and checks them).

use std::io::Read;
use std::sync::Mutex;

use store::import::oci::BlobSource;
use store::{Digest, StoreError};
use ureq::http::Response;
use ureq::Body;

use super::auth::{self, parse_challenge, Challenge};
use super::reference::DockerRef;
use crate::credentials::Credential;
use crate::error::{FetchError, Result};
use crate::http::{self, Http};
use crate::progress::Progress;

pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

pub struct Registry<'h> {
    http: &'h Http,
    r: DockerRef,
    /// `https://host[:port]/v2/` (or `http://` when allowed and needed).
    base: String,
    credential: Option<Credential>,
    authorization: Mutex<Option<String>>,
    progress: Progress,
}

impl<'h> Registry<'h> {
    /// Pings the registry, choosing HTTPS, or plain HTTP only when the user allowed it and
    /// HTTPS does not answer; answers the registry's challenge if it sends one.
    pub fn connect(
        http: &'h Http,
        r: &DockerRef,
        credential: Option<Credential>,
        progress: Progress,
    ) -> Result<Registry<'h>> {
        let https = format!("https://{}/v2/", r.api_host());
        let (base, ping) = match http.get(&https, &[]) {
            Ok(resp) => (https, resp),
            Err(e) if http.settings().allow_http => {
                let plain = format!("http://{}/v2/", r.api_host());
                match http.get(&plain, &[]) {
                    Ok(resp) => (plain, resp),
                    Err(_) => return Err(e),
                }
            }
            Err(FetchError::Http { url, reason }) => {
                return Err(FetchError::http(
                    url,
                    format!(
                    "{reason} (if the registry speaks plain HTTP, pass --insecure-options=http)"
                ),
                ))
            }
            Err(e) => return Err(e),
        };
        let reg = Registry {
            http,
            r: r.clone(),
            base,
            credential,
            authorization: Mutex::new(None),
            progress,
        };
        match ping.status().as_u16() {
            200..=299 => {}
            401 => reg.authenticate(&ping)?,
            _ => {
                let url = reg.base.clone();
                return Err(http::status_error(&url, ping)).map_err(|e| match e {
                    FetchError::Http { url, reason } => FetchError::http(
                        url,
                        format!("{reason} (is this an OCI distribution registry?)"),
                    ),
                    e => e,
                });
            }
        }
        Ok(reg)
    }

    fn authenticate(&self, resp: &Response<Body>) -> Result<()> {
        let header = http::header(resp, "www-authenticate").unwrap_or_default();
        let challenge = parse_challenge(&header).unwrap_or(Challenge::Basic);
        let value = auth::answer(
            self.http,
            &challenge,
            self.credential.as_ref(),
            &self.r.repository,
            &self.r.registry,
        )?;
        *self.authorization.lock().unwrap() = Some(value);
        Ok(())
    }

    /// GET with the current authorization; one new challenge is answered and the request
    /// retried (tokens expire, scopes differ).
    fn get(&self, url: &str, mut headers: Vec<(&'static str, String)>) -> Result<Response<Body>> {
        let auth = self.authorization.lock().unwrap().clone();
        if let Some(a) = &auth {
            headers.push(("Authorization", a.clone()));
        }
        let resp = self.http.get(url, &headers)?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        self.authenticate(&resp)?;
        headers.retain(|(k, _)| *k != "Authorization");
        if let Some(a) = self.authorization.lock().unwrap().clone() {
            headers.push(("Authorization", a));
        }
        let resp = self.http.get(url, &headers)?;
        if resp.status().as_u16() == 401 {
            return Err(self.refused_again(url, &resp));
        }
        Ok(resp)
    }

    /// The error for a 401 that answering the challenge once more did not cure.
    fn refused_again(&self, url: &str, resp: &Response<Body>) -> FetchError {
        let header = http::header(resp, "www-authenticate").unwrap_or_default();
        let registry = &self.r.registry;
        let bearer = match parse_challenge(&header) {
            Some(Challenge::Bearer { realm, error, .. }) => Some((realm, error)),
            _ => None,
        };
        let reason = match (bearer, &self.credential) {
            // An anonymous token, or the user's, that does not reach this repository.
            (Some((_, Some(e))), None) if e == "insufficient_scope" => {
                return auth::no_credentials(registry)
            }
            (Some((_, Some(e))), Some(_)) if e == "insufficient_scope" => format!(
                "401 Unauthorized: the credentials configured for {registry} may not pull {}",
                self.r.repository
            ),
            (Some((realm, error)), _) => format!(
                "401 Unauthorized: the registry refused a new token from {realm} too ({}); the token service and the registry disagree (signing key, issuer, service name or clock)",
                error.as_deref().unwrap_or("no reason given")
            ),
            (None, None) => return auth::no_credentials(registry),
            (None, Some(_)) => format!(
                "401 Unauthorized: the registry refused the credentials configured for {registry}"
            ),
        };
        FetchError::http(url, reason)
    }

    /// A manifest or index by tag or digest: its bytes and digest (checked when asked by
    /// digest, and against the registry's Docker-Content-Digest when it sends one).
    pub fn manifest(&self, reference: &str) -> Result<(Digest, Vec<u8>)> {
        let url = format!("{}{}/manifests/{reference}", self.base, self.r.repository);
        let resp = self.get(&url, vec![("Accept", MANIFEST_TYPES.to_string())])?;
        if resp.status().as_u16() == 404 {
            return Err(FetchError::http(
                &url,
                format!(
                    "404 Not Found: the registry has no manifest {reference} for {}",
                    self.r.repository
                ),
            ));
        }
        if !resp.status().is_success() {
            return Err(http::status_error(&url, resp));
        }
        let claimed = http::header(&resp, "docker-content-digest");
        let data = http::read_limited(resp, &url, http::SMALL_LIMIT)?;
        let algo = match reference.parse::<Digest>() {
            Ok(d) => d.algorithm(),
            Err(_) => store::digest::Algorithm::Sha256,
        };
        let mut h = store::digest::Hasher::new(algo);
        h.update(&data);
        let actual = h.finish();
        if let Ok(expected) = reference.parse::<Digest>() {
            if expected != actual {
                return Err(FetchError::Store(StoreError::DigestMismatch {
                    what: format!("manifest {url}"),
                    expected: expected.oci(),
                    actual: actual.oci(),
                }));
            }
        }
        if let Some(claimed) = claimed.and_then(|c| c.parse::<Digest>().ok()) {
            if claimed.algorithm() == actual.algorithm() && claimed != actual {
                return Err(FetchError::Store(StoreError::DigestMismatch {
                    what: format!("manifest {url} (the registry's Docker-Content-Digest)"),
                    expected: claimed.oci(),
                    actual: actual.oci(),
                }));
            }
        }
        Ok((actual, data))
    }

    fn blob_url(&self, digest: &Digest) -> String {
        format!("{}{}/blobs/{}", self.base, self.r.repository, digest.oci())
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let url = self.blob_url(digest);
        let resp = self.get(&url, Vec::new())?;
        if resp.status().as_u16() == 404 {
            return Err(FetchError::http(
                &url,
                format!("404 Not Found: the registry lacks blob {}", digest.oci()),
            ));
        }
        if !resp.status().is_success() {
            return Err(http::status_error(&url, resp));
        }
        let total = http::header(&resp, "content-length").and_then(|v| v.parse().ok());
        let label = digest.hex().chars().take(12).collect::<String>();
        let body = http::Described::new(&url, resp.into_body().into_reader());
        Ok(Box::new(self.progress.track(&label, total, body)))
    }
}

impl BlobSource for Registry<'_> {
    fn open(&self, digest: &Digest) -> store::Result<Box<dyn Read + Send>> {
        self.open_blob(digest)
            .map_err(|e| StoreError::Invalid(e.to_string()))
    }
}
