//! Getting images into the store: local files, layouts and archives, `docker://` registries,
//! `https://` ACIs and appc discovery, with ACI signatures checked against the trust store.
//! See docs/architecture.md, "Fetch and trust".

pub mod aci;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod http;
pub mod https;
pub mod local;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod trust;

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use error::{FetchError, Result};
pub use reference::ImageRef;

use credentials::Credentials;
use http::{Http, HttpSettings};
use progress::Progress;
use store::images::{split_tag, Format, ImageRecord};
use store::Store;
use trust::{Keystore, Origin, Scope};

/// When to go to the network for an image named by name or reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Use the store; fetch only what is not there (run and prepare).
    #[default]
    New,
    /// Check the source for a newer version (fetch).
    Update,
    /// The store only.
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// `--insecure-options=image`: import without a signature check.
    pub insecure_skip_verify: bool,
    /// `--insecure-options=tls`: do not verify TLS certificates.
    pub insecure_tls: bool,
    /// `--insecure-options=http`: allow plain HTTP.
    pub insecure_http: bool,
    /// `--insecure-options=pubkey`: accept keys fetched without verification.
    pub insecure_pubkey: bool,
    /// `--trust-keys-from-https`: trust on first use the keys discovery names.
    pub trust_keys_from_https: bool,
    pub pull_policy: PullPolicy,
    /// `--local-config` and `--system-config`: trusted keys, auth, certificates.
    pub local_config: std::path::PathBuf,
    pub system_config: std::path::PathBuf,
    /// `--user-config`: auth of the user's own, over the local and system ones.
    pub user_config: Option<std::path::PathBuf>,
    /// Rootless: the user's configuration directory, whose trusted keys come first and
    /// where new ones go (root's local one is not theirs to write).
    pub user_keys: Option<std::path::PathBuf>,
    /// No progress output.
    pub quiet: bool,
    /// `--signature=FILE`: the detached signature of the image, instead of the one next
    /// to it (`IMAGE.asc`) or named by discovery.
    pub signature: Option<std::path::PathBuf>,
}

impl FetchOptions {
    /// The trusted keys: the user's first when rootless, then local, then system.
    pub fn keystore(&self) -> Keystore {
        match &self.user_keys {
            Some(u) => Keystore::for_user(u, &self.local_config, &self.system_config),
            None => Keystore::new(&self.local_config, &self.system_config),
        }
    }

    /// The configuration directories, lowest precedence first: system, local, user.
    pub fn config_dirs(&self) -> Vec<std::path::PathBuf> {
        let mut dirs = vec![self.system_config.clone(), self.local_config.clone()];
        dirs.extend(self.user_config.clone());
        dirs
    }
}

/// What one fetch needs: the store, the options, the HTTP client, the trust store.
pub struct Fetcher<'s> {
    pub store: &'s Store,
    pub opts: &'s FetchOptions,
    pub http: Http,
    pub keystore: Keystore,
    pub progress: Progress,
    credentials: OnceLock<std::result::Result<Credentials, String>>,
}

