//! The image manifest: what an ACI is and how to run it.

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::annotations::Annotations;
use crate::app::App;
use crate::dependency::Dependency;
use crate::error::SchemaError;
use crate::identifier::AcIdentifier;
use crate::json::{decode_slice, deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::labels::Labels;
use crate::version::AcVersion;

pub const IMAGE_MANIFEST_KIND: &str = "ImageManifest";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub ac_version: AcVersion,
    pub name: AcIdentifier,
    pub labels: Labels,
    pub app: Option<App>,
    pub annotations: Annotations,
    /// Images laid down first, in order.
    pub dependencies: Vec<Dependency>,
    /// When not empty, the only paths kept in the rendered rootfs.
    pub path_whitelist: Vec<String>,
}

/// Checks the `acKind` field against the expected kind.
pub(crate) fn check_kind(o: &Obj<'_>, expected: &'static str) -> Result<(), SchemaError> {
    let kind: String = o.required("acKind")?;
    if kind != expected {
        return Err(locate(
            SchemaError::invalid_because("acKind", kind, format!("expected {expected:?}")),
            &o.path("acKind"),
        ));
    }
    Ok(())
}

impl ImageManifest {
    /// A manifest of the current spec version with just a name.
    pub fn new(name: AcIdentifier) -> Self {
        ImageManifest {
            ac_version: AcVersion::default(),
            name,
            labels: Labels::default(),
            app: None,
            annotations: Annotations::default(),
            dependencies: Vec::new(),
            path_whitelist: Vec::new(),
        }
    }

    /// Parses and validates manifest bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SchemaError> {
        decode_slice(bytes)
    }

    /// Checks the rules a struct built or edited in code could break.
    pub fn validate(&self) -> Result<(), SchemaError> {
        self.check(&Path::root())
    }

    fn check(&self, at: &Path) -> Result<(), SchemaError> {
        if let Some(app) = &self.app {
            app.check(&at.key("app"))?;
        }
        for (i, p) in self.path_whitelist.iter().enumerate() {
            if !p.starts_with('/') || p.contains('\0') {
                return Err(locate(
                    SchemaError::invalid_because(
                        "whitelisted path",
                        p.as_str(),
                        "must be an absolute path",
                    ),
                    &at.key("pathWhitelist").index(i),
                ));
            }
        }
        Ok(())
    }

    /// Validated compact JSON.
    pub fn to_vec(&self) -> Result<Vec<u8>, SchemaError> {
        self.validate()?;
        Ok(serde_json::to_vec(self).expect("manifests always serialise"))
    }

    /// Validated, indented JSON, for `cat-manifest`.
    pub fn to_string_pretty(&self) -> Result<String, SchemaError> {
        self.validate()?;
        Ok(serde_json::to_string_pretty(self).expect("manifests always serialise"))
    }
}

impl Serialize for ImageManifest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ImageManifest", 8)?;
        st.serialize_field("acKind", IMAGE_MANIFEST_KIND)?;
        st.serialize_field("acVersion", &self.ac_version)?;
        st.serialize_field("name", &self.name)?;
        if !self.labels.is_empty() {
            st.serialize_field("labels", &self.labels)?;
        }
        if let Some(app) = &self.app {
            st.serialize_field("app", app)?;
        }
        if !self.dependencies.is_empty() {
            st.serialize_field("dependencies", &self.dependencies)?;
        }
        if !self.path_whitelist.is_empty() {
            st.serialize_field("pathWhitelist", &self.path_whitelist)?;
        }
        if !self.annotations.is_empty() {
            st.serialize_field("annotations", &self.annotations)?;
        }
        st.end()
    }
}

impl FromJson for ImageManifest {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        check_kind(&o, IMAGE_MANIFEST_KIND)?;
        let m = ImageManifest {
            ac_version: o.required("acVersion")?,
            name: o.required("name")?,
            labels: o.or_default("labels")?,
            app: o.optional("app")?,
            annotations: o.or_default("annotations")?,
            dependencies: o.or_default("dependencies")?,
            path_whitelist: o.or_default("pathWhitelist")?,
        };
        m.check(at)?;
        Ok(m)
    }
}

deserialize_via_from_json!(ImageManifest);
