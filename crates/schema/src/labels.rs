//! Labels: `{name, value}` pairs used for discovery and dependency matching.

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::identifier::AcIdentifier;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::os_arch;

pub const VERSION: &str = "version";
pub const OS: &str = "os";
pub const ARCH: &str = "arch";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub name: AcIdentifier,
    pub value: String,
}

/// A list of labels with unique names, none called `name`, and a valid
/// os/arch pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Labels(Vec<Label>);

impl Labels {
    pub fn new(labels: Vec<Label>) -> Result<Self, SchemaError> {
        check(&labels)?;
        Ok(Labels(labels))
    }

    /// Builds labels from `(name, value)` string pairs, validating names.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SchemaError> {
        let labels = pairs
            .into_iter()
            .map(|(n, v)| {
                Ok(Label {
                    name: n.parse()?,
                    value: v.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, SchemaError>>()?;
        Labels::new(labels)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    pub fn version(&self) -> Option<&str> {
        self.get(VERSION)
    }

    pub fn os(&self) -> Option<&str> {
        self.get(OS)
    }

    pub fn arch(&self) -> Option<&str> {
        self.get(ARCH)
    }

    /// Sets a label, replacing one of the same name; refused (and nothing
    /// changed) if the result would be invalid.
    pub fn set(&mut self, name: AcIdentifier, value: impl Into<String>) -> Result<(), SchemaError> {
        let mut next = self.0.clone();
        let value = value.into();
        match next.iter_mut().find(|l| l.name == name) {
            Some(label) => label.value = value,
            None => next.push(Label { name, value }),
        }
        check(&next)?;
        self.0 = next;
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|l| l.name == name)?;
        Some(self.0.remove(i).value)
    }

    /// Whether every label of `wanted` is present here with the same value:
    /// the matching rule of discovery and dependencies.
    pub fn satisfies(&self, wanted: &Labels) -> bool {
        wanted
            .iter()
            .all(|w| self.get(w.name.as_str()) == Some(w.value.as_str()))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }
}

fn check(labels: &[Label]) -> Result<(), SchemaError> {
    for (i, label) in labels.iter().enumerate() {
        if label.name == "name" {
            return Err(SchemaError::invalid_because(
                "label name",
                "name",
                "reserved for the image name",
            ));
        }
        if labels[..i].iter().any(|l| l.name == label.name) {
            return Err(SchemaError::duplicate("label", label.name.as_str()));
        }
    }
    let find = |n: &str| {
        labels
            .iter()
            .find(|l| l.name == n)
            .map(|l| l.value.as_str())
    };
    os_arch::validate(find(OS), find(ARCH))
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromJson for Label {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(Label {
            name: o.required("name")?,
            value: o.required("value")?,
        })
    }
}

impl FromJson for Labels {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        Labels::new(Vec::from_json(value, at)?).map_err(|e| locate(e, at))
    }
}

deserialize_via_from_json!(Label, Labels);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Labels, SchemaError> {
        Labels::from_json(&v, &Path::root().key("labels"))
    }

    #[test]
    fn well_known_getters() {
        let l = parse(json!([
            {"name": "version", "value": "1.0.0"},
            {"name": "arch", "value": "amd64"},
            {"name": "os", "value": "linux"},
            {"name": "env", "value": "canary"}
        ]))
        .unwrap();
        assert_eq!(l.version(), Some("1.0.0"));
        assert_eq!(l.os(), Some("linux"));
        assert_eq!(l.arch(), Some("amd64"));
        assert_eq!(l.get("env"), Some("canary"));
        assert_eq!(l.get("nope"), None);
        assert_eq!(
            serde_json::to_value(&l).unwrap()[3],
            json!({"name": "env", "value": "canary"})
        );
    }

    #[test]
    fn rejects_invalid_lists() {
        let e = parse(json!([{"name": "os", "value": "linux"}, {"name": "os", "value": "linux"}]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "labels": duplicate label "os""#
        );
        let e = parse(json!([{"name": "name", "value": "x"}])).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
        let e =
            parse(json!([{"name": "os", "value": "linux"}, {"name": "arch", "value": "arm64"}]))
                .unwrap_err();
        assert!(
            e.to_string()
                .contains(r#""arm64" is not a valid arch label"#),
            "{e}"
        );
        let e = parse(json!([{"name": "Version", "value": "1"}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "labels[0].name": "Version" is not a valid AC identifier"#
        );
        let e = parse(json!([{"name": "version"}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "labels[0].value": required but missing"#
        );
        assert!(parse(json!({})).is_err());
    }

    #[test]
    fn set_keeps_the_list_valid() {
        let mut l = Labels::from_pairs([("os", "linux")]).unwrap();
        l.set("arch".parse().unwrap(), "amd64").unwrap();
        assert!(l.set("arch".parse().unwrap(), "sparc").is_err());
        assert_eq!(l.arch(), Some("amd64"));
        l.set("version".parse().unwrap(), "1").unwrap();
        l.set("version".parse().unwrap(), "2").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l.version(), Some("2"));
        assert_eq!(l.remove("version").as_deref(), Some("2"));
        assert!(l.set("name".parse().unwrap(), "x").is_err());
    }

    #[test]
    fn matching() {
        let have = Labels::from_pairs([("os", "linux"), ("version", "1")]).unwrap();
        assert!(have.satisfies(&Labels::from_pairs([("version", "1")]).unwrap()));
        assert!(have.satisfies(&Labels::default()));
        assert!(!have.satisfies(&Labels::from_pairs([("version", "2")]).unwrap()));
        assert!(!have.satisfies(&Labels::from_pairs([("arch", "amd64")]).unwrap()));
    }
}
