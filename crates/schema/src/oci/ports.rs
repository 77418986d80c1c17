//! `ExposedPorts` keys (`80/tcp`, `53/udp`, `8000-8010/tcp`, `80`) → ports.

use crate::error::SchemaError;
use crate::name::AcName;
use crate::port::Port;

/// One `ExposedPorts` key as an appc port named `<port>-<protocol>`
/// (`<first>-<last>-<protocol>` for a range). The protocol defaults to tcp.
pub fn exposed_port(key: &str) -> Result<Port, SchemaError> {
    let bad = |why: &str| SchemaError::invalid_because("exposed port", key, why);
    let (range, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    if protocol.is_empty()
        || !protocol
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(bad("bad protocol"));
    }
    let number = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0 && s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("ports are 1-65535"))
    };
    let (first, last) = match range.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let p = number(range)?;
            (p, p)
        }
    };
    if last < first {
        return Err(bad("range ends before it starts"));
    }
    let name = if first == last {
        format!("{first}-{protocol}")
    } else {
        format!("{first}-{last}-{protocol}")
    };
    let name: AcName = name
        .parse()
        .map_err(|_| bad("no port name can be made from it"))?;
    Ok(Port {
        name,
        protocol,
        port: first,
        count: last - first + 1,
        socket_activated: false,
    })
}

/// All keys, sorted for a stable manifest (the config holds a map) and
/// with duplicates such as `80` and `80/tcp` merged.
pub(crate) fn ports(keys: &[String]) -> Result<Vec<Port>, SchemaError> {
    let mut ports = keys
        .iter()
        .map(|k| exposed_port(k))
        .collect::<Result<Vec<_>, _>>()?;
    ports.sort_by(|a, b| (a.port, a.count, &a.protocol).cmp(&(b.port, b.count, &b.protocol)));
    ports.dedup_by(|a, b| a.name == b.name);
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_keys() {
        let p = exposed_port("80/tcp").unwrap();
        assert_eq!(
            (p.name.as_str(), p.protocol.as_str(), p.port, p.count),
            ("80-tcp", "tcp", 80, 1)
        );
        assert_eq!(exposed_port("53/UDP").unwrap().name, "53-udp");
        assert_eq!(exposed_port("8080").unwrap().name, "8080-tcp");
        let r = exposed_port("8000-8010/tcp").unwrap();
        assert_eq!(
            (r.name.as_str(), r.port, r.count),
            ("8000-8010-tcp", 8000, 11)
        );
        assert_eq!(exposed_port("132/sctp").unwrap().protocol, "sctp");
        for bad in [
            "",
            "0/tcp",
            "65536/tcp",
            "http/tcp",
            "80/",
            "80/t-cp",
            "90-80/tcp",
            "-1/tcp",
            "+80/tcp",
        ] {
            assert!(exposed_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sorts_and_merges() {
        let keys: Vec<String> = ["443/tcp", "80", "53/udp", "80/tcp", "53/tcp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let names: Vec<String> = ports(&keys)
            .unwrap()
            .into_iter()
            .map(|p| p.name.to_string())
            .collect();
        assert_eq!(names, ["53-tcp", "53-udp", "80-tcp", "443-tcp"]);
    }
}
