//! Ports an app listens on (image manifest) and host ports a pod exposes
//! (pod manifest).

use std::net::IpAddr;

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::name::AcName;

/// A port or a contiguous range of `count` ports starting at `port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub name: AcName,
    pub protocol: String,
    pub port: u16,
    #[serde(skip_serializing_if = "is_one")]
    pub count: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub socket_activated: bool,
}

fn is_one(n: &u16) -> bool {
    *n == 1
}

impl Port {
    /// A single port.
    pub fn new(name: AcName, protocol: &str, port: u16) -> Result<Self, SchemaError> {
        let p = Port {
            name,
            protocol: protocol.to_owned(),
            port,
            count: 1,
            socket_activated: false,
        };
        p.validate()?;
        Ok(p)
    }

    /// The last port of the range.
    pub fn last_port(&self) -> u16 {
        self.port.saturating_add(self.count.saturating_sub(1))
    }

    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.port == 0 {
            return Err(SchemaError::invalid_because(
                "port",
                "0",
                "must be in 1-65535",
            ));
        }
        if self.count == 0 {
            return Err(SchemaError::invalid_because(
                "port count",
                "0",
                "must be at least 1",
            ));
        }
        if u32::from(self.port) + u32::from(self.count) - 1 > 65535 {
            return Err(SchemaError::Rule(format!(
                "port range {} + {} goes past 65535",
                self.port, self.count
            )));
        }
        if self.protocol.is_empty() {
            return Err(SchemaError::invalid_because(
                "protocol",
                "",
                "must not be empty",
            ));
        }
        Ok(())
    }
}

fn port_number(o: &Obj<'_>, key: &str) -> Result<u16, SchemaError> {
    let n: u64 = o.required(key)?;
    u16::try_from(n).ok().filter(|p| *p != 0).ok_or_else(|| {
        locate(
            SchemaError::invalid_because("port", n.to_string(), "must be in 1-65535"),
            &o.path(key),
        )
    })
}

impl FromJson for Port {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        let p = Port {
            name: o.required("name")?,
            protocol: o.required("protocol")?,
            port: port_number(&o, "port")?,
            count: o.optional("count")?.unwrap_or(1),
            socket_activated: o.or_default("socketActivated")?,
        };
        p.validate().map_err(|e| locate(e, at))?;
        Ok(p)
    }
}

/// A pod-level request to forward a host port to an app's port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExposedPort {
    /// The name of a port of some app in the pod, unless `pod_port` is given.
    pub name: AcName,
    pub host_port: u16,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// Overrides the port of that name from the image manifests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_port: Option<Port>,
}

impl ExposedPort {
    /// Parses rkt's `--port` syntax: `NAME:HOSTPORT` or `NAME:HOSTIP:HOSTPORT`
    /// (an IPv6 address may be bracketed: `http:[::1]:8080`).
    pub fn from_flag(s: &str) -> Result<Self, SchemaError> {
        let bad = |why: &str| SchemaError::invalid_because("port mapping", s, why);
        let (name, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("expected NAME:[HOSTIP:]HOSTPORT"))?;
        let (ip, port) = match rest.rsplit_once(':') {
            Some((ip, port)) => (Some(ip), port),
            None => (None, rest),
        };
        let host_port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("host port must be in 1-65535"))?;
        let host_ip = match ip {
            Some(ip) => {
                let bare = ip
                    .strip_prefix('[')
                    .and_then(|i| i.strip_suffix(']'))
                    .unwrap_or(ip);
                Some(bare.parse().map_err(|_| bad("bad host IP address"))?)
            }
            None => None,
        };
        Ok(ExposedPort {
            name: name.parse()?,
            host_port,
            host_ip,
            pod_port: None,
        })
    }
}

impl FromJson for ExposedPort {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        let host_ip = match o.optional::<String>("hostIP")? {
            Some(ip) => Some(ip.parse().map_err(|_| {
                locate(
                    SchemaError::invalid("IP address", ip.as_str()),
                    &o.path("hostIP"),
                )
            })?),
            None => None,
        };
        Ok(ExposedPort {
            name: o.required("name")?,
            host_port: port_number(&o, "hostPort")?,
            host_ip,
            pod_port: o.optional("podPort")?,
        })
    }
}

deserialize_via_from_json!(Port, ExposedPort);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn port(v: Value) -> Result<Port, SchemaError> {
        Port::from_json(&v, &Path::root().key("ports").index(0))
    }

    #[test]
    fn parses_single_and_range() {
        let p = port(
            json!({"name": "health", "port": 4000, "protocol": "tcp", "socketActivated": true}),
        )
        .unwrap();
        assert_eq!((p.port, p.count, p.socket_activated), (4000, 1, true));
        let r = port(json!({"name": "ftp-data", "port": 20000, "count": 1000, "protocol": "tcp"}))
            .unwrap();
        assert_eq!(r.last_port(), 20999);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"name": "ftp-data", "protocol": "tcp", "port": 20000, "count": 1000})
        );
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"name": "health", "protocol": "tcp", "port": 4000, "socketActivated": true})
        );
    }

    #[test]
    fn rejects_bad_ports() {
        let e = port(json!({"name": "a", "port": 0, "protocol": "tcp"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "ports[0].port": "0" is not a valid port (must be in 1-65535)"#
        );
        assert!(port(json!({"name": "a", "port": 65536, "protocol": "tcp"})).is_err());
        assert!(port(json!({"name": "a", "port": 65535, "count": 2, "protocol": "tcp"})).is_err());
        assert!(port(json!({"name": "a", "port": 80, "count": 0, "protocol": "tcp"})).is_err());
        assert!(port(json!({"name": "a", "port": 80})).is_err());
        assert!(port(json!({"name": "a", "port": 80, "protocol": ""})).is_err());
        assert!(port(json!({"name": "A", "port": 80, "protocol": "tcp"})).is_err());
    }

    #[test]
    fn exposed_ports() {
        let at = Path::root();
        let p = ExposedPort::from_json(
            &json!({"name": "ftp", "hostPort": 2121, "hostIP": "203.0.113.23"}),
            &at,
        )
        .unwrap();
        assert_eq!(p.host_ip, Some("203.0.113.23".parse().unwrap()));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"name": "ftp", "hostPort": 2121, "hostIP": "203.0.113.23"})
        );
        let e = ExposedPort::from_json(
            &json!({"name": "ftp", "hostPort": 2121, "hostIP": "999.1.1.1"}),
            &at,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "hostIP": "999.1.1.1" is not a valid IP address"#
        );
        assert!(ExposedPort::from_json(&json!({"name": "ftp"}), &at).is_err());
    }

    #[test]
    fn exposed_port_flags() {
        let p = ExposedPort::from_flag("http:8080").unwrap();
        assert_eq!(
            (p.name.as_str(), p.host_port, p.host_ip),
            ("http", 8080, None)
        );
        let p = ExposedPort::from_flag("http:127.0.0.1:8080").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        let p = ExposedPort::from_flag("http:[::1]:8080").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        let p = ExposedPort::from_flag("http:::1:8080").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        for bad in [
            "",
            "http",
            "http:",
            "http:0",
            "http:65536",
            "Http:80",
            "http:nothost:80",
            "http:80x",
        ] {
            assert!(ExposedPort::from_flag(bad).is_err(), "{bad:?}");
        }
    }
}
