//! Dependencies: images laid down under this one's rootfs.

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::hash::Hash;
use crate::identifier::AcIdentifier;
use crate::json::{deserialize_via_from_json, FromJson, Obj, Path};
use crate::labels::Labels;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub image_name: AcIdentifier,
    /// When given, the fetched dependency must have exactly this ID.
    #[serde(rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<Hash>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Expected size in bytes; guards against endless downloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl FromJson for Dependency {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(Dependency {
            image_name: o.required("imageName")?,
            image_id: o.optional("imageID")?,
            labels: o.or_default("labels")?,
            size: o.optional("size")?,
        })
    }
}

deserialize_via_from_json!(Dependency);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_round_trips() {
        let id = format!("sha512-{}", "a".repeat(128));
        let v = json!({"imageName": "example.com/reduce-worker-base", "imageID": id, "labels": [{"name": "os", "value": "linux"}], "size": 22017258});
        let d = Dependency::from_json(&v, &Path::root()).unwrap();
        assert_eq!(d.size, Some(22017258));
        assert_eq!(serde_json::to_value(&d).unwrap(), v);
        let minimal = json!({"imageName": "example.com/base"});
        let d = Dependency::from_json(&minimal, &Path::root()).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), minimal);
    }

    #[test]
    fn rejects_placeholder_id() {
        let at = Path::root().key("dependencies").index(0);
        let v = json!({"imageName": "example.com/base", "imageID": "sha512-..."});
        let e = Dependency::from_json(&v, &at).unwrap_err();
        assert_eq!(e.field(), Some("dependencies[0].imageID"));
        assert!(
            Dependency::from_json(&json!({"imageName": "example.com/base", "size": -1}), &at)
                .is_err()
        );
    }
}
