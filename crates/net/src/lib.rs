//! Pod networking through CNI plugins (CNI 1.0.0 and 0.4.0, and the 0.1/0.2 results rkt's
//! plugins gave), as rkt did it. This crate reads network configurations, decides which a
//! pod joins, runs the plugins (ADD, DEL, CHECK) and makes the pod's /etc/resolv.conf and
//! /etc/hosts. It never does what a plugin does (links, addresses, routes, port NAT): those
//! are the real plugins' job, found in /usr/lib/cni and the operator's directories. One
//! exception, for speed: the built-in `default` network's masquerading is one rule set for
//! its subnet, kept by `masquerade`, instead of ptp's eight iptables runs per pod.
//!
//! | module | job |
//! |---|---|
//! | `selection` | `--net`: host, none, or networks with CNI_ARGS (rkt's rules) |
//! | `config` | one `.conf`/`.conflist`, parsed; the input of each plugin |
//! | `catalog` | every network: system and local net.d, built-ins |
//! | `builtin` | `default` and `default-restricted` |
//! | `plan` | a pod's attachments: networks, interface names, ports |
//! | `masquerade` | the `default` subnet's masquerading rules on the host |
//! | `attach` | one attachment: ADD, DEL, CHECK of a plugin chain; the record DEL needs |
//! | `plugin` | finding and running a plugin (environment, stdin, timeout) |
//! | `result` | plugin results of every version |
//! | `ports` | `--port`, host port checks and reservations |
//! | `etc` | `--dns*`, `--hosts-entry`, resolv.conf and hosts content |
//! | `names` | checks of names: networks, hostnames (RFC 1123), CNI_ARGS |
//! | `netns` | pinning a network namespace to a file |
//! | `slirp` | user-mode networking (slirp4netns) for pods without root: start, ports, end |

pub mod attach;
pub mod builtin;
pub mod catalog;
pub mod config;
pub mod error;
pub mod etc;
pub mod masquerade;
pub mod names;
pub mod netns;
pub mod plan;
pub mod plugin;
pub mod ports;
pub mod result;
pub mod selection;
pub mod slirp;

pub use attach::{Attachment, CheckOutcome};
pub use catalog::Catalog;
pub use error::{NetError, Result};
pub use plugin::{Invoker, PluginPaths};
pub use result::CniResult;
pub use selection::NetSelection;