impl<'s> Fetcher<'s> {
    pub fn new(store: &'s Store, opts: &'s FetchOptions) -> Fetcher<'s> {
        Fetcher {
            store,
            opts,
            http: Http::new(http_settings(opts)),
            keystore: opts.keystore(),
            progress: Progress::new(opts.quiet),
            credentials: OnceLock::new(),
        }
    }

    /// The configured credentials, read on first need (a bad auth file only matters to
    /// fetches that go to a server).
    pub fn credentials(&self) -> Result<&Credentials> {
        self.credentials
            .get_or_init(|| Credentials::load(&self.opts.config_dirs()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| FetchError::Invalid(e.clone()))
    }

    /// The Authorization header for a web server, if credentials are configured for it
    /// (sent over HTTPS only).
    pub fn auth_headers(&self, url: &str) -> Vec<(&'static str, String)> {
        let Some(rest) = url.strip_prefix("https://") else {
            return Vec::new();
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        match self.credentials().ok().and_then(|c| c.for_host(authority)) {
            Some(c) => vec![("Authorization", c.header())],
            None => Vec::new(),
        }
    }

    /// A line for the user on stderr, unless quiet.
    pub fn say(&self, msg: &str) {
        if !self.opts.quiet {
            eprintln!("vessel: {}", schema::text::escape_controls(msg));
        }
    }
}

/// The HTTP settings the options call for (also used by `vessel trust`).
pub fn http_settings(opts: &FetchOptions) -> HttpSettings {
    HttpSettings {
        insecure_tls: opts.insecure_tls,
        allow_http: opts.insecure_http,
        config_dirs: vec![opts.local_config.clone(), opts.system_config.clone()],
    }
}

/// Brings one image into the store and returns its record.
pub fn fetch(store: &Store, reference: &str, opts: &FetchOptions) -> Result<ImageRecord> {
    let r = ImageRef::parse(reference).map_err(FetchError::Invalid)?;
    let _lock = store.lock_shared()?;
    let f = Fetcher::new(store, opts);
    match &r {
        ImageRef::AciFile(_)
        | ImageRef::OciLayout { .. }
        | ImageRef::OciArchive { .. }
        | ImageRef::DockerArchive { .. } => local::import(&f, &r, reference),
        ImageRef::Docker(rest) => registry::fetch(&f, rest, reference),
        ImageRef::AciUrl(url) => https::fetch_aci(&f, url, &format!("{url}.asc"), url, None)
            .map_err(|e| e.for_image(url)),
        ImageRef::Name(name) => by_name(&f, name),
    }
}

/// A name: the store first (as the pull policy says), then appc discovery.
fn by_name(f: &Fetcher<'_>, name: &str) -> Result<ImageRecord> {
    let in_store = match f.store.resolve(name) {
        Ok(r) => Some(r),
        Err(store::StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match (f.opts.pull_policy, in_store) {
        (PullPolicy::Never, Some(r)) | (PullPolicy::New, Some(r)) => Ok(r),
        (PullPolicy::Never, None) => Err(FetchError::Invalid(format!(
            "image {name:?} is not in the store (--pull-policy=never)"
        ))),
        // OCI images are updated through docker://; a short tag names the stored one.
        (PullPolicy::Update, Some(r)) if r.format == Format::Oci => Ok(r),
        (_, stored) => {
            let was_stored = stored.is_some();
            discover_and_fetch(f, name).map_err(|e| match e {
                FetchError::Refused { image, reason } if !was_stored => FetchError::Refused {
                    image,
                    reason: format!("not in the store, and {reason}"),
                },
                FetchError::Http { url, reason } if !was_stored => FetchError::refused(
                    name,
                    format!("not in the store, and appc discovery failed: {url}: {reason}"),
                ),
                other => other,
            })
        }
    }
}

fn discover_and_fetch(f: &Fetcher<'_>, reference: &str) -> Result<ImageRecord> {
    let (name, version) = split_tag(reference);
    let valid = name.parse::<schema::AcIdentifier>().is_ok();
    if !valid {
        return Err(FetchError::Invalid(format!(
            "image {reference:?} is not in the store, and {name:?} is not an appc name to discover"
        )));
    }
    let mut given = BTreeMap::new();
    if let Some(v) = version {
        given.insert("version".to_string(), v.to_string());
    }
    let labels = discovery::discovery_labels(&given);
    let found = discovery::discover(&f.http, f.credentials()?, name, &labels)?;
    if !f.opts.insecure_skip_verify && f.opts.trust_keys_from_https {
        trust_on_first_use(f, name, &found.pubkeys).map_err(|e| e.for_image(reference))?;
    }
    let mut expected = given.clone();
    for k in ["os", "arch"] {
        expected.insert(k.to_string(), labels[k].clone());
    }
    let expected = aci::Expected {
        name: name.to_string(),
        labels: expected,
    };
    https::fetch_aci(f, &found.aci, &found.signature, reference, Some(&expected))
        .map_err(|e| e.for_image(reference))
}

/// `--trust-keys-from-https`: when no key is trusted for `name` yet, trust the keys its
/// discovery names, fetched over HTTPS, for exactly that name.
fn trust_on_first_use(f: &Fetcher<'_>, name: &str, urls: &[String]) -> Result<()> {
    if !f.keystore.keys_for(name)?.is_empty() {
        return Ok(());
    }
    for url in urls {
        if !url.starts_with("https://") {
            f.say(&format!(
                "warning: not trusting the key at {url} on first use: not HTTPS"
            ));
            continue;
        }
        let resp = f.http.get(url, &f.auth_headers(url))?;
        if !resp.status().is_success() {
            return Err(http::status_error(url, resp));
        }
        let data = http::read_limited(resp, url, 1 << 20)?;
        let keys = trust::keys::parse_keys(&data).map_err(|e| FetchError::http(url, e))?;
        for key in keys {
            let origin = Origin {
                source: url.clone(),
                how: "discovery (trust on first use)".into(),
                added: chrono::Utc::now(),
            };
            let scope = Scope::Prefix(name.to_string());
            f.keystore.add(&key, &scope, &origin)?;
            f.say(&format!(
                "warning: trusting key {} for {name} on first use, from {url} (--trust-keys-from-https)",
                trust::keys::fingerprint_hex(&key)
            ));
        }
    }
    Ok(())
}
