//! One network configuration: a CNI configuration list (`.conflist`) or a single plugin
//! configuration (`.conf`, which CNI before 1.0.0 allowed and rkt used), read into the
//! one form the rest of the crate works with: a list of plugin objects under a name and
//! a version. The source bytes are kept as they were, so DEL derives its plugin input from
//! exactly what ADD did.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names;

/// The CNI specification versions the plugin protocol is spoken in (those Debian's
/// containernetworking-plugins 1.1 accept).
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// Largest configuration file read.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfKind {
    /// One plugin object with `name` and `type`.
    Conf,
    /// `{"cniVersion", "name", "plugins": [...]}`.
    Conflist,
}

impl ConfKind {
    /// From a file name's extension; None for files that are not network configurations.
    pub fn of_file(name: &str) -> Option<ConfKind> {
        if name.starts_with('.') {
            return None;
        }
        if name.ends_with(".conflist") {
            Some(ConfKind::Conflist)
        } else if name.ends_with(".conf") {
            Some(ConfKind::Conf)
        } else {
            None
        }
    }
}

/// A parsed network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfList {
    pub cni_version: String,
    pub name: String,
    pub disable_check: bool,
    /// Plugin configuration objects, in chain order; each has a valid `type`.
    pub plugins: Vec<Map<String, Value>>,
}

