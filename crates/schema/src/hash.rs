//! Image IDs: `sha512-<hex>` as appc writes them, plus sha256 for images
//! that came from OCI registries (also accepted in OCI's `sha256:<hex>` form).

use std::fmt;
use std::str::FromStr;

use crate::error::SchemaError;
use crate::json::{locate, FromJson, Path};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha512,
}

impl HashAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// Length of the full digest in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 64,
            HashAlgorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(HashAlgorithm::Sha256),
            "sha512" => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A full digest: algorithm plus lower-case hex of the right length.
/// Because it is only ever lower-case hex, it is safe to use as a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash {
    algorithm: HashAlgorithm,
    hex: String,
}

/// Length of the hex part shown by [`Hash::short`], as `rkt image list` shows it.
const SHORT_HEX_LEN: usize = 12;

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits `alg-hex` or `alg:hex`.
fn split(s: &str) -> Option<(&str, &str)> {
    s.split_once(['-', ':'])
}

impl Hash {
    pub fn new(algorithm: HashAlgorithm, hex: &str) -> Result<Self, SchemaError> {
        let value = format!("{algorithm}-{hex}");
        if !is_lower_hex(hex) {
            return Err(SchemaError::invalid_because(
                "image ID",
                value,
                "digest must be lower-case hex",
            ));
        }
        if hex.len() != algorithm.hex_len() {
            return Err(SchemaError::invalid_because(
                "image ID",
                value,
                format!(
                    "a {algorithm} digest has {} hex characters, not {}",
                    algorithm.hex_len(),
                    hex.len()
                ),
            ));
        }
        Ok(Hash {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The OCI digest form, `sha256:<hex>`.
    pub fn to_oci_digest(&self) -> String {
        format!("{}:{}", self.algorithm, self.hex)
    }

    /// An abbreviated form for humans, e.g. `sha512-5f362df82594`.
    pub fn short(&self) -> String {
        format!("{}-{}", self.algorithm, &self.hex[..SHORT_HEX_LEN])
    }

    /// Whether a user-typed, possibly abbreviated ID (`sha512-5f36`,
    /// `sha256:ab`) names this hash. The algorithm part is required.
    pub fn matches_prefix(&self, prefix: &str) -> bool {
        match split(prefix) {
            Some((alg, hex)) => {
                HashAlgorithm::from_name(alg) == Some(self.algorithm)
                    && !hex.is_empty()
                    && self.hex.starts_with(hex)
            }
            None => false,
        }
    }
}

impl FromStr for Hash {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, SchemaError> {
        let (alg, hex) = split(s).ok_or_else(|| {
            SchemaError::invalid_because("image ID", s, "expected \"sha512-<hex>\"")
        })?;
        let algorithm = HashAlgorithm::from_name(alg).ok_or_else(|| {
            SchemaError::invalid_because(
                "image ID",
                s,
                format!("unsupported hash algorithm {alg:?}, expected sha512 or sha256"),
            )
        })?;
        Hash::new(algorithm, hex).map_err(|e| match e {
            // Report the text the user gave, not our normalised form.
            SchemaError::Invalid { what, detail, .. } => SchemaError::Invalid {
                what,
                value: s.to_owned(),
                detail,
            },
            other => other,
        })
    }
}

/// The appc form, `sha512-<hex>`.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.algorithm, self.hex)
    }
}

impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl FromJson for Hash {
    fn from_json(value: &serde_json::Value, at: &Path) -> Result<Self, SchemaError> {
        String::from_json(value, at)?
            .parse()
            .map_err(|e| locate(e, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "8d3fffddf79e9a232ffd19f9ccaa4d6b37a6a243dbe0f23137b108a043d9da13121a9b505c804956b22e93c7f93969f4a7ba8ddea45bf4aab0bebc8f814e0990";
    const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_appc_and_oci_forms() {
        let h: Hash = format!("sha512-{SHA512}").parse().unwrap();
        assert_eq!(h.algorithm(), HashAlgorithm::Sha512);
        assert_eq!(h.to_string(), format!("sha512-{SHA512}"));
        assert_eq!(h.short(), "sha512-8d3fffddf79e");

        let a: Hash = format!("sha256-{SHA256}").parse().unwrap();
        let b: Hash = format!("sha256:{SHA256}").parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_string(), format!("sha256-{SHA256}"));
        assert_eq!(b.to_oci_digest(), format!("sha256:{SHA256}"));
    }

    #[test]
    fn rejects_bad_ids() {
        let cases = [
            "",
            "sha512",
            "sha512-",
            "sha512-...",
            "md5-d41d8cd98f00b204e9800998ecf8427e",
            &format!("sha512-{}", &SHA512[..100]),
            &format!("sha512-{}", SHA512.to_uppercase()),
            &format!("sha256-{SHA256}0"),
            &format!("sha256-../../{}", &SHA256[6..]),
        ];
        for s in cases {
            assert!(s.parse::<Hash>().is_err(), "{s:?}");
        }
        let e = "sha512-...".parse::<Hash>().unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""sha512-..." is not a valid image ID (digest must be lower-case hex)"#
        );
        let e = "sha1-00".parse::<Hash>().unwrap_err();
        assert!(
            e.to_string()
                .contains("unsupported hash algorithm \"sha1\""),
            "{e}"
        );
    }

    #[test]
    fn matches_prefixes() {
        let h: Hash = format!("sha512-{SHA512}").parse().unwrap();
        assert!(h.matches_prefix("sha512-8d3f"));
        assert!(h.matches_prefix("sha512:8d3f"));
        assert!(h.matches_prefix(&h.to_string()));
        assert!(!h.matches_prefix("sha512-"));
        assert!(!h.matches_prefix("sha256-8d3f"));
        assert!(!h.matches_prefix("8d3f"));
        assert!(!h.matches_prefix("sha512-8d3e"));
    }

    #[test]
    fn serde_round_trip() {
        let s = format!("\"sha256-{SHA256}\"");
        let h: Hash = serde_json::from_str(&s).unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), s);
    }
}
