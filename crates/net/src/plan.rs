//! From `--net` and `--port` to the pod's attachments, decided before the pod exists:
//! which networks it joins (in configuration-file order, interfaces eth0, eth1, ...),
//! each network's CNI_ARGS, and which network forwards the host ports. Every plugin a
//! network needs must be found now, so a missing one is an error before anything starts.

use serde_json::{Map, Value};

use crate::attach::Attachment;
use crate::builtin;
use crate::catalog::Catalog;
use crate::error::{NetError, Result};
use crate::names::join_cni_args;
use crate::plugin::PluginPaths;
use crate::ports::PortMapping;
use crate::selection::NetSelection;

/// The capability argument the portmap plugin takes.
pub const PORT_MAPPINGS: &str = "portMappings";

/// The attachments of a pod with ID `container_id` (its UUID).
pub fn attachments(
    catalog: &Catalog,
    selection: &NetSelection,
    container_id: &str,
    plugin_paths: &PluginPaths,
    ports: &[PortMapping],
) -> Result<Vec<Attachment>> {
    let defs = catalog.select(selection)?;
    if defs.is_empty() {
        // slirp4netns forwards them itself.
        if !ports.is_empty() && !selection.user_mode() {
            return Err(NetError::Port {
                mapping: ports[0].to_string(),
                reason: format!(
                    "ports are forwarded into a pod's own network: --net={} has none",
                    selection.mode_name()
                ),
            });
        }
        return Ok(Vec::new());
    }
    // rkt's choice: the first network that masquerades, else the last one; among those
    // that can forward ports (built-ins always can: they get the portmap plugin).
    let port_network = if ports.is_empty() {
        None
    } else {
        let able: Vec<usize> = defs
            .iter()
            .enumerate()
            .filter(|(_, d)| d.file.is_none() || d.list.has_capability(PORT_MAPPINGS))
            .map(|(i, _)| i)
            .collect();
        let chosen = able
            .iter()
            .copied()
            .find(|&i| defs[i].masquerades())
            .or(able.last().copied());
        Some(chosen.ok_or_else(|| NetError::Port {
            mapping: ports[0].to_string(),
            reason: format!(
                "no network of the pod forwards ports ({}): add a plugin declaring the portMappings capability (portmap) to one",
                defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })?)
    };
    let mut out = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        let maps_ports = port_network == Some(i);
        let config = match &def.file {
            Some(_) => def.bytes.clone(),
            None => builtin::conflist(&def.name, maps_ports).expect("a built-in network"),
        };
        let mut capability_args = Map::new();
        if maps_ports {
            capability_args.insert(
                PORT_MAPPINGS.into(),
                serde_json::to_value(ports).expect("serialisable"),
            );
        }
        let att = Attachment {
            network: def.name.clone(),
            origin: def.origin(),
            kind: def.kind,
            config: String::from_utf8(config).map_err(|_| NetError::Config {
                file: def.origin().into(),
                reason: "not UTF-8".into(),
            })?,
            ifname: format!("eth{i}"),
            args: join_cni_args(selection.args_for(&def.name)),
            container_id: container_id.to_string(),
            plugin_paths: plugin_paths.clone(),
            capability_args,
            result: None::<Value>,
        };
        att.check_plugins()?;
        out.push(att);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn setup(dir: &Path) -> (Catalog, PluginPaths) {
        let netd = dir.join("net.d");
        let bin = dir.join("bin");
        std::fs::create_dir_all(&netd).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        for p in ["ptp", "host-local", "portmap", "bridge"] {
            let f = bin.join(p);
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            netd.join("10-br.conf"),
            r#"{"cniVersion":"1.0.0","name":"br","type":"bridge","ipam":{"type":"host-local"}}"#,
        )
        .unwrap();
        std::fs::write(
            netd.join("20-gone.conf"),
            r#"{"cniVersion":"1.0.0","name":"gone","type":"nosuch"}"#,
        )
        .unwrap();
        (Catalog::load(&[netd]).unwrap(), PluginPaths(vec![bin]))
    }

    fn port() -> PortMapping {
        PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: None,
        }
    }

    #[test]
    fn interfaces_args_and_ports() {
        let t = tempfile::tempdir().unwrap();
        let (c, paths) = setup(t.path());
        let sel = NetSelection::parse(&["default,br:IP=10.0.0.9"]).unwrap();
        let atts = attachments(&c, &sel, "uuid-1", &paths, &[port()]).unwrap();
        let got: Vec<(&str, &str, &str)> = atts
            .iter()
            .map(|a| (a.network.as_str(), a.ifname.as_str(), a.args.as_str()))
            .collect();
        assert_eq!(
            got,
            [("br", "eth0", "IP=10.0.0.9"), ("default", "eth1", "")]
        );
        // Ports go to the masquerading built-in, which gets the portmap plugin.
        assert!(atts[0].capability_args.is_empty());
        assert_eq!(atts[1].capability_args[PORT_MAPPINGS][0]["hostPort"], 8080);
        assert_eq!(atts[1].list().unwrap().types(), ["ptp", "portmap"]);
        assert_eq!(atts[1].origin, "builtin:default");
        // Without ports, the built-in runs ptp alone.
        let atts = attachments(&c, &NetSelection::default(), "u", &paths, &[]).unwrap();
        assert_eq!(atts[0].list().unwrap().types(), ["ptp"]);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let t = tempfile::tempdir().unwrap();
        let (c, paths) = setup(t.path());
        let e = attachments(
            &c,
            &NetSelection::parse(&["gone"]).unwrap(),
            "u",
            &paths,
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("network gone: plugin \"nosuch\" not found"),
            "{e}"
        );
        let e = attachments(&c, &NetSelection::None, "u", &paths, &[port()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--net=none has none"), "{e}");
        // A user network without the capability cannot take the ports; the built-in
        // default-restricted that joins it can.
        let atts = attachments(
            &c,
            &NetSelection::parse(&["br"]).unwrap(),
            "u",
            &paths,
            &[port()],
        )
        .unwrap();
        assert_eq!(atts[1].network, "default-restricted");
        assert!(!atts[1].capability_args.is_empty());
    }
}
