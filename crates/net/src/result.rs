//! A plugin's ADD result, in every version the plugins speak: 1.0.0 (`ips` without a
//! version), 0.3.x and 0.4.0 (`ips` with `"version": "4"`), 0.1.0 and 0.2.0 (`ip4`,
//! `ip6`). Read into one form; the raw JSON is kept too, as `prevResult` for the next
//! plugin of a chain and for CHECK and DEL.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The namespace it lives in; empty for a host interface.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// A success result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

impl CniResult {
    /// Parses a result and checks it hangs together (interface indexes in range).
    pub fn parse(bytes: &[u8]) -> Result<(CniResult, Value), String> {
        let raw: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the result is not JSON: {e}"))?;
        let r = CniResult::from_value(&raw)?;
        Ok((r, raw))
    }

    pub fn from_value(raw: &Value) -> Result<CniResult, String> {
        let obj = raw.as_object().ok_or("the result is not a JSON object")?;
        let version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or("0.1.0")
            .to_string();
        let mut r = CniResult {
            cni_version: version.clone(),
            ..Default::default()
        };
        let field = |k: &str| obj.get(k).filter(|v| !v.is_null());
        if let Some(d) = field("dns") {
            r.dns = serde_json::from_value(d.clone()).map_err(|e| format!("\"dns\": {e}"))?;
        }
        if crate::config::version_at_least(&version, (0, 3, 0)) {
            if let Some(i) = field("interfaces") {
                r.interfaces = serde_json::from_value(i.clone())
                    .map_err(|e| format!("\"interfaces\": {e}"))?;
            }
            if let Some(ips) = field("ips") {
                // 0.3.x and 0.4.0 add "version"; 1.0.0 dropped it. Either way the address
                // says which family it is.
                r.ips = serde_json::from_value(ips.clone()).map_err(|e| format!("\"ips\": {e}"))?;
            }
            if let Some(routes) = field("routes") {
                r.routes = serde_json::from_value(routes.clone())
                    .map_err(|e| format!("\"routes\": {e}"))?;
            }
        } else {
            // 0.1.0 and 0.2.0: {"ip4": {"ip", "gateway", "routes"}, "ip6": {...}}.
            #[derive(Deserialize)]
            struct Legacy {
                ip: IpNet,
                #[serde(default)]
                gateway: Option<IpAddr>,
                #[serde(default)]
                routes: Vec<Route>,
            }
            for key in ["ip4", "ip6"] {
                if let Some(v) = field(key) {
                    let l: Legacy =
                        serde_json::from_value(v.clone()).map_err(|e| format!("\"{key}\": {e}"))?;
                    r.ips.push(IpConfig {
                        address: l.ip,
                        gateway: l.gateway,
                        interface: None,
                    });
                    r.routes.extend(l.routes);
                }
            }
        }
        for ip in &r.ips {
            if let Some(i) = ip.interface {
                if i >= r.interfaces.len() {
                    return Err(format!(
                        "address {} names interface {i}, but the result lists {}",
                        ip.address,
                        r.interfaces.len()
                    ));
                }
            }
        }
        Ok(r)
    }

    /// The addresses given to the interface `ifname` in the pod (all of them when the
    /// result does not say which interface an address is on).
    pub fn pod_ips(&self, ifname: &str) -> Vec<&IpConfig> {
        self.ips
            .iter()
            .filter(|ip| match ip.interface {
                Some(i) => {
                    let intf = &self.interfaces[i];
                    intf.name == ifname || !intf.sandbox.is_empty()
                }
                None => true,
            })
            .collect()
    }

    /// The first IPv4 address of the pod's interface, else the first address.
    pub fn primary_ip(&self, ifname: &str) -> Option<&IpConfig> {
        let ips = self.pod_ips(ifname);
        ips.iter()
            .find(|ip| ip.address.addr().is_ipv4())
            .or(ips.first())
            .copied()
    }

    /// The host-side interfaces (no sandbox): veths of ptp and bridge, bridges.
    pub fn host_interfaces(&self) -> Vec<&str> {
        self.interfaces
            .iter()
            .filter(|i| i.sandbox.is_empty())
            .map(|i| i.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_0_0() {
        let (r, raw) = CniResult::parse(
            br#"{"cniVersion":"1.0.0",
                "interfaces":[{"name":"veth1","mac":"aa:bb:cc:dd:ee:ff"},{"name":"eth0","sandbox":"/x/netns"}],
                "ips":[{"interface":1,"address":"172.16.28.5/24","gateway":"172.16.28.1"},
                       {"interface":1,"address":"fd00:1::5/64"}],
                "routes":[{"dst":"0.0.0.0/0"}],
                "dns":{"nameservers":["10.0.0.2"],"search":["example.com"]}}"#,
        )
        .unwrap();
        assert_eq!(raw["cniVersion"], "1.0.0");
        assert_eq!(r.ips.len(), 2);
        let p = r.primary_ip("eth0").unwrap();
        assert_eq!(p.address.to_string(), "172.16.28.5/24");
        assert_eq!(p.gateway.unwrap().to_string(), "172.16.28.1");
        assert_eq!(r.host_interfaces(), ["veth1"]);
        assert_eq!(r.dns.nameservers, ["10.0.0.2"]);
        assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn version_0_4_0_with_ip_versions() {
        let (r, _) = CniResult::parse(
            br#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/n"}],
                "ips":[{"version":"6","interface":0,"address":"fd00::2/64","gateway":"fd00::1"},
                       {"version":"4","interface":0,"address":"10.1.0.2/16"}],"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(
            r.primary_ip("eth0").unwrap().address.to_string(),
            "10.1.0.2/16"
        );
        assert!(r.dns.is_empty());
    }

    #[test]
    fn versions_0_1_and_0_2() {
        let (r, _) = CniResult::parse(
            br#"{"cniVersion":"0.2.0","ip4":{"ip":"172.16.28.3/24","gateway":"172.16.28.1",
                "routes":[{"dst":"0.0.0.0/0"}]},"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(r.ips[0].address.to_string(), "172.16.28.3/24");
        assert_eq!(
            r.primary_ip("eth0").unwrap().gateway.unwrap().to_string(),
            "172.16.28.1"
        );
        assert_eq!(r.routes.len(), 1);
    }

    #[test]
    fn hostile_results_are_refused() {
        for (bytes, want) in [
            (&b"nope"[..], "not JSON"),
            (b"[]", "not a JSON object"),
            (
                br#"{"cniVersion":"1.0.0","ips":[{"address":"300.1.1.1/24"}]}"#,
                "\"ips\"",
            ),
            (
                br#"{"cniVersion":"1.0.0","ips":[{"address":"1.1.1.1/24","interface":3}]}"#,
                "names interface 3",
            ),
            (
                br#"{"cniVersion":"1.0.0","dns":{"nameservers":"x"}}"#,
                "\"dns\"",
            ),
            (br#"{"cniVersion":"0.2.0","ip4":{"ip":"x"}}"#, "\"ip4\""),
        ] {
            let e = CniResult::parse(bytes).unwrap_err();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(bytes));
        }
    }
}
