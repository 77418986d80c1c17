//! The `app` section: how to run an image's main process.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::environment::Environment;
use crate::error::SchemaError;
use crate::event_handler::EventHandler;
use crate::exec::Exec;
use crate::isolator::Isolators;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::mount_point::{check_app_path, MountPoint};
use crate::port::Port;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(skip_serializing_if = "Exec::is_empty")]
    pub exec: Exec,
    /// User name, numeric UID, or an absolute path whose owner to use;
    /// resolved against the image's own /etc/passwd.
    pub user: String,
    /// Group name, numeric GID, or an absolute path whose group to use.
    pub group: String,
    #[serde(rename = "supplementaryGIDs", skip_serializing_if = "Vec::is_empty")]
    pub supplementary_gids: Vec<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_handlers: Vec<EventHandler>,
    /// Absolute; `/` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
    #[serde(skip_serializing_if = "Isolators::is_empty")]
    pub isolators: Isolators,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Free-form data for end users; must not change how the app runs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

impl App {
    /// An app with nothing but a command and an identity.
    pub fn new(exec: Exec, user: &str, group: &str) -> Self {
        App {
            exec,
            user: user.to_owned(),
            group: group.to_owned(),
            supplementary_gids: Vec::new(),
            event_handlers: Vec::new(),
            working_directory: None,
            environment: Environment::default(),
            isolators: Isolators::default(),
            mount_points: Vec::new(),
            ports: Vec::new(),
            user_annotations: BTreeMap::new(),
            user_labels: BTreeMap::new(),
        }
    }

    /// The working directory, defaulting to `/`.
    pub fn working_directory(&self) -> &str {
        self.working_directory.as_deref().unwrap_or("/")
    }

    pub fn event_handler(&self, name: crate::EventHandlerName) -> Option<&EventHandler> {
        self.event_handlers.iter().find(|h| h.name == name)
    }

    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// Checks the rules that involve more than one field; fields are
    /// reported relative to the app.
    pub fn validate(&self) -> Result<(), SchemaError> {
        self.check(&Path::root())
    }

    pub(crate) fn check(&self, at: &Path) -> Result<(), SchemaError> {
        for (key, value) in [("user", &self.user), ("group", &self.group)] {
            if value.is_empty() {
                return Err(locate(
                    SchemaError::invalid_because(key_what(key), "", "must not be empty"),
                    &at.key(key),
                ));
            }
            if value.contains('\0') {
                return Err(locate(
                    SchemaError::invalid_because(
                        key_what(key),
                        value.as_str(),
                        "contains a NUL byte",
                    ),
                    &at.key(key),
                ));
            }
            crate::ids::check_user_or_group(key_what(key), value, None)
                .map_err(|e| locate(e, &at.key(key)))?;
        }
        for (i, gid) in self.supplementary_gids.iter().enumerate() {
            crate::ids::check_id("supplementary group", *gid, None)
                .map_err(|e| locate(e, &at.key("supplementaryGIDs").index(i)))?;
        }
        if let Some(wd) = &self.working_directory {
            let here = at.key("workingDirectory");
            check_app_path("working directory", wd).map_err(|e| locate(e, &here))?;
            if !wd.starts_with('/') {
                return Err(locate(
                    SchemaError::invalid_because(
                        "working directory",
                        wd.as_str(),
                        "must be an absolute path",
                    ),
                    &here,
                ));
            }
        }
        for (i, h) in self.event_handlers.iter().enumerate() {
            let here = at.key("eventHandlers").index(i);
            if h.exec.is_empty() {
                return Err(locate(
                    SchemaError::Rule(format!("the {} event handler has an empty exec", h.name)),
                    &here,
                ));
            }
            if self.event_handlers[..i].iter().any(|o| o.name == h.name) {
                return Err(locate(
                    SchemaError::duplicate("event handler", h.name.as_str()),
                    &here,
                ));
            }
        }
        for (i, m) in self.mount_points.iter().enumerate() {
            let here = at.key("mountPoints").index(i);
            check_app_path("mount point path", &m.path)
                .map_err(|e| locate(e, &here.key("path")))?;
            if self.mount_points[..i].iter().any(|o| o.name == m.name) {
                return Err(locate(
                    SchemaError::duplicate("mount point", m.name.as_str()),
                    &here,
                ));
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            let here = at.key("ports").index(i);
            p.validate().map_err(|e| locate(e, &here))?;
            if self.ports[..i].iter().any(|o| o.name == p.name) {
                return Err(locate(
                    SchemaError::duplicate("port", p.name.as_str()),
                    &here,
                ));
            }
        }
        Ok(())
    }
}

fn key_what(key: &str) -> &'static str {
    if key == "user" {
        "user"
    } else {
        "group"
    }
}

