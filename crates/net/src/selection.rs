//! `--net`: which networks a pod joins, with rkt's syntax and rules.
//!
//! `--net=host`, `--net=none` and `--net=slirp4netns` stand alone. Otherwise the value is a comma-separated list
//! of network names, each optionally followed by `:K1=V1;K2=V2` (the network's CNI_ARGS);
//! `all` joins every configured network; `--net` may be repeated; no name twice. A pod that
//! does not join `default` joins `default-restricted` as well, so it can always reach the
//! host (the metadata service). No `--net` (or an empty one) means `default`.

use serde::{Deserialize, Serialize};

use crate::builtin::{DEFAULT, DEFAULT_RESTRICTED};
use crate::error::{NetError, Result};
use crate::names;

/// `--net=slirp4netns`: podman's name for the same network.
pub const SLIRP: &str = "slirp4netns";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRef {
    pub name: String,
    /// CNI_ARGS for this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetSelection {
    /// The host's network namespace.
    Host,
    /// A namespace of the pod's own with loopback only.
    None,
    /// A namespace of the pod's own with user-mode networking through slirp4netns (no root
    /// needed: the rootless default where the program is installed; see `crate::slirp`).
    Slirp4netns,
    /// CNI networks, in the order given (they join in configuration-file order).
    Networks {
        /// `all`: every configured network.
        #[serde(default)]
        all: bool,
        names: Vec<NetRef>,
    },
}

impl Default for NetSelection {
    fn default() -> Self {
        NetSelection::Networks {
            all: false,
            names: vec![NetRef {
                name: DEFAULT.into(),
                args: Vec::new(),
            }],
        }
    }
}

impl NetSelection {
    /// Parses every `--net` value given (none: the default network).
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<NetSelection> {
        let mut all = false;
        let mut names: Vec<NetRef> = Vec::new();
        let mut alone: Option<NetSelection> = None;
        let mut items = 0;
        for value in values {
            let value = value.as_ref();
            if value.trim().is_empty() {
                // rkt: `--net` with no value is the default network.
                if !names.iter().any(|n| n.name == DEFAULT) {
                    names.push(NetRef {
                        name: DEFAULT.into(),
                        args: Vec::new(),
                    });
                }
                items += 1;
                continue;
            }
            for item in value.split(',') {
                items += 1;
                let item = item.trim();
                let (name, args) = match item.split_once(':') {
                    Some((n, a)) => (n.trim(), Some(a)),
                    None => (item, None),
                };
                let bad = |why: String| NetError::flag("--net", value, why);
                if name.is_empty() {
                    return Err(bad("an empty network name".into()));
                }
                match name {
                    "host" | "none" | "all" | SLIRP if args.is_some() => {
                        return Err(bad(format!("{name} takes no arguments")));
                    }
                    "host" => alone = Some(NetSelection::Host),
                    "none" => alone = Some(NetSelection::None),
                    SLIRP => alone = Some(NetSelection::Slirp4netns),
                    "all" => all = true,
                    _ => {
                        names::check_network_name(name).map_err(bad)?;
                        if names.iter().any(|n| n.name == name) {
                            return Err(bad(format!(
                                "network {name:?} is named twice (give its arguments once)"
                            )));
                        }
                        let args = match args {
                            Some(a) => parse_args(a).map_err(bad)?,
                            None => Vec::new(),
                        };
                        names.push(NetRef {
                            name: name.to_string(),
                            args,
                        });
                    }
                }
            }
        }
        if let Some(sel) = alone {
            if items > 1 {
                let which = sel.mode_name();
                let joined = values
                    .iter()
                    .map(|v| v.as_ref())
                    .collect::<Vec<_>>()
                    .join(",");
                return Err(NetError::flag(
                    "--net",
                    &joined,
                    format!("{which} cannot be combined with other networks"),
                ));
            }
            return Ok(sel);
        }
        if !all && names.is_empty() {
            return Ok(NetSelection::default());
        }
        Ok(NetSelection::Networks { all, names })
    }

    /// Whether the pod gets user-mode networking (slirp4netns).
    pub fn user_mode(&self) -> bool {
        matches!(self, NetSelection::Slirp4netns)
    }

    /// Whether the pod gets CNI networks (and so a network namespace set up by plugins).
    pub fn uses_cni(&self) -> bool {
        matches!(self, NetSelection::Networks { .. })
    }

