//! AC Version: the SemVer 2.0.0 version of the spec a manifest follows.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::SchemaError;
use crate::json::FromJson;

/// A SemVer 2.0.0 version such as `0.8.11` or `1.0.0-rc.1+build.5`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated pre-release identifiers; empty for a release.
    pub pre: Vec<String>,
    /// Dot-separated build metadata; ignored for precedence.
    pub build: Vec<String>,
}

/// The version of the appc spec this crate implements and writes.
pub const SPEC_VERSION: AcVersion = AcVersion {
    major: 0,
    minor: 8,
    patch: 11,
    pre: Vec::new(),
    build: Vec::new(),
};

impl AcVersion {
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        AcVersion {
            major,
            minor,
            patch,
            pre: Vec::new(),
            build: Vec::new(),
        }
    }

    /// Same major series as `other`: the spec promises compatibility within it.
    pub fn is_compatible_with(&self, other: &AcVersion) -> bool {
        self.major == other.major
    }
}

impl Default for AcVersion {
    fn default() -> Self {
        SPEC_VERSION
    }
}

fn numeric(s: &str) -> Option<u64> {
    let no_leading_zero = s == "0" || !s.starts_with('0');
    if !s.is_empty() && no_leading_zero && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn identifiers(s: &str, numeric_rule: bool) -> Option<Vec<String>> {
    let ids: Vec<String> = s.split('.').map(str::to_owned).collect();
    let ok = ids.iter().all(|id| {
        let charset = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        // A numeric pre-release identifier must not have a leading zero.
        let all_digits = id.bytes().all(|b| b.is_ascii_digit());
        charset && !(numeric_rule && all_digits && numeric(id).is_none())
    });
    ok.then_some(ids)
}

impl FromStr for AcVersion {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, SchemaError> {
        let bad =
            || SchemaError::invalid_because("AC version", s, "must be a SemVer 2.0.0 version");
        let (rest, build) = match s.split_once('+') {
            Some((r, b)) => (r, identifiers(b, false).ok_or_else(bad)?),
            None => (s, Vec::new()),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, identifiers(p, true).ok_or_else(bad)?),
            None => (rest, Vec::new()),
        };
        let mut parts = core.split('.');
        let mut next = || parts.next().and_then(numeric).ok_or_else(bad);
        let (major, minor, patch) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(AcVersion {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }
}

impl fmt::Display for AcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

fn compare_pre(a: &[String], b: &[String]) -> Ordering {
    // A release sorts after any of its pre-releases.
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    for (x, y) in a.iter().zip(b) {
        let ord = match (numeric(x), numeric(y)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// SemVer precedence; build metadata only breaks ties so that the order
/// stays consistent with `Eq`.
impl Ord for AcVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(&self.pre, &other.pre))
            .then_with(|| self.build.cmp(&other.build))
    }
}

impl PartialOrd for AcVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for AcVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AcVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromJson for AcVersion {
    fn from_json(value: &serde_json::Value, at: &crate::json::Path) -> Result<Self, SchemaError> {
        String::from_json(value, at)?
            .parse()
            .map_err(|e| crate::json::locate(e, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> AcVersion {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays() {
        for s in [
            "0.8.11",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "0.0.0",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
        assert_eq!(v("0.8.11"), SPEC_VERSION);
    }

    #[test]
    fn rejects_non_semver() {
        for s in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3-a..b",
            "v1.2.3",
            "1.2.x",
            " 1.2.3",
        ] {
            assert!(s.parse::<AcVersion>().is_err(), "{s:?}");
        }
        let e = "1.2".parse::<AcVersion>().unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""1.2" is not a valid AC version (must be a SemVer 2.0.0 version)"#
        );
    }

    #[test]
    fn precedence_follows_semver() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in order.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert!(v("0.3.0").is_compatible_with(&SPEC_VERSION));
        assert!(!v("1.0.0").is_compatible_with(&SPEC_VERSION));
    }
}
