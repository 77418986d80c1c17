//! The crate's one error type. Messages are lower-case and name the network, the plugin
//! and the file or flag involved, so the binary can print them as they are.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A configuration file that is not a CNI network configuration.
    #[error("network configuration {}: {reason}", file.display())]
    Config { file: PathBuf, reason: String },
    /// Two files define one network name.
    #[error("network {name:?} is defined twice: {} and {}", first.display(), second.display())]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "unknown network {name:?}: no configuration in {searched} defines it (known: {known})"
    )]
    UnknownNetwork {
        name: String,
        searched: String,
        known: String,
    },
    /// A bad `--net`, `--port`, `--dns*`, `--hosts-entry` or `--hostname` value.
    #[error("{flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("network {network}: plugin {plugin:?} not found in {searched}")]
    PluginNotFound {
        network: String,
        plugin: String,
        searched: String,
    },
    #[error("network {network}: plugin {plugin} ({command}): {reason}")]
    Plugin {
        network: String,
        plugin: String,
        command: &'static str,
        reason: String,
    },
    #[error("network {network}: plugin {plugin} ({command}) did not finish within {}; it was killed", humanize(*timeout))]
    Timeout {
        network: String,
        plugin: String,
        command: &'static str,
        timeout: Duration,
    },
    #[error("--port {mapping}: {reason}")]
    Port { mapping: String, reason: String },
    /// slirp4netns failed to start, configure the pod's interface or forward a port.
    #[error("slirp4netns: {reason}")]
    Slirp { reason: String },
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;

impl NetError {
    pub fn io(what: impl Into<String>, err: std::io::Error) -> NetError {
        NetError::Io {
            what: what.into(),
            err,
        }
    }

    pub fn flag(flag: &'static str, value: &str, reason: impl Into<String>) -> NetError {
        NetError::Flag {
            flag,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
