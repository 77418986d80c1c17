//! AC Identifier: image names, label and annotation names, isolator names.

use std::str::FromStr;

use crate::error::SchemaError;
use crate::json::string_type;

/// Lower-case alphanumerics and `-._~/`, starting and ending with an
/// alphanumeric, e.g. `example.com/app`.
///
/// types.md also gives the regex `^[a-z0-9]+([-._~/][a-z0-9]+)*$`, which
/// rejects its own example `example.com/~user/app_v1`; appc's validator
/// (actool) allows separator runs, and so do we.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AcIdentifier(String);

string_type!(AcIdentifier);

const SEPARATORS: &[char] = &['-', '.', '_', '~', '/'];

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub(crate) fn is_ac_identifier(s: &str) -> bool {
    s.starts_with(is_alnum)
        && s.ends_with(is_alnum)
        && s.chars().all(|c| is_alnum(c) || SEPARATORS.contains(&c))
}

impl FromStr for AcIdentifier {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, SchemaError> {
        if is_ac_identifier(s) {
            Ok(AcIdentifier(s.to_owned()))
        } else {
            Err(SchemaError::invalid("AC identifier", s))
        }
    }
}

impl AcIdentifier {
    /// Turns an arbitrary string (a Docker repository, say) into an AC
    /// identifier: lower-cased, other characters replaced by `-`, separator
    /// runs collapsed to their first character, ends trimmed.
    pub fn sanitize(s: &str) -> Result<Self, SchemaError> {
        let mut out = String::with_capacity(s.len());
        for c in s.chars().flat_map(char::to_lowercase) {
            let c = if is_alnum(c) || SEPARATORS.contains(&c) {
                c
            } else {
                '-'
            };
            let after_separator = out.chars().last().is_none_or(|l| !is_alnum(l));
            if !is_alnum(c) && after_separator {
                continue;
            }
            out.push(c);
        }
        while out.ends_with(SEPARATORS) {
            out.pop();
        }
        out.parse()
            .map_err(|_| SchemaError::invalid_because("AC identifier", s, "nothing usable is left"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_spec_examples() {
        for s in [
            "database",
            "example.com/database",
            "example.com/ourapp",
            "example.com/~user/app_v1",
            "sub-domain.example.com/org/product/release",
            "a",
            "0",
            "os/linux/capabilities-retain-set",
            "foo//bar",
            "a--b",
        ] {
            assert!(s.parse::<AcIdentifier>().is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_bad_ones() {
        for s in [
            "", "Foo", "foo bar", "-foo", "foo-", "/foo", "foo/", "föo", "foo:bar",
        ] {
            assert!(s.parse::<AcIdentifier>().is_err(), "{s:?}");
        }
        let e = "Foo Bar".parse::<AcIdentifier>().unwrap_err();
        assert_eq!(e.to_string(), r#""Foo Bar" is not a valid AC identifier"#);
    }

    #[test]
    fn sanitizes() {
        let s = |x: &str| AcIdentifier::sanitize(x).map(|i| i.to_string());
        assert_eq!(
            s("Registry-1.Docker.IO/library/Redis").unwrap(),
            "registry-1.docker.io/library/redis"
        );
        assert_eq!(s("host:5000/a//b").unwrap(), "host-5000/a/b");
        assert_eq!(s("__x__").unwrap(), "x");
        assert!(s("///").is_err());
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let id: AcIdentifier = serde_json::from_str(r#""example.com/app""#).unwrap();
        assert_eq!(id, "example.com/app");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""example.com/app""#);
        assert!(serde_json::from_str::<AcIdentifier>(r#""Nope""#).is_err());
    }
}
