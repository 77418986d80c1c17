//! An attachment: one pod joined to one network (CNI 1.0.0, section 3), and everything
//! DEL needs to undo it later, from another process if need be: the exact configuration,
//! the interface name, CNI_ARGS, the container ID, where the plugins were found, the
//! capability arguments and, once ADD succeeded, its final result. The pod stores this
//! record before ADD starts, so a supervisor killed mid-ADD still leaves enough for `gc`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{ConfKind, ConfList};
use crate::error::{NetError, Result};
use crate::plugin::{Call, Command, Failure, Invoker, PluginPaths};
use crate::result::CniResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The network's name (rkt's `netName`).
    pub network: String,
    /// Where its configuration came from: a file, or `builtin:NAME` (rkt's `netConf`).
    pub origin: String,
    pub kind: ConfKind,
    /// The configuration the plugins' input is derived from, byte for byte.
    pub config: String,
    pub ifname: String,
    /// CNI_ARGS.
    #[serde(default)]
    pub args: String,
    pub container_id: String,
    pub plugin_paths: PluginPaths,
    /// Capability arguments (`portMappings`), given to the plugins that declare them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub capability_args: Map<String, Value>,
    /// The final result of ADD, once it succeeded: `prevResult` of CHECK and DEL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl Attachment {
    pub fn list(&self) -> Result<ConfList> {
        ConfList::parse(self.config.as_bytes(), self.kind).map_err(|reason| NetError::Config {
            file: PathBuf::from(&self.origin),
            reason,
        })
    }

    /// The plugin of the network's `type` (of the chain's first plugin): rkt's
    /// `pluginPath`.
    pub fn plugin_path(&self) -> Option<PathBuf> {
        let list = self.list().ok()?;
        self.plugin_paths.find(list.types().first()?)
    }

    /// The result of ADD, parsed.
    pub fn parsed_result(&self) -> Option<CniResult> {
        CniResult::from_value(self.result.as_ref()?).ok()
    }

    /// The pod's first address on this network (IPv4 preferred).
    pub fn ip(&self) -> Option<ipnet::IpNet> {
        Some(self.parsed_result()?.primary_ip(&self.ifname)?.address)
    }

    /// The gateway of that address: the host's side of a ptp link, where host services
    /// such as the metadata service listen.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.parsed_result()?.primary_ip(&self.ifname)?.gateway
    }

    /// The subnet whose masquerading the host keeps for this attachment: the built-in
    /// `default` network's as Vessel configures it now (a record made before, with ptp's
    /// `ipMasq`, leaves it to the plugin).
    pub fn host_masquerade(&self) -> Option<&'static str> {
        let subnet = crate::builtin::masqueraded_subnet(&self.network)?;
        let own = self.origin == format!("builtin:{}", self.network);
        (own && !self.list().ok()?.masquerades()).then_some(subnet)
    }

    /// Every plugin of the chain, and every IPAM plugin it delegates to, can be found.
    pub fn check_plugins(&self) -> Result<()> {
        let list = self.list()?;
        for t in list.types().into_iter().chain(list.ipam_types()) {
            if self.plugin_paths.find(t).is_none() {
                return Err(NetError::PluginNotFound {
                    network: self.network.clone(),
                    plugin: t.to_string(),
                    searched: self.plugin_paths.cni_path(),
                });
            }
        }
        Ok(())
    }

    /// ADD: runs the chain in order, each plugin given the previous one's result. The final
    /// result is kept in `self.result`.
    pub fn add(&mut self, netns: &Path, inv: &Invoker) -> Result<CniResult> {
        let list = self.list()?;
        let mut prev: Option<Value> = None;
        for i in 0..list.plugins.len() {
            let out = self.run_one(&list, i, Command::Add, Some(netns), prev.as_ref(), inv)?;
            let (_, raw) = CniResult::parse(&out).map_err(|reason| NetError::Plugin {
                network: self.network.clone(),
                plugin: self.plugin_name(&list, i),
                command: "ADD",
                reason,
            })?;
            prev = Some(raw);
        }
        let raw = prev.expect("a chain has a plugin");
        let result = CniResult::from_value(&raw).expect("parsed above");
        self.result = Some(raw);
        Ok(result)
    }

    /// DEL: runs the chain in reverse, each plugin given ADD's final result (if ADD got
    /// that far). Every plugin runs even when one fails, so one broken plugin does not
    /// keep the others from giving back what they hold; the first failure is returned.
    pub fn del(&self, netns: Option<&Path>, inv: &Invoker) -> Result<()> {
        let list = self.list()?;
        let mut first_err = None;
        for i in (0..list.plugins.len()).rev() {
            if let Err(e) = self.run_one(&list, i, Command::Del, netns, self.result.as_ref(), inv) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// CHECK: asks every plugin whether the attachment is as ADD left it. Skipped for
    /// networks that disable it or predate CNI 0.4.0.
    pub fn check(&self, netns: &Path, inv: &Invoker) -> Result<CheckOutcome> {
        let list = self.list()?;
        if !list.checkable() {
            return Ok(CheckOutcome::NotSupported);
        }
        let Some(prev) = &self.result else {
            return Ok(CheckOutcome::NotAdded);
        };
        for i in 0..list.plugins.len() {
            self.run_one(&list, i, Command::Check, Some(netns), Some(prev), inv)?;
        }
        Ok(CheckOutcome::Ok)
    }

    fn plugin_name(&self, list: &ConfList, i: usize) -> String {
        let t = list.types()[i];
        self.plugin_paths
            .find(t)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| t.to_string())
    }

    fn run_one(
        &self,
        list: &ConfList,
        i: usize,
        command: Command,
        netns: Option<&Path>,
        prev: Option<&Value>,
        inv: &Invoker,
    ) -> Result<Vec<u8>> {
        let t = list.types()[i];
        let path = self
            .plugin_paths
            .find(t)
            .ok_or_else(|| NetError::PluginNotFound {
                network: self.network.clone(),
                plugin: t.to_string(),
                searched: self.plugin_paths.cni_path(),
            })?;
        let input = list.exec_config(i, prev, &self.capability_args);
        let cni_path = self.plugin_paths.cni_path();
        let call = Call {
            command,
            container_id: &self.container_id,
            netns,
            ifname: &self.ifname,
            args: &self.args,
            cni_path: &cni_path,
        };
        inv.run(&path, &call, &input).map_err(|f| match f {
            Failure::TimedOut => NetError::Timeout {
                network: self.network.clone(),
                plugin: path.display().to_string(),
                command: command.as_str(),
                timeout: inv.timeout,
            },
            other => NetError::Plugin {
                network: self.network.clone(),
                plugin: path.display().to_string(),
                command: command.as_str(),
                reason: other.to_string(),
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Ok,
    /// The network disables CHECK, or speaks a CNI version without it.
    NotSupported,
    /// ADD never completed.
    NotAdded,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fake plugin that logs its command and input, and answers ADD with a result that
    /// adds one address (so a chain's prevResult can be followed).
    fn fake(dir: &Path, name: &str, addr: &str) {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                r#"#!/bin/sh
input=$(cat)
echo "$CNI_COMMAND $CNI_IFNAME $input" >> {log}
case $CNI_COMMAND in
ADD) echo '{{"cniVersion":"1.0.0","interfaces":[{{"name":"'$CNI_IFNAME'","sandbox":"'$CNI_NETNS'"}}],"ips":[{{"interface":0,"address":"{addr}"}}]}}' ;;
esac
"#,
                log = dir.join("log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn attachment(dir: &Path, config: &str) -> Attachment {
        Attachment {
            network: "n".into(),
            origin: "test".into(),
            kind: ConfKind::Conflist,
            config: config.into(),
            ifname: "eth0".into(),
            args: String::new(),
            container_id: "c".into(),
            plugin_paths: PluginPaths(vec![dir.to_path_buf()]),
            capability_args: Map::new(),
            result: None,
        }
    }

    #[test]
    fn a_chain_adds_in_order_and_deletes_in_reverse_with_the_result() {
        let t = tempfile::tempdir().unwrap();
        fake(t.path(), "a", "10.9.0.2/24");
        fake(t.path(), "b", "10.9.0.3/24");
        let mut att = attachment(
            t.path(),
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"},{"type":"b"}]}"#,
        );
        att.check_plugins().unwrap();
        let r = att.add(Path::new("/x/netns"), &Invoker::default()).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.9.0.3/24");
        assert_eq!(att.ip().unwrap().to_string(), "10.9.0.3/24");
        att.del(Some(Path::new("/x/netns")), &Invoker::default())
            .unwrap();
        let log = std::fs::read_to_string(t.path().join("log")).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("ADD eth0") && !lines[0].contains("prevResult"));
        assert!(lines[1].starts_with("ADD eth0") && lines[1].contains("10.9.0.2"));
        // DEL: b first, then a; both get ADD's final result.
        assert!(lines[2].starts_with("DEL") && lines[2].contains("\"type\":\"b\""));
        assert!(lines[3].starts_with("DEL") && lines[3].contains("\"type\":\"a\""));
        assert!(lines[3].contains("10.9.0.3"));
    }

    #[test]
    fn a_missing_plugin_is_named_and_del_goes_on() {
        let t = tempfile::tempdir().unwrap();
        fake(t.path(), "a", "10.9.0.2/24");
        let mut att = attachment(
            t.path(),
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a","ipam":{"type":"gone"}},{"type":"missing"}]}"#,
        );
        let e = att.check_plugins().unwrap_err().to_string();
        assert!(
            e.contains("network n: plugin \"missing\" not found in"),
            "{e}"
        );
        let e = att
            .add(Path::new("/x"), &Invoker::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("plugin \"missing\""), "{e}");
        // DEL still reaches "a" after failing to find "missing".
        assert!(att.del(None, &Invoker::default()).is_err());
        let log = std::fs::read_to_string(t.path().join("log")).unwrap();
        assert!(log.lines().last().unwrap().starts_with("DEL"));
    }

    #[test]
    fn check_needs_a_result_and_a_recent_version() {
        let t = tempfile::tempdir().unwrap();
        fake(t.path(), "a", "10.9.0.2/24");
        let att = attachment(
            t.path(),
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"a"}]}"#,
        );
        assert_eq!(
            att.check(Path::new("/x"), &Invoker::default()).unwrap(),
            CheckOutcome::NotAdded
        );
        let old = attachment(
            t.path(),
            r#"{"cniVersion":"0.3.1","name":"n","plugins":[{"type":"a"}]}"#,
        );
        assert_eq!(
            old.check(Path::new("/x"), &Invoker::default()).unwrap(),
            CheckOutcome::NotSupported
        );
    }
}
