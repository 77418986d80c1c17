//! Annotations: free-form `{name, value}` metadata with unique names.

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::identifier::AcIdentifier;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};

/// Annotation names the spec (and tools in its lineage) give a meaning to.
pub mod names {
    /// RFC 3339 date on which the image was built.
    pub const CREATED: &str = "created";
    pub const AUTHORS: &str = "authors";
    pub const HOMEPAGE: &str = "homepage";
    pub const DOCUMENTATION: &str = "documentation";
    pub const SUPPORTS_SYSTEMD_NOTIFY: &str = "appc.io/executor/supports-systemd-notify";
    /// The OCI config's Entrypoint, as a JSON array (docker2aci's name).
    pub const DOCKER_ENTRYPOINT: &str = "appc.io/docker/entrypoint";
    /// The OCI config's Cmd, as a JSON array (docker2aci's name).
    pub const DOCKER_CMD: &str = "appc.io/docker/cmd";
    /// Set to "true" when an app's group came from an OCI `User` without a
    /// group: the executor must then use the user's primary group from the
    /// image's /etc/passwd (falling back to the app's `group`, "0", when the
    /// user is numeric and absent there), as Docker does.
    pub const VESSEL_GROUP_FROM_PASSWD: &str = "vessel/oci/group-from-passwd";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    pub name: AcIdentifier,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Annotations(Vec<Annotation>);

impl Annotations {
    pub fn new(annotations: Vec<Annotation>) -> Result<Self, SchemaError> {
        check(&annotations)?;
        Ok(Annotations(annotations))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// Sets an annotation, replacing one of the same name.
    pub fn set(&mut self, name: AcIdentifier, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|a| a.name == name) {
            Some(a) => a.value = value,
            None => self.0.push(Annotation { name, value }),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a.name == name)?;
        Some(self.0.remove(i).value)
    }

    /// These annotations overridden by `other`'s, as the metadata service
    /// merges image and pod-app annotations.
    pub fn merged_with(&self, other: &Annotations) -> Annotations {
        let mut out = self.clone();
        for a in other {
            out.set(a.name.clone(), a.value.clone());
        }
        out
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Annotation> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Annotation] {
        &self.0
    }
}

fn check(annotations: &[Annotation]) -> Result<(), SchemaError> {
    for (i, a) in annotations.iter().enumerate() {
        if annotations[..i].iter().any(|b| b.name == a.name) {
            return Err(SchemaError::duplicate("annotation", a.name.as_str()));
        }
    }
    Ok(())
}

impl<'a> IntoIterator for &'a Annotations {
    type Item = &'a Annotation;
    type IntoIter = std::slice::Iter<'a, Annotation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromJson for Annotation {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(Annotation {
            name: o.required("name")?,
            value: o.required("value")?,
        })
    }
}

impl FromJson for Annotations {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        Annotations::new(Vec::from_json(value, at)?).map_err(|e| locate(e, at))
    }
}

deserialize_via_from_json!(Annotation, Annotations);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_get_set_merge() {
        let v = json!([{"name": "created", "value": "2014-10-27T19:32:27.67021798Z"}, {"name": "ip-address", "value": "10.1.2.3"}]);
        let mut a = Annotations::from_json(&v, &Path::root()).unwrap();
        assert_eq!(a.get(names::CREATED), Some("2014-10-27T19:32:27.67021798Z"));
        a.set("ip-address".parse().unwrap(), "10.0.0.1");
        assert_eq!(a.len(), 2);
        let other = Annotations::new(vec![Annotation {
            name: "created".parse().unwrap(),
            value: "now".into(),
        }])
        .unwrap();
        let m = a.merged_with(&other);
        assert_eq!(m.get("created"), Some("now"));
        assert_eq!(m.get("ip-address"), Some("10.0.0.1"));
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!([{"name": "created", "value": "2014-10-27T19:32:27.67021798Z"}, {"name": "ip-address", "value": "10.0.0.1"}])
        );
    }

    #[test]
    fn rejects_duplicates_and_bad_names() {
        let v = json!([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]);
        let e = Annotations::from_json(&v, &Path::root().key("annotations")).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "annotations": duplicate annotation "a""#
        );
        let v = json!([{"name": "Foo", "value": "1"}]);
        assert!(Annotations::from_json(&v, &Path::root()).is_err());
    }

    #[test]
    fn well_known_names_are_identifiers() {
        for n in [
            names::CREATED,
            names::SUPPORTS_SYSTEMD_NOTIFY,
            names::DOCKER_ENTRYPOINT,
            names::DOCKER_CMD,
            names::VESSEL_GROUP_FROM_PASSWD,
        ] {
            assert!(n.parse::<AcIdentifier>().is_ok(), "{n}");
        }
    }
}