impl FromJson for App {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        let app = App {
            exec: o.or_default("exec")?,
            user: o.required("user")?,
            group: o.required("group")?,
            supplementary_gids: o.or_default("supplementaryGIDs")?,
            event_handlers: o.or_default("eventHandlers")?,
            working_directory: o.optional("workingDirectory")?,
            environment: o.or_default("environment")?,
            isolators: o.or_default("isolators")?,
            mount_points: o.or_default("mountPoints")?,
            ports: o.or_default("ports")?,
            user_annotations: o.or_default("userAnnotations")?,
            user_labels: o.or_default("userLabels")?,
        };
        app.check(at)?;
        Ok(app)
    }
}

deserialize_via_from_json!(App);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(v: Value) -> Result<App, SchemaError> {
        App::from_json(&v, &Path::root().key("app"))
    }

    #[test]
    fn minimal_app_round_trips() {
        let v = json!({"exec": ["/bin/sh"], "user": "0", "group": "0"});
        let a = app(v.clone()).unwrap();
        assert_eq!(a.working_directory(), "/");
        assert_eq!(serde_json::to_value(&a).unwrap(), v);
        let no_exec = app(json!({"user": "0", "group": "0"})).unwrap();
        assert!(no_exec.exec.is_empty());
        assert_eq!(
            serde_json::to_value(&no_exec).unwrap(),
            json!({"user": "0", "group": "0"})
        );
    }

    #[test]
    fn accepts_both_spellings_of_supplementary_gids() {
        let a = app(json!({"user": "0", "group": "0", "supplementaryGids": [400, 500]})).unwrap();
        assert_eq!(a.supplementary_gids, [400, 500]);
        assert_eq!(
            serde_json::to_value(&a).unwrap()["supplementaryGIDs"],
            json!([400, 500])
        );
    }

    #[test]
    fn rejects_with_field_paths() {
        let cases = [
            (
                json!({"exec": ["/bin/sh"], "user": "0"}),
                "app.group",
                "required but missing",
            ),
            (
                json!({"user": "", "group": "0"}),
                "app.user",
                r#""" is not a valid user (must not be empty)"#,
            ),
            (
                json!({"user": "0", "group": "0", "workingDirectory": "rel"}),
                "app.workingDirectory",
                r#""rel" is not a valid working directory (must be an absolute path)"#,
            ),
            (
                json!({"user": "0", "group": "0", "eventHandlers": [{"name": "pre-start", "exec": ["/a"]}, {"name": "pre-start", "exec": ["/b"]}]}),
                "app.eventHandlers[1]",
                r#"duplicate event handler "pre-start""#,
            ),
            (
                json!({"user": "0", "group": "0", "mountPoints": [{"name": "a", "path": "/x"}, {"name": "a", "path": "/y"}]}),
                "app.mountPoints[1]",
                r#"duplicate mount point "a""#,
            ),
            (
                json!({"user": "0", "group": "0", "ports": [{"name": "a", "port": 1, "protocol": "tcp"}, {"name": "a", "port": 2, "protocol": "udp"}]}),
                "app.ports[1]",
                r#"duplicate port "a""#,
            ),
            (
                json!({"user": "0", "group": "0", "supplementaryGIDs": [-1]}),
                "app.supplementaryGIDs[0]",
                "out of range",
            ),
            (
                json!({"user": "4294967295", "group": "0"}),
                "app.user",
                "(uid_t)-1",
            ),
            (
                json!({"user": "0", "group": "-1"}),
                "app.group",
                "not an id",
            ),
            (
                json!({"user": "0", "group": "0", "supplementaryGIDs": [5, 4294967295u32]}),
                "app.supplementaryGIDs[1]",
                "(uid_t)-1",
            ),
            (
                json!({"user": "0", "group": "0", "userLabels": {"a": 1}}),
                "app.userLabels.a",
                "expected a string, found a number",
            ),
            (
                json!({"user": 0, "group": "0"}),
                "app.user",
                "expected a string, found a number",
            ),
        ];
        for (v, field, problem) in cases {
            let e = app(v.clone()).unwrap_err();
            assert_eq!(e.field(), Some(field), "{v}: {e}");
            assert!(e.problem().to_string().contains(problem), "{v}: {e}");
        }
    }

    #[test]
    fn validate_catches_edits() {
        let mut a = App::new(Exec::new(vec!["/bin/true".into()]).unwrap(), "0", "0");
        assert!(a.validate().is_ok());
        a.working_directory = Some("tmp".into());
        assert_eq!(a.validate().unwrap_err().field(), Some("workingDirectory"));
    }
}