impl ConfList {
    /// Parses `bytes` as `kind`. Errors say what is wrong, not where (the caller knows).
    pub fn parse(bytes: &[u8], kind: ConfKind) -> Result<ConfList, String> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(top) = value else {
            return Err("not a JSON object".into());
        };
        let string = |o: &Map<String, Value>, key: &str| -> Result<Option<String>, String> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{key:?} is not a string")),
            }
        };
        let name = string(&top, "name")?.ok_or("no \"name\"")?;
        names::check_network_name(&name)?;
        // A configuration without a version is what plugins call 0.1.0.
        let cni_version = string(&top, "cniVersion")?.unwrap_or_else(|| "0.1.0".into());
        if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
            return Err(format!(
                "cniVersion {cni_version:?} is not supported (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ));
        }
        let (plugins, disable_check) = match kind {
            ConfKind::Conf => {
                if top.contains_key("plugins") {
                    return Err(
                        "has \"plugins\": a configuration list belongs in a .conflist file".into(),
                    );
                }
                (vec![top.clone()], false)
            }
            ConfKind::Conflist => {
                let disable_check = match top.get("disableCheck") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    // Some writers quote it.
                    Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
                    Some(_) => return Err("\"disableCheck\" is not a boolean".into()),
                };
                let list = match top.get("plugins") {
                    Some(Value::Array(a)) => a,
                    Some(_) => return Err("\"plugins\" is not a list".into()),
                    None => return Err("no \"plugins\" list".into()),
                };
                let mut plugins = Vec::new();
                for (i, p) in list.iter().enumerate() {
                    match p {
                        Value::Object(o) => plugins.push(o.clone()),
                        _ => return Err(format!("plugin {i} is not a JSON object")),
                    }
                }
                (plugins, disable_check)
            }
        };
        if plugins.is_empty() {
            return Err("names no plugin (\"plugins\" is empty)".into());
        }
        if plugins.len() > 1 && !chaining_supported(&cni_version) {
            return Err(format!(
                "a chain of plugins needs cniVersion 0.3.0 or later, not {cni_version}"
            ));
        }
        for (i, p) in plugins.iter().enumerate() {
            let at = if kind == ConfKind::Conflist {
                format!("plugin {i}: ")
            } else {
                String::new()
            };
            let t = string(p, "type")
                .map_err(|e| format!("{at}{e}"))?
                .ok_or_else(|| format!("{at}names no plugin (no \"type\")"))?;
            names::check_plugin_type(&t).map_err(|e| format!("{at}{e}"))?;
            if let Some(ipam) = p.get("ipam") {
                let ipam_type = ipam
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{at}\"ipam\" names no plugin (no \"type\")"))?;
                names::check_plugin_type(ipam_type).map_err(|e| format!("{at}ipam: {e}"))?;
            }
            if let Some(c) = p.get("capabilities") {
                if !c.is_object() {
                    return Err(format!("{at}\"capabilities\" is not an object"));
                }
            }
        }
        Ok(ConfList {
            cni_version,
            name,
            disable_check,
            plugins,
        })
    }

    /// The plugin types of the chain, in order.
    pub fn types(&self) -> Vec<&str> {
        self.plugins
            .iter()
            .map(|p| p.get("type").and_then(Value::as_str).unwrap_or_default())
            .collect()
    }

    /// The IPAM plugin types the chain delegates to.
    pub fn ipam_types(&self) -> Vec<&str> {
        self.plugins
            .iter()
            .filter_map(|p| p.get("ipam")?.get("type")?.as_str())
            .collect()
    }

    /// Whether some plugin of the chain declares `capability` (e.g. `portMappings`).
    pub fn has_capability(&self, capability: &str) -> bool {
        self.plugins.iter().any(|p| {
            p.get("capabilities")
                .and_then(|c| c.get(capability))
                .and_then(Value::as_bool)
                == Some(true)
        })
    }

    /// Whether some plugin sets up IP masquerading (rkt's choice of network for ports).
    pub fn masquerades(&self) -> bool {
        self.plugins
            .iter()
            .any(|p| p.get("ipMasq").and_then(Value::as_bool) == Some(true))
    }

    /// Whether the runtime may CHECK this network (CNI 0.4.0 and later, and not disabled).
    pub fn checkable(&self) -> bool {
        !self.disable_check && version_at_least(&self.cni_version, (0, 4, 0))
    }

    /// The input of plugin `index` for one operation (CNI 1.0.0, "Deriving execution
    /// configuration"): the plugin object with the list's `cniVersion` and `name`,
    /// `runtimeConfig` made of the capability arguments the plugin declares, and
    /// `prevResult`; `capabilities` removed, everything else passed through.
    pub fn exec_config(
        &self,
        index: usize,
        prev_result: Option<&Value>,
        capability_args: &Map<String, Value>,
    ) -> Vec<u8> {
        let mut obj = self.plugins[index].clone();
        obj.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        obj.insert("name".into(), Value::String(self.name.clone()));
        let declared = obj.remove("capabilities");
        let mut runtime = Map::new();
        if let Some(Value::Object(declared)) = declared {
            for (k, v) in capability_args {
                if declared.get(k).and_then(Value::as_bool) == Some(true) {
                    runtime.insert(k.clone(), v.clone());
                }
            }
        }
        if !runtime.is_empty() {
            obj.insert("runtimeConfig".into(), Value::Object(runtime));
        }
        match prev_result {
            Some(prev) => {
                obj.insert("prevResult".into(), prev.clone());
            }
            None => {
                obj.remove("prevResult");
            }
        }
        serde_json::to_vec(&obj).expect("serialisable")
    }
}

/// `a.b.c` as numbers; None if it is not a plain version.
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let r = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(r)
}

pub fn version_at_least(v: &str, min: (u32, u32, u32)) -> bool {
    parse_version(v).is_some_and(|v| v >= min)
}

