//! Checks for the names that end up in plugin environments, /etc/hosts and
//! /etc/resolv.conf. A name that fails here never reaches a file or a plugin: a newline
//! in a hostname would add lines to /etc/hosts, a `;` in CNI_ARGS another argument.

/// The kernel's limit for a hostname (HOST_NAME_MAX, sethostname(2)).
pub const HOSTNAME_MAX: usize = 64;
/// RFC 1123's limit for a whole domain name.
pub const DOMAIN_MAX: usize = 253;

/// A network name as CNI defines it: an alphanumeric first character, then alphanumerics,
/// `_`, `.` or `-`.
pub fn check_network_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("a network name must not be empty".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err(format!(
                "network name {name:?} must start with a letter or digit"
            ))
        }
        _ => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(format!(
            "network name {name:?} holds {c:?}: only letters, digits, '_', '.' and '-' may follow the first"
        ));
    }
    Ok(())
}

/// A plugin type: the name of an executable in the plugin directories, never a path.
pub fn check_plugin_type(t: &str) -> Result<(), String> {
    if t.is_empty() || t == "." || t == ".." || t.contains(['/', '\\', '\0']) {
        return Err(format!("plugin type {t:?} is not a file name"));
    }
    Ok(())
}

/// A hostname of at most `max` bytes made of RFC 1123 labels: 1-63 letters, digits and
/// hyphens each, neither starting nor ending with a hyphen, separated by dots.
pub fn check_hostname(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > max {
        return Err(format!(
            "it is {} bytes long; at most {max} are allowed",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots, or a dot at an end)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label {:?} is longer than 63 characters",
                truncate(label)
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "it holds {c:?}: only letters, digits, '-' and '.' are allowed (RFC 1123)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "label {label:?} starts or ends with '-' (RFC 1123)"
            ));
        }
    }
    Ok(())
}

/// A domain name (`--dns-search`, `--dns-domain`, `--hosts-entry` names): RFC 1123 up to
/// 253 bytes; a single trailing dot (a fully qualified name) is allowed.
pub fn check_domain(name: &str) -> Result<(), String> {
    check_hostname(name.strip_suffix('.').unwrap_or(name), DOMAIN_MAX)
}

/// CNI_ARGS: `K=V` pairs separated by `;`. Keys are letters, digits and `_`; values any
/// printable ASCII but `;` (an IP, a MAC address, a name).
pub fn check_cni_args(args: &[(String, String)]) -> Result<(), String> {
    for (k, v) in args {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "argument name {k:?} must be letters, digits and '_'"
            ));
        }
        if let Some(c) = v.chars().find(|c| !c.is_ascii_graphic() || *c == ';') {
            return Err(format!(
                "the value of {k} holds {c:?}: only printable ASCII without ';' and spaces"
            ));
        }
    }
    Ok(())
}

/// Joins CNI_ARGS pairs as the environment variable carries them.
pub fn join_cni_args(args: &[(String, String)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// A container interface name (CNI: under 16 bytes, no `/`, `:` or white space).
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() >= 16
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("interface name {name:?} is not valid"));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(20).collect::<String>() + "..."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names() {
        for ok in ["default", "a", "net-1", "my_net.v2", "0x"] {
            check_network_name(ok).unwrap();
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "a\nb", "é"] {
            assert!(check_network_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        for ok in ["web", "web-1", "a.b.c", "1host", "x".repeat(63).as_str()] {
            check_hostname(ok, HOSTNAME_MAX).unwrap();
        }
        let long_label = "x".repeat(64);
        let too_long = format!("{}.{}", "a".repeat(40), "b".repeat(30));
        for (bad, why) in [
            ("", "empty"),
            ("web\n10.0.0.1 evil", "'\\n'"),
            ("a b", "' '"),
            ("-web", "starts or ends"),
            ("web-", "starts or ends"),
            ("a..b", "empty label"),
            ("a.", "empty label"),
            ("under_score", "'_'"),
            (long_label.as_str(), "longer than 63"),
            (too_long.as_str(), "at most 64"),
            ("tab\there", "'\\t'"),
        ] {
            let e = check_hostname(bad, HOSTNAME_MAX).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn domains_allow_253_bytes_and_a_final_dot() {
        let label = "a".repeat(60);
        let long = [label.as_str(); 4].join("."); // 243 bytes
        check_domain(&long).unwrap();
        check_domain("example.com.").unwrap();
        assert!(check_domain(&format!("{long}.abcdefghij1")).is_err());
        assert!(check_domain("example.com\nnameserver 1.2.3.4").is_err());
    }

    #[test]
    fn cni_args() {
        let ok = vec![("IP".to_string(), "10.1.2.3".to_string())];
        check_cni_args(&ok).unwrap();
        assert_eq!(join_cni_args(&ok), "IP=10.1.2.3");
        for (k, v) in [
            ("", "x"),
            ("A B", "x"),
            ("K", "a;b"),
            ("K", "a b"),
            ("K", "a\n"),
        ] {
            assert!(check_cni_args(&[(k.into(), v.into())]).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn ifnames() {
        check_ifname("eth0").unwrap();
        for bad in ["", "a/b", "a:b", "a b", "0123456789abcdef"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }
}
