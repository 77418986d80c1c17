//! The registration protocol, on the unix socket `paths::socket`: the client writes one
//! JSON [`Request`] on a line, the service answers one JSON [`Reply`] on a line, and closes.
//! Only root may register (the service checks the peer's credentials), and the registrant
//! (the pod's supervisor, `vessel run`) is remembered: when it dies, its pod has ended.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Cap on one request line: a pod manifest and every app's image manifest.
pub const MAX_REQUEST: usize = 8 << 20;

/// Externally tagged (`"ping"`, `{"register": {...}}`): the manifests inside are kept as
/// raw JSON, which an internally tagged enum could not hold.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Request {
    /// Is the service there, and on which port do pods reach it?
    Ping,
    Register(Registration),
    Unregister {
        uuid: String,
    },
}

/// One pod, as the service keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    /// Canonical form.
    pub uuid: String,
    /// The pod's addresses: requests from them are the pod's.
    pub ips: Vec<IpAddr>,
    /// The pod manifest, served as it is here.
    pub manifest: Box<RawValue>,
    pub apps: Vec<AppRegistration>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRegistration {
    pub name: String,
    /// The image ID served by `image/id`, e.g. `sha512-...`.
    pub image_id: String,
    /// The app's image manifest, served as it is here.
    pub image_manifest: Box<RawValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The TCP port pods reach the service on (replies to `ping` and `register`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Reply {
    pub fn ok(port: Option<u16>) -> Reply {
        Reply {
            ok: true,
            error: None,
            port,
        }
    }

    pub fn err(e: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(e.into()),
            port: None,
        }
    }
}