fn chaining_supported(v: &str) -> bool {
    version_at_least(v, (0, 3, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conflist(v: Value) -> Result<ConfList, String> {
        ConfList::parse(v.to_string().as_bytes(), ConfKind::Conflist)
    }

    #[test]
    fn a_single_conf_is_a_list_of_one() {
        let c = ConfList::parse(
            br#"{"cniVersion":"0.4.0","name":"n1","type":"bridge","ipam":{"type":"host-local"}}"#,
            ConfKind::Conf,
        )
        .unwrap();
        assert_eq!(c.name, "n1");
        assert_eq!(c.types(), ["bridge"]);
        assert_eq!(c.ipam_types(), ["host-local"]);
        assert!(c.checkable());
        // rkt's own configurations carried no version, or 0.1.0.
        let old = ConfList::parse(br#"{"name":"n","type":"ptp"}"#, ConfKind::Conf).unwrap();
        assert_eq!(old.cni_version, "0.1.0");
        assert!(!old.checkable());
    }

    #[test]
    fn bad_configurations_say_why() {
        let cases: Vec<(&[u8], ConfKind, &str)> = vec![
            (b"{", ConfKind::Conf, "not valid JSON"),
            (b"[1]", ConfKind::Conf, "not a JSON object"),
            (br#"{"type":"ptp"}"#, ConfKind::Conf, "no \"name\""),
            (br#"{"name":"n"}"#, ConfKind::Conf, "names no plugin"),
            (
                br#"{"name":"n","type":""}"#,
                ConfKind::Conf,
                "not a file name",
            ),
            (
                br#"{"name":"n","type":"../../bin/sh"}"#,
                ConfKind::Conf,
                "not a file name",
            ),
            (
                br#"{"name":"bad name","type":"ptp"}"#,
                ConfKind::Conf,
                "holds ' '",
            ),
            (
                br#"{"name":"n","type":"ptp","cniVersion":"9.9.9"}"#,
                ConfKind::Conf,
                "not supported",
            ),
            (
                br#"{"name":"n","type":"ptp","ipam":{}}"#,
                ConfKind::Conf,
                "\"ipam\" names no plugin",
            ),
            (
                br#"{"name":"n","plugins":[]}"#,
                ConfKind::Conflist,
                "names no plugin",
            ),
            (br#"{"name":"n"}"#, ConfKind::Conflist, "no \"plugins\""),
            (
                br#"{"name":"n","plugins":[{"x":1}]}"#,
                ConfKind::Conflist,
                "plugin 0: names no plugin",
            ),
            (
                br#"{"name":"n","plugins":[7]}"#,
                ConfKind::Conflist,
                "not a JSON object",
            ),
            (
                br#"{"name":"n","cniVersion":"0.2.0","plugins":[{"type":"a"},{"type":"b"}]}"#,
                ConfKind::Conflist,
                "0.3.0 or later",
            ),
        ];
        for (bytes, kind, want) in cases {
            let e = ConfList::parse(bytes, kind).unwrap_err();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn exec_config_follows_the_spec() {
        let c = conflist(json!({
            "cniVersion": "1.0.0", "name": "web",
            "plugins": [
                {"type": "bridge", "bridge": "br0", "ipam": {"type": "host-local"}},
                {"type": "portmap", "capabilities": {"portMappings": true, "other": false}, "snat": true}
            ]
        }))
        .unwrap();
        assert!(c.has_capability("portMappings"));
        let mut caps = Map::new();
        caps.insert(
            "portMappings".into(),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
        caps.insert("other".into(), json!(1));
        let first: Value = serde_json::from_slice(&c.exec_config(0, None, &caps)).unwrap();
        assert_eq!(first["name"], "web");
        assert_eq!(first["cniVersion"], "1.0.0");
        assert_eq!(first["bridge"], "br0");
        assert!(first.get("runtimeConfig").is_none());
        assert!(first.get("prevResult").is_none());
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let second: Value = serde_json::from_slice(&c.exec_config(1, Some(&prev), &caps)).unwrap();
        assert!(second.get("capabilities").is_none());
        assert_eq!(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert!(second["runtimeConfig"].get("other").is_none());
        assert_eq!(second["prevResult"], prev);
        assert_eq!(second["snat"], true);
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.0.0"), Some((1, 0, 0)));
        assert_eq!(parse_version("1.0"), None);
        assert!(version_at_least("0.4.0", (0, 4, 0)));
        assert!(!version_at_least("0.3.1", (0, 4, 0)));
        assert_eq!(ConfKind::of_file("10-a.conflist"), Some(ConfKind::Conflist));
        assert_eq!(ConfKind::of_file("10-a.conf"), Some(ConfKind::Conf));
        assert_eq!(ConfKind::of_file(".10-a.conf"), None);
        assert_eq!(ConfKind::of_file("README"), None);
    }
}
