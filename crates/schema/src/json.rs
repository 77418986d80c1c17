//! Decoding JSON values into validated types while tracking where we are,
//! so that every error can name the manifest field it concerns.
//!
//! serde's derive cannot say which field a validation error belongs to, so
//! the types of this crate decode themselves from a `serde_json::Value`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::SchemaError;

/// A location inside a manifest, rendered like `apps[0].app.exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    pub(crate) fn root() -> Self {
        Path(String::new())
    }

    pub(crate) fn key(&self, key: &str) -> Path {
        if self.0.is_empty() {
            Path(key.to_owned())
        } else {
            Path(format!("{}.{key}", self.0))
        }
    }

    pub(crate) fn index(&self, index: usize) -> Path {
        Path(format!("{}[{index}]", self.0))
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Attaches a location to an error, unless it is at the root or already has one.
pub(crate) fn locate(err: SchemaError, at: &Path) -> SchemaError {
    match err {
        SchemaError::Field { .. } => err,
        _ if at.is_root() => err,
        problem => SchemaError::Field {
            field: at.0.clone(),
            problem: Box::new(problem),
        },
    }
}

/// Parses bytes as JSON, then decodes the value.
pub(crate) fn decode_slice<T: FromJson>(bytes: &[u8]) -> Result<T, SchemaError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| SchemaError::Json(e.to_string()))?;
    T::from_json(&value, &Path::root())
}

/// Types that decode (and validate) themselves from a JSON value.
/// Errors returned are already located at `at` or below.
pub(crate) trait FromJson: Sized {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError>;
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn wrong_type(expected: &'static str, value: &Value, at: &Path) -> SchemaError {
    locate(
        SchemaError::WrongType {
            expected,
            found: kind_of(value),
        },
        at,
    )
}

impl FromJson for String {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| wrong_type("a string", value, at))
    }
}

impl FromJson for bool {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        value
            .as_bool()
            .ok_or_else(|| wrong_type("a boolean", value, at))
    }
}

impl FromJson for Value {
    fn from_json(value: &Value, _at: &Path) -> Result<Self, SchemaError> {
        Ok(value.clone())
    }
}

/// Integers decode through i128 so that both signed and unsigned ranges
/// can be checked with one message.
fn integer(value: &Value, at: &Path) -> Result<i128, SchemaError> {
    let n = match value {
        Value::Number(n) => n,
        other => return Err(wrong_type("an integer", other, at)),
    };
    if let Some(i) = n.as_i64() {
        Ok(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Ok(i128::from(u))
    } else {
        Err(locate(
            SchemaError::invalid_because("integer", n.to_string(), "has a fraction"),
            at,
        ))
    }
}

macro_rules! integer_from_json {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl FromJson for $ty {
            fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
                let n = integer(value, at)?;
                <$ty>::try_from(n).map_err(|_| {
                    locate(SchemaError::invalid_because($what, n.to_string(), "out of range"), at)
                })
            }
        }
    )*};
}

integer_from_json!(
    u16 => "16-bit unsigned integer",
    u32 => "32-bit unsigned integer",
    u64 => "64-bit unsigned integer",
    i32 => "32-bit integer",
    i64 => "64-bit integer",
);

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let items = value
            .as_array()
            .ok_or_else(|| wrong_type("an array", value, at))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| T::from_json(item, &at.index(i)))
            .collect()
    }
}

/// String-to-string maps (userAnnotations, userLabels, sysctl).
impl FromJson for BTreeMap<String, String> {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let map = value
            .as_object()
            .ok_or_else(|| wrong_type("an object", value, at))?;
        map.iter()
            .map(|(k, v)| Ok((k.clone(), String::from_json(v, &at.key(k))?)))
            .collect()
    }
}

