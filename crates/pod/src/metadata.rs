//! The pod's registration with the metadata service (`crates/mds`): made by the
//! supervisor once the pod's networks are up and before any app starts, so an app can ask
//! at once; gone when the pod ends (and, should the supervisor die first, when the service
//! sees it die). The apps learn where to ask from `AC_METADATA_URL`.

use std::net::IpAddr;

use mds::client::Client;
use mds::proto::{AppRegistration, Registration};
use serde_json::value::RawValue;

use crate::error::{PodError, Result};
use crate::network::NetInfo;

pub const NO_ADDRESS: &str = "--mds-register: the pod has no network address of its own (--net=host or none), by which the metadata service would know it";

/// What `run` registers, decided by the caller (`--mds-register`).
pub struct Metadata {
    pub client: Client,
    /// Asked for explicitly: a pod with no address of its own is an error, not a pod
    /// without the service.
    pub required: bool,
    /// Each app's image ID and image manifest (as the store holds it).
    pub images: Vec<AppImage>,
}

pub struct AppImage {
    pub app: String,
    pub image_id: String,
    pub manifest: String,
}

/// A registration, withdrawn when dropped.
pub struct Registered {
    client: Client,
    uuid: String,
    pub url: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Err(e) = self.client.unregister(&self.uuid) {
            eprintln!(
                "vessel: warning: pod {}: unregistering from the metadata service: {e}",
                self.uuid
            );
        }
    }
}

/// The address the pod reaches the host's services at: the host side of its default
/// network, else of the first network that has one.
pub fn host_address(networks: &[NetInfo]) -> Option<IpAddr> {
    networks
        .iter()
        .find(|n| {
            matches!(n.net_name.as_str(), "default" | "default-restricted") && n.gateway.is_some()
        })
        .or_else(|| networks.iter().find(|n| n.gateway.is_some()))
        .and_then(|n| n.gateway)
}

/// `AC_METADATA_URL`: `http://IP:PORT`, no trailing slash, nothing to resolve.
pub fn url(host: IpAddr, port: u16) -> String {
    match host {
        IpAddr::V4(a) => format!("http://{a}:{port}"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}"),
    }
}

fn raw(what: &str, json: &str) -> Result<Box<RawValue>> {
    RawValue::from_string(json.to_string())
        .map_err(|e| PodError::Invalid(format!("metadata service: {what} is not JSON: {e}")))
}

/// Registers the pod (its manifest as written at prepare, its addresses on `networks`).
/// None: nothing to register (no network of its own, and not required).
pub fn register(
    m: &Metadata,
    uuid: &str,
    manifest: &str,
    networks: &[NetInfo],
) -> Result<Option<Registered>> {
    let ips: Vec<IpAddr> = networks.iter().filter_map(|n| n.ip).collect();
    let host = host_address(networks);
    let Some(host) = host.filter(|_| !ips.is_empty()) else {
        if m.required {
            return Err(PodError::Invalid(NO_ADDRESS.into()));
        }
        return Ok(None);
    };
    let reg = Registration {
        uuid: uuid.to_string(),
        ips,
        manifest: raw("the pod manifest", manifest)?,
        apps: m
            .images
            .iter()
            .map(|a| {
                Ok(AppRegistration {
                    name: a.app.clone(),
                    image_id: a.image_id.clone(),
                    image_manifest: raw(&format!("app {}'s image manifest", a.app), &a.manifest)?,
                })
            })
            .collect::<Result<_>>()?,
    };
    let port = m
        .client
        .register(&reg)
        .map_err(|e| PodError::Invalid(format!("registering with the metadata service: {e}")))?;
    Ok(Some(Registered {
        client: Client::new(m.client.socket()),
        uuid: uuid.to_string(),
        url: url(host, port),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, ip: &str, gw: Option<&str>) -> NetInfo {
        NetInfo {
            net_name: name.into(),
            net_conf: String::new(),
            plugin_path: String::new(),
            if_name: "eth0".into(),
            ip: Some(ip.parse().unwrap()),
            args: String::new(),
            mask: None,
            gateway: gw.map(|g| g.parse().unwrap()),
        }
    }

    #[test]
    fn the_default_networks_host_side_is_the_address() {
        let nets = vec![
            net("lan", "10.9.0.5", Some("10.9.0.1")),
            net("default", "172.16.28.5", Some("172.16.28.1")),
        ];
        assert_eq!(host_address(&nets), Some("172.16.28.1".parse().unwrap()));
        assert_eq!(host_address(&nets[..1]), Some("10.9.0.1".parse().unwrap()));
        assert_eq!(host_address(&[net("lan", "10.9.0.5", None)]), None);
        assert_eq!(
            url("172.16.28.1".parse().unwrap(), 18112),
            "http://172.16.28.1:18112"
        );
        assert_eq!(url("fd00::1".parse().unwrap(), 80), "http://[fd00::1]:80");
    }

    #[test]
    fn no_address_is_an_error_only_when_required() {
        let mut m = Metadata {
            client: Client::new("/nonexistent/socket"),
            required: false,
            images: vec![],
        };
        assert!(register(&m, "u", "{}", &[]).unwrap().is_none());
        m.required = true;
        let e = register(&m, "u", "{}", &[]).err().unwrap().to_string();
        assert!(e.contains("--mds-register"), "{e}");
    }
}
