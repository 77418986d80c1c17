//! The two networks Vessel ships, as rkt did: `default` (a point-to-point veth to the host,
//! an address from 172.16.28.0/24, a default route and IP masquerading: the pod reaches
//! what the host reaches; the masquerading is the subnet's, see `masquerade`, not ptp's
//! per-pod `ipMasq`) and `default-restricted` (the same link without the route and
//! the masquerading: the pod reaches the host only). A configuration file whose network
//! has one of these names replaces it (rkt's "Overriding the default network").
//!
//! Hook for the metadata service (a later issue): every pod that does not join `default`
//! joins `default-restricted` (see `selection`), so every pod on a CNI network has a link
//! to the host. The service listens on the host's side of that link: the gateway address
//! of the pod's `default` or `default-restricted` attachment (`Attachment::gateway`),
//! and it knows a pod by the source address of a request (the attachments' `ip`).
//!
//! IPAM leases are host-wide: host-local keeps them in its default data directory
//! (/var/lib/cni/networks/<name>), shared by every store on the host, because every store
//! routes the same subnets through the same host. Two `--dir`s never hand out one address.

use serde_json::{json, Value};

pub const DEFAULT: &str = "default";
pub const DEFAULT_RESTRICTED: &str = "default-restricted";

/// The subnets (rkt's).
pub const DEFAULT_SUBNET: &str = "172.16.28.0/24";
pub const DEFAULT_RESTRICTED_SUBNET: &str = "172.31.0.0/16";

/// The names the built-in networks sort under among configuration files (rkt shipped
/// them as 99-*.conf, so a user's networks come first and get the lower interface names).
pub fn sort_name(network: &str) -> String {
    format!("99-{network}.conflist")
}

/// The built-in network `name`, if there is one. With `ports`, its chain ends with the
/// portmap plugin (declaring the portMappings capability); without, it does not: a pod
/// that maps no port saves that plugin's run at start and stop.
pub fn conflist(name: &str, ports: bool) -> Option<Vec<u8>> {
    let (subnet, routes) = match name {
        DEFAULT => (DEFAULT_SUBNET, json!([{"dst": "0.0.0.0/0"}])),
        DEFAULT_RESTRICTED => (DEFAULT_RESTRICTED_SUBNET, json!([])),
        _ => return None,
    };
    let mut plugins = vec![json!({
        "type": "ptp",
        "ipMasq": false,
        "ipam": {"type": "host-local", "subnet": subnet, "routes": routes},
    })];
    if ports {
        plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}}));
    }
    let list: Value = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
    Some(serde_json::to_vec_pretty(&list).expect("serialisable"))
}

pub fn is_builtin(name: &str) -> bool {
    name == DEFAULT || name == DEFAULT_RESTRICTED
}

/// The subnet the built-in network `name` masquerades as a whole (`masquerade::ensure`).
pub fn masqueraded_subnet(name: &str) -> Option<&'static str> {
    (name == DEFAULT).then_some(DEFAULT_SUBNET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfKind, ConfList};

    #[test]
    fn built_in_networks_parse_and_differ() {
        let d = ConfList::parse(&conflist(DEFAULT, false).unwrap(), ConfKind::Conflist).unwrap();
        assert_eq!(d.types(), ["ptp"]);
        // Masqueraded by the subnet's rules, not by the plugin.
        assert!(!d.masquerades());
        assert_eq!(masqueraded_subnet(DEFAULT), Some(DEFAULT_SUBNET));
        assert_eq!(masqueraded_subnet(DEFAULT_RESTRICTED), None);
        let dp = ConfList::parse(&conflist(DEFAULT, true).unwrap(), ConfKind::Conflist).unwrap();
        assert_eq!(dp.types(), ["ptp", "portmap"]);
        assert!(dp.has_capability("portMappings"));
        let r = ConfList::parse(
            &conflist(DEFAULT_RESTRICTED, false).unwrap(),
            ConfKind::Conflist,
        )
        .unwrap();
        assert!(!r.masquerades());
        assert_eq!(r.plugins[0]["ipam"]["subnet"], DEFAULT_RESTRICTED_SUBNET);
        assert!(conflist("other", false).is_none());
        assert!(sort_name("default").as_str() > "10-mynet.conf");
    }
}
