//! Mount points: where an app expects external data, by name.

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::name::AcName;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    pub name: AcName,
    /// Path inside the app's root. appc does not require it to be absolute;
    /// it is resolved inside the root either way.
    pub path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// Paths inside an app: non-empty and without NUL.
pub(crate) fn check_app_path(what: &'static str, path: &str) -> Result<(), SchemaError> {
    if path.is_empty() {
        return Err(SchemaError::invalid_because(
            what,
            path,
            "must not be empty",
        ));
    }
    if path.contains('\0') {
        return Err(SchemaError::invalid_because(
            what,
            path,
            "contains a NUL byte",
        ));
    }
    Ok(())
}

impl FromJson for MountPoint {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        let path: String = o.required("path")?;
        check_app_path("mount point path", &path).map_err(|e| locate(e, &o.path("path")))?;
        Ok(MountPoint {
            name: o.required("name")?,
            path,
            read_only: o.or_default("readOnly")?,
        })
    }
}

deserialize_via_from_json!(MountPoint);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_serialises() {
        let m = MountPoint::from_json(
            &json!({"name": "work", "path": "/var/lib/work", "readOnly": true}),
            &Path::root(),
        )
        .unwrap();
        assert!(m.read_only);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"name": "work", "path": "/var/lib/work", "readOnly": true})
        );
        let m =
            MountPoint::from_json(&json!({"name": "work", "path": "/w"}), &Path::root()).unwrap();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"name": "work", "path": "/w"})
        );
    }

    #[test]
    fn rejects() {
        let at = Path::root().key("mountPoints").index(0);
        let e = MountPoint::from_json(&json!({"name": "work", "path": ""}), &at).unwrap_err();
        assert_eq!(e.field(), Some("mountPoints[0].path"));
        assert!(MountPoint::from_json(&json!({"name": "Work", "path": "/w"}), &at).is_err());
        assert!(MountPoint::from_json(&json!({"path": "/w"}), &at).is_err());
    }
}
