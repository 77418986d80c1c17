//! Lifecycle hooks of an app.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::exec::Exec;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventHandlerName {
    /// Runs, and must exit, before the app's main process starts.
    #[serde(rename = "pre-start")]
    PreStart,
    /// Runs after the main process has exited.
    #[serde(rename = "post-stop")]
    PostStop,
}

impl EventHandlerName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventHandlerName::PreStart => "pre-start",
            EventHandlerName::PostStop => "post-stop",
        }
    }
}

impl fmt::Display for EventHandlerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventHandlerName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for EventHandlerName {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, SchemaError> {
        match s {
            "pre-start" => Ok(EventHandlerName::PreStart),
            "post-stop" => Ok(EventHandlerName::PostStop),
            _ => Err(SchemaError::invalid_because(
                "event handler name",
                s,
                "must be pre-start or post-stop",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventHandler {
    pub name: EventHandlerName,
    /// Never empty: a hook without a command would do nothing.
    pub exec: Exec,
}

impl FromJson for EventHandler {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        let name: String = o.required("name")?;
        let name = name.parse().map_err(|e| locate(e, &o.path("name")))?;
        let exec: Exec = o.required("exec")?;
        if exec.is_empty() {
            return Err(locate(
                SchemaError::Rule(format!("the {name} event handler has an empty exec")),
                &o.path("exec"),
            ));
        }
        Ok(EventHandler { name, exec })
    }
}

deserialize_via_from_json!(EventHandler);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_rejects() {
        let at = Path::root().key("eventHandlers").index(0);
        let h = EventHandler::from_json(
            &json!({"name": "pre-start", "exec": ["/usr/bin/data-downloader"]}),
            &at,
        )
        .unwrap();
        assert_eq!(h.name, EventHandlerName::PreStart);
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            json!({"name": "pre-start", "exec": ["/usr/bin/data-downloader"]})
        );
        let e = EventHandler::from_json(&json!({"name": "boot", "exec": ["/x"]}), &at).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"manifest field "eventHandlers[0].name": "boot" is not a valid event handler name (must be pre-start or post-stop)"#
        );
        let e =
            EventHandler::from_json(&json!({"name": "post-stop", "exec": []}), &at).unwrap_err();
        assert_eq!(e.field(), Some("eventHandlers[0].exec"));
        assert!(EventHandler::from_json(&json!({"name": "post-stop"}), &at).is_err());
    }
}