/// A JSON object being decoded, with its location.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: &'a Path,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(value: &'a Value, at: &'a Path) -> Result<Self, SchemaError> {
        let map = value
            .as_object()
            .ok_or_else(|| wrong_type("an object", value, at))?;
        Ok(Obj { map, at })
    }

    /// Exact key first, then a case-insensitive match: Go's encoding/json,
    /// which produced most appc manifests, matches keys that way (the spec's
    /// own example spells `supplementaryGids` for `supplementaryGIDs`).
    /// A null value counts as absent, as it does for Go's `omitempty` fields.
    fn lookup(&self, key: &str) -> Option<(&'a str, &'a Value)> {
        let found = self
            .map
            .get_key_value(key)
            .or_else(|| self.map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)));
        found
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.as_str(), v))
    }

    pub(crate) fn path(&self, key: &str) -> Path {
        self.at.key(key)
    }

    pub(crate) fn required<T: FromJson>(&self, key: &str) -> Result<T, SchemaError> {
        match self.lookup(key) {
            Some((_, v)) => T::from_json(v, &self.path(key)),
            None => Err(locate(SchemaError::Missing, &self.path(key))),
        }
    }

    pub(crate) fn optional<T: FromJson>(&self, key: &str) -> Result<Option<T>, SchemaError> {
        match self.lookup(key) {
            Some((_, v)) => T::from_json(v, &self.path(key)).map(Some),
            None => Ok(None),
        }
    }

    /// An optional field whose absence means its empty/default value.
    pub(crate) fn or_default<T: FromJson + Default>(&self, key: &str) -> Result<T, SchemaError> {
        Ok(self.optional(key)?.unwrap_or_default())
    }
}

/// Implements `serde::Deserialize` through [`FromJson`], so that decoding
/// with serde validates exactly as `from_slice` does.
macro_rules! deserialize_via_from_json {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
                <$ty as $crate::json::FromJson>::from_json(&value, &$crate::json::Path::root())
                    .map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use deserialize_via_from_json;

/// The common impls of a validated string newtype whose `FromStr` checks it:
/// Display, AsRef<str>, comparisons with `str`, serde, and [`FromJson`].
macro_rules! string_type {
    ($ty:ident) => {
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::error::SchemaError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::error::SchemaError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $crate::json::FromJson for $ty {
            fn from_json(
                value: &serde_json::Value,
                at: &$crate::json::Path,
            ) -> Result<Self, $crate::error::SchemaError> {
                let s = <String as $crate::json::FromJson>::from_json(value, at)?;
                s.parse().map_err(|e| $crate::json::locate(e, at))
            }
        }
    };
}
pub(crate) use string_type;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_render_like_accessors() {
        let p = Path::root().key("apps").index(2).key("app").key("exec");
        assert_eq!(p.0, "apps[2].app.exec");
    }

    #[test]
    fn missing_and_wrong_type_are_located() {
        let v = json!({"a": 1});
        let at = Path::root();
        let obj = Obj::new(&v, &at).unwrap();
        let e = obj.required::<String>("b").unwrap_err();
        assert_eq!(e.to_string(), r#"manifest field "b": required but missing"#);
        let e = obj.required::<String>("a").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "a": expected a string, found a number"#
        );
    }

    #[test]
    fn keys_match_case_insensitively_and_null_is_absent() {
        let v = json!({"supplementaryGids": [1], "x": null});
        let at = Path::root();
        let obj = Obj::new(&v, &at).unwrap();
        assert_eq!(
            obj.required::<Vec<u32>>("supplementaryGIDs").unwrap(),
            vec![1]
        );
        assert_eq!(obj.optional::<String>("x").unwrap(), None);
    }

    #[test]
    fn integers_are_range_checked() {
        let at = Path::root().key("n");
        assert_eq!(u16::from_json(&json!(65535), &at).unwrap(), 65535);
        let e = u16::from_json(&json!(65536), &at).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "n": "65536" is not a valid 16-bit unsigned integer (out of range)"#
        );
        assert!(u32::from_json(&json!(-1), &at).is_err());
        assert!(u32::from_json(&json!(1.5), &at).is_err());
        assert_eq!(i32::from_json(&json!(-1000), &at).unwrap(), -1000);
    }

    #[test]
    fn non_json_is_reported_with_position() {
        let e = decode_slice::<String>(b"{nope").unwrap_err();
        assert!(matches!(e, SchemaError::Json(_)));
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
