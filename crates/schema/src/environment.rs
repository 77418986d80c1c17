//! An app's environment: an ordered list of variables with unique names.

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// Names are POSIX-like: letters, digits and `_`, plus `.` and `-` which the
/// spec allows for practical reasons; not starting with a digit. No value
/// may contain NUL, which execve cannot carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Environment(Vec<EnvVar>);

pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_var(name: &str, value: &str) -> Result<(), SchemaError> {
    if !is_env_name(name) {
        return Err(SchemaError::invalid("environment variable name", name));
    }
    if value.contains('\0') {
        return Err(SchemaError::invalid_because(
            "environment variable value",
            value,
            "contains a NUL byte",
        ));
    }
    Ok(())
}

impl Environment {
    pub fn new(vars: Vec<EnvVar>) -> Result<Self, SchemaError> {
        for (i, v) in vars.iter().enumerate() {
            check_var(&v.name, &v.value)?;
            if vars[..i].iter().any(|w| w.name == v.name) {
                return Err(SchemaError::duplicate("environment variable", &v.name));
            }
        }
        Ok(Environment(vars))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }

    /// Sets a variable in place if present, else appends it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SchemaError> {
        check_var(name, value)?;
        match self.0.iter_mut().find(|v| v.name == name) {
            Some(v) => v.value = value.to_owned(),
            None => self.0.push(EnvVar {
                name: name.to_owned(),
                value: value.to_owned(),
            }),
        }
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|v| v.name == name)?;
        Some(self.0.remove(i).value)
    }

    /// `NAME=value` strings in order, as execve and the OCI runtime spec want.
    pub fn to_key_values(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|v| format!("{}={}", v.name, v.value))
            .collect()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, EnvVar> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Environment {
    type Item = &'a EnvVar;
    type IntoIter = std::slice::Iter<'a, EnvVar>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromJson for EnvVar {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(EnvVar {
            name: o.required("name")?,
            value: o.required("value")?,
        })
    }
}

impl FromJson for Environment {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let vars: Vec<EnvVar> = Vec::from_json(value, at)?;
        for (i, v) in vars.iter().enumerate() {
            check_var(&v.name, &v.value).map_err(|e| locate(e, &at.index(i)))?;
        }
        Environment::new(vars).map_err(|e| locate(e, at))
    }
}

deserialize_via_from_json!(EnvVar, Environment);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        for n in ["PATH", "_x", "a.b-c", "REDUCE_WORKER_DEBUG", "x1"] {
            assert!(is_env_name(n), "{n}");
        }
        for n in ["", "1A", "a b", "a=b", "ä", "-a"] {
            assert!(!is_env_name(n), "{n:?}");
        }
    }

    #[test]
    fn keeps_order_and_sets() {
        let v = json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]);
        let mut env = Environment::from_json(&v, &Path::root()).unwrap();
        env.set("B", "3").unwrap();
        env.set("C", "").unwrap();
        assert_eq!(env.to_key_values(), ["B=3", "A=1", "C="]);
        assert!(env.set("no good", "x").is_err());
        assert!(env.set("X", "a\0b").is_err());
        assert_eq!(env.remove("A").as_deref(), Some("1"));
        assert_eq!(env.get("A"), None);
    }

    #[test]
    fn rejects_bad_entries_with_location() {
        let at = Path::root().key("app").key("environment");
        let e = Environment::from_json(&json!([{"name": "a b", "value": "x"}]), &at).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "app.environment[0]": "a b" is not a valid environment variable name"#
        );
        let e = Environment::from_json(
            &json!([{"name": "a", "value": "x"}, {"name": "a", "value": "y"}]),
            &at,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "app.environment": duplicate environment variable "a""#
        );
    }
}
