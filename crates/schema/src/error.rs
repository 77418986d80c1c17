//! The one error type of this crate.

use thiserror::Error;

/// Everything that can be wrong with a manifest, a value or an image config.
///
/// Leaf variants describe the problem with one value; [`SchemaError::Field`]
/// says where in a manifest that value sits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemaError {
    /// The bytes are not JSON at all; the message carries serde_json's position.
    #[error("manifest is not valid JSON: {0}")]
    Json(String),

    /// A problem located at a field of a manifest, e.g. `apps[0].app.exec`.
    #[error("manifest field \"{field}\": {problem}")]
    Field {
        field: String,
        problem: Box<SchemaError>,
    },

    /// A field the spec requires is absent (or null).
    #[error("required but missing")]
    Missing,

    /// The JSON value has the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },

    /// A value that does not have the syntax or range its type needs.
    #[error("{value:?} is not a valid {what}{}", detail_suffix(.detail))]
    Invalid {
        what: &'static str,
        value: String,
        detail: Option<String>,
    },

    /// Two entries of a list that must be unique share a key.
    #[error("duplicate {what} {name:?}")]
    Duplicate { what: &'static str, name: String },

    /// A rule that involves more than one value is broken.
    #[error("{0}")]
    Rule(String),

    /// A well-known isolator whose value does not fit its schema.
    #[error("isolator {name:?}: {problem}")]
    Isolator {
        name: String,
        problem: Box<SchemaError>,
    },

    /// A field of an OCI image configuration that cannot be converted.
    #[error("image config field \"{field}\": {problem}")]
    OciConfig {
        field: &'static str,
        problem: Box<SchemaError>,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

impl SchemaError {
    /// An [`SchemaError::Invalid`] without further detail.
    pub(crate) fn invalid(what: &'static str, value: impl Into<String>) -> Self {
        SchemaError::Invalid {
            what,
            value: value.into(),
            detail: None,
        }
    }

    /// An [`SchemaError::Invalid`] that explains what is wrong.
    pub(crate) fn invalid_because(
        what: &'static str,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        SchemaError::Invalid {
            what,
            value: value.into(),
            detail: Some(detail.into()),
        }
    }

    pub(crate) fn duplicate(what: &'static str, name: impl Into<String>) -> Self {
        SchemaError::Duplicate {
            what,
            name: name.into(),
        }
    }

    /// The manifest path of the problem, when it has one.
    pub fn field(&self) -> Option<&str> {
        match self {
            SchemaError::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The problem itself, without the location.
    pub fn problem(&self) -> &SchemaError {
        match self {
            SchemaError::Field { problem, .. } => problem,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_message_names_field_and_value() {
        let e = SchemaError::Field {
            field: "name".into(),
            problem: Box::new(SchemaError::invalid("AC identifier", "Foo Bar")),
        };
        assert_eq!(
            e.to_string(),
            r#"manifest field "name": "Foo Bar" is not a valid AC identifier"#
        );
        assert_eq!(e.field(), Some("name"));
    }

    #[test]
    fn detail_is_appended() {
        let e = SchemaError::invalid_because("quantity", "12x", "unknown suffix \"x\"");
        assert_eq!(
            e.to_string(),
            r#""12x" is not a valid quantity (unknown suffix "x")"#
        );
    }
}
