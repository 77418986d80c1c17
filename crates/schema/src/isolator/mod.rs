//! Isolators: `{name, value}` settings that constrain an app or a pod.
//!
//! [`Isolator`] keeps the raw JSON so that manifests round-trip unchanged,
//! including isolators Vessel does not know; [`Isolator::parse`] gives the
//! typed view. [`Isolators`] is a list whose known entries are all valid,
//! appear at most once, and do not conflict.

pub mod names;
mod typed;

use serde::Serialize;
use serde_json::Value;

pub use typed::{
    CapabilitySet, ResourceLimits, SeccompSet, SelinuxContext, TypedIsolator, SECCOMP_ALL,
    SECCOMP_EMPTY,
};

use crate::error::SchemaError;
use crate::identifier::AcIdentifier;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::quantity::Quantity;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Isolator {
    name: AcIdentifier,
    value: Value,
}

impl Isolator {
    pub fn new(name: AcIdentifier, value: Value) -> Self {
        Isolator { name, value }
    }

    pub fn name(&self) -> &AcIdentifier {
        &self.name
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The typed view; `TypedIsolator::Unknown` for names Vessel does not implement.
    pub fn parse(&self) -> Result<TypedIsolator, SchemaError> {
        TypedIsolator::parse(&self.name, &self.value)
    }

    pub fn is_known(&self) -> bool {
        names::KNOWN.contains(&self.name.as_str())
    }

    /// `resource/memory` with only a limit, as `--memory=128M` asks.
    pub fn memory_limit(limit: Quantity) -> Self {
        TypedIsolator::Memory(ResourceLimits::limit(limit)).into()
    }

    /// `resource/cpu` with only a limit, as `--cpu=500m` asks.
    pub fn cpu_limit(limit: Quantity) -> Self {
        TypedIsolator::Cpu(ResourceLimits::limit(limit)).into()
    }
}

impl From<TypedIsolator> for Isolator {
    fn from(t: TypedIsolator) -> Self {
        let name = match &t {
            TypedIsolator::Unknown { name, .. } => name.clone(),
            // Every known name is a valid identifier; tested below.
            known => known
                .name()
                .parse()
                .expect("known isolator names are AC identifiers"),
        };
        Isolator {
            name,
            value: t.to_value(),
        }
    }
}

impl FromJson for Isolator {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(Isolator {
            name: o.required("name")?,
            value: o.required("value")?,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Isolators(Vec<Isolator>);

/// Checks the list; an error may carry the index of the entry at fault.
fn check(list: &[Isolator]) -> Result<(), (Option<usize>, SchemaError)> {
    for (i, iso) in list.iter().enumerate() {
        iso.parse().map_err(|e| (Some(i), e))?;
        let repeated = list[..i].iter().any(|o| o.name == iso.name);
        if iso.is_known() && repeated {
            return Err((
                Some(i),
                SchemaError::duplicate("isolator", iso.name.as_str()),
            ));
        }
    }
    let has = |n: &str| list.iter().any(|i| i.name == n);
    for (a, b) in names::CONFLICTS {
        if has(a) && has(b) {
            return Err((
                None,
                SchemaError::Rule(format!("isolators {a} and {b} cannot be used together")),
            ));
        }
    }
    Ok(())
}

impl Isolators {
    pub fn new(list: Vec<Isolator>) -> Result<Self, SchemaError> {
        check(&list).map_err(|(_, e)| e)?;
        Ok(Isolators(list))
    }

    pub fn get(&self, name: &str) -> Option<&Isolator> {
        self.0.iter().find(|i| i.name == name)
    }

    /// Adds an isolator, replacing a known one of the same name; refused
    /// (and nothing changed) if the list would become invalid.
    pub fn set(&mut self, isolator: Isolator) -> Result<(), SchemaError> {
        let mut next = self.0.clone();
        match next
            .iter_mut()
            .find(|i| i.is_known() && i.name == isolator.name)
        {
            Some(existing) => *existing = isolator,
            None => next.push(isolator),
        }
        check(&next).map_err(|(_, e)| e)?;
        self.0 = next;
        Ok(())
    }

    /// Removes every isolator of that name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|i| i.name != name);
    }

    /// Typed views of all entries, in order.
    pub fn typed(&self) -> Vec<TypedIsolator> {
        self.0
            .iter()
            .map(|i| i.parse().expect("isolators are validated on construction"))
            .collect()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Isolator> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Isolators {
    type Item = &'a Isolator;
    type IntoIter = std::slice::Iter<'a, Isolator>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromJson for Isolators {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let list: Vec<Isolator> = Vec::from_json(value, at)?;
        check(&list).map_err(|(index, e)| match index {
            Some(i) => locate(e, &at.index(i)),
            None => locate(e, at),
        })?;
        Ok(Isolators(list))
    }
}

deserialize_via_from_json!(Isolator, Isolators);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(v: Value) -> Result<Isolators, SchemaError> {
        Isolators::from_json(&v, &Path::root().key("app").key("isolators"))
    }

    #[test]
    fn known_names_are_identifiers() {
        for n in names::KNOWN {
            assert!(n.parse::<AcIdentifier>().is_ok(), "{n}");
        }
    }

    #[test]
    fn round_trips_raw_json() {
        let v = json!([
            {"name": "resource/cpu", "value": {"request": "250m", "limit": "500m"}},
            {"name": "os/linux/no-new-privileges", "value": true},
            {"name": "vendor.example/thing", "value": [1, {"x": null}]},
            {"name": "vendor.example/thing", "value": 2}
        ]);
        let l = list(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&l).unwrap(), v);
        let typed = l.typed();
        assert!(matches!(typed[0], TypedIsolator::Cpu(_)));
        assert!(matches!(typed[2], TypedIsolator::Unknown { .. }));
        assert!(!l.get("vendor.example/thing").unwrap().is_known());
    }

    #[test]
    fn locates_bad_entries() {
        let e = list(json!([{"name": "os/linux/no-new-privileges", "value": true}, {"name": "resource/memory", "value": {"limit": "12x"}}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "app.isolators[1]": isolator "resource/memory": limit: "12x" is not a valid quantity (unknown suffix "x")"#
        );
        let e = list(json!([{"name": "resource/memory", "value": {"limit": "1G"}}, {"name": "resource/memory", "value": {"limit": "2G"}}])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "app.isolators[1]": duplicate isolator "resource/memory""#
        );
        let e = list(json!([{"name": "Bad Name", "value": 1}])).unwrap_err();
        assert_eq!(e.field(), Some("app.isolators[0].name"));
        let e = list(json!([{"name": "x"}])).unwrap_err();
        assert_eq!(e.field(), Some("app.isolators[0].value"));
    }

    #[test]
    fn rejects_conflicts() {
        let e = list(json!([
            {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_A"]}},
            {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_B"]}}
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "app.isolators": isolators os/linux/capabilities-retain-set and os/linux/capabilities-remove-set cannot be used together"#
        );
        assert!(list(json!([
            {"name": "os/linux/seccomp-retain-set", "value": {"set": ["read"]}},
            {"name": "os/linux/seccomp-remove-set", "value": {"set": ["write"]}}
        ]))
        .is_err());
    }

    #[test]
    fn set_replaces_and_validates() {
        let mut l = Isolators::default();
        l.set(Isolator::memory_limit("128M".parse().unwrap()))
            .unwrap();
        l.set(Isolator::memory_limit("256M".parse().unwrap()))
            .unwrap();
        l.set(Isolator::cpu_limit("500m".parse().unwrap())).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            l.get("resource/memory").unwrap().value(),
            &json!({"limit": "256M"})
        );
        let TypedIsolator::Cpu(cpu) = l.get("resource/cpu").unwrap().parse().unwrap() else {
            panic!()
        };
        assert_eq!(cpu.limit_millis(), Some(500));

        let retain = TypedIsolator::CapabilitiesRetain(CapabilitySet {
            set: vec!["CAP_KILL".into()],
        });
        let remove = TypedIsolator::CapabilitiesRemove(CapabilitySet {
            set: vec!["CAP_KILL".into()],
        });
        l.set(retain.into()).unwrap();
        assert!(l.set(remove.into()).is_err());
        assert_eq!(l.len(), 3);
        let bad = Isolator::new("resource/memory".parse().unwrap(), json!({"limit": "x"}));
        assert!(l.set(bad).is_err());
        l.remove("resource/memory");
        assert_eq!(l.len(), 2);
    }
}