    /// The names asked for explicitly, with `default-restricted` added when `default` is
    /// not among them (rkt's rule; `all` includes both built-ins anyway).
    pub fn explicit_names(&self) -> Vec<String> {
        match self {
            NetSelection::Networks { names, .. } => {
                let mut out: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
                if !out.iter().any(|n| n == DEFAULT) && !out.iter().any(|n| n == DEFAULT_RESTRICTED)
                {
                    out.push(DEFAULT_RESTRICTED.into());
                }
                out
            }
            _ => Vec::new(),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, NetSelection::Networks { all: true, .. })
    }

    /// The CNI_ARGS given for `network`.
    pub fn args_for(&self, network: &str) -> &[(String, String)] {
        match self {
            NetSelection::Networks { names, .. } => names
                .iter()
                .find(|n| n.name == network)
                .map(|n| n.args.as_slice())
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// What `list` and `status` show when the pod has no CNI network.
    pub fn mode_name(&self) -> &'static str {
        match self {
            NetSelection::Host => "host",
            NetSelection::None => "none",
            NetSelection::Slirp4netns => SLIRP,
            NetSelection::Networks { .. } => "cni",
        }
    }
}

/// `K1=V1;K2=V2`.
fn parse_args(s: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("argument {pair:?} is not NAME=VALUE"))?;
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(format!("argument {k} is given twice"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.is_empty() {
        return Err("no arguments after ':'".into());
    }
    names::check_cni_args(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<NetSelection> {
        NetSelection::parse(v)
    }

    #[test]
    fn defaults_and_modes() {
        assert_eq!(parse(&[]).unwrap(), NetSelection::default());
        assert_eq!(parse(&[""]).unwrap(), NetSelection::default());
        assert_eq!(parse(&["host"]).unwrap(), NetSelection::Host);
        assert_eq!(parse(&["none"]).unwrap(), NetSelection::None);
        assert_eq!(parse(&["default"]).unwrap().explicit_names(), ["default"]);
        assert!(parse(&["default"]).unwrap().uses_cni());
        assert!(!parse(&["none"]).unwrap().uses_cni());
        assert_eq!(parse(&["slirp4netns"]).unwrap(), NetSelection::Slirp4netns);
        assert!(parse(&["slirp4netns"]).unwrap().user_mode());
        assert!(!parse(&["slirp4netns"]).unwrap().uses_cni());
        assert!(parse(&["slirp4netns,default"]).is_err());
        assert!(parse(&["slirp4netns:A=1"]).is_err());
    }

    #[test]
    fn default_restricted_joins_a_pod_without_default() {
        assert_eq!(
            parse(&["mynet"]).unwrap().explicit_names(),
            ["mynet", "default-restricted"]
        );
        assert_eq!(
            parse(&["default,mynet"]).unwrap().explicit_names(),
            ["default", "mynet"]
        );
        assert_eq!(
            parse(&["default-restricted"]).unwrap().explicit_names(),
            ["default-restricted"]
        );
    }

    #[test]
    fn arguments_and_repetition() {
        let s = parse(&[
            "all,net1:IP=1.2.3.4",
            "net2:IP=1.2.4.5;MAC=aa:bb:cc:dd:ee:ff",
        ])
        .unwrap();
        assert!(s.is_all());
        assert_eq!(
            s.args_for("net1"),
            [("IP".to_string(), "1.2.3.4".to_string())]
        );
        assert_eq!(s.args_for("net2").len(), 2);
        assert!(s.args_for("net3").is_empty());
    }

    #[test]
    fn bad_values_say_why() {
        for (v, want) in [
            (vec!["host,default"], "cannot be combined"),
            (vec!["none", "default"], "cannot be combined"),
            (vec!["a,a"], "named twice"),
            (vec!["a", "a:X=1"], "named twice"),
            (vec!["a,,b"], "empty network name"),
            (vec!["bad name"], "holds ' '"),
            (vec!["a:X"], "not NAME=VALUE"),
            (vec!["a:X=1;X=2"], "twice"),
            (vec!["a:X=1 2"], "printable"),
            (vec!["host:X=1"], "no arguments"),
            (vec!["a:"], "no arguments"),
        ] {
            let e = parse(&v).unwrap_err().to_string();
            assert!(e.contains(want), "{v:?}: {e}");
            assert!(e.starts_with("--net "), "{e}");
        }
    }
}
