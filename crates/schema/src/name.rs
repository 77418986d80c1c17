//! AC Name: app names, volume and mount point names, port names.

use std::str::FromStr;

use crate::error::SchemaError;
use crate::json::string_type;

/// Lower-case alphanumerics and `-`, starting and ending with an
/// alphanumeric, e.g. `reduce-worker`. Like appc's validator, and unlike
/// the stricter regex in types.md, `a--b` is allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AcName(String);

string_type!(AcName);

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

impl FromStr for AcName {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, SchemaError> {
        let valid = s.starts_with(is_alnum)
            && s.ends_with(is_alnum)
            && s.chars().all(|c| is_alnum(c) || c == '-');
        if valid {
            Ok(AcName(s.to_owned()))
        } else {
            Err(SchemaError::invalid("AC name", s))
        }
    }
}

impl AcName {
    /// Turns an arbitrary string into an AC name: lower-cased, every other
    /// character replaced by `-`, dash runs collapsed, ends trimmed.
    /// Fails only when no alphanumeric character is left.
    pub fn sanitize(s: &str) -> Result<Self, SchemaError> {
        let mut out = String::with_capacity(s.len());
        for c in s.chars().flat_map(char::to_lowercase) {
            if is_alnum(c) {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        while out.ends_with('-') {
            out.pop();
        }
        out.parse()
            .map_err(|_| SchemaError::invalid_because("AC name", s, "nothing usable is left"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for s in ["database", "product-database", "a-1-b", "0", "a--b"] {
            assert!(s.parse::<AcName>().is_ok(), "{s}");
        }
        for s in ["", "Foo", "-a", "a-", "a.b", "a_b", "a/b", "a b"] {
            assert!(s.parse::<AcName>().is_err(), "{s:?}");
        }
        let e = "a_b".parse::<AcName>().unwrap_err();
        assert_eq!(e.to_string(), r#""a_b" is not a valid AC name"#);
    }

    #[test]
    fn sanitizes() {
        let s = |x: &str| AcName::sanitize(x).map(|n| n.to_string());
        assert_eq!(s("My_App.v2").unwrap(), "my-app-v2");
        assert_eq!(s("/var/lib/data").unwrap(), "var-lib-data");
        assert_eq!(s("--x--").unwrap(), "x");
        assert!(s("___").is_err());
        assert!(s("").is_err());
    }
}
