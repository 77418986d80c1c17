//! The pod manifest: the apps of a pod, their images, volumes and ports.

use std::collections::BTreeMap;

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::annotations::Annotations;
use crate::app::App;
use crate::error::SchemaError;
use crate::hash::Hash;
use crate::identifier::AcIdentifier;
use crate::image_manifest::check_kind;
use crate::isolator::Isolators;
use crate::json::{decode_slice, deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::labels::Labels;
use crate::mount_point::check_app_path;
use crate::name::AcName;
use crate::port::ExposedPort;
use crate::version::AcVersion;
use crate::volume::Volume;

pub const POD_MANIFEST_KIND: &str = "PodManifest";

/// Which image an app runs. A template may leave the ID out; a pod
/// that runs must have it (see [`PodManifest::validate_reified`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuntimeImage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<AcIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Hash>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// Maps an app path to a pod volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub volume: AcName,
    /// Path inside the app's root.
    pub path: String,
    /// A volume for this mount alone, instead of looking `volume` up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_volume: Option<Volume>,
}

impl Mount {
    /// Parses rkt's `--mount` syntax: `volume=NAME,target=PATH`.
    pub fn from_flag(s: &str) -> Result<Self, SchemaError> {
        let bad = |why: &str| SchemaError::invalid_because("mount", s, why);
        let (mut volume, mut target) = (None, None);
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("volume", v)) => volume = Some(v.parse::<AcName>()?),
                Some(("target", t)) => target = Some(t.to_owned()),
                _ => return Err(bad("expected volume=NAME,target=PATH")),
            }
        }
        let path = target.ok_or_else(|| bad("missing target=PATH"))?;
        check_app_path("mount target", &path)?;
        Ok(Mount {
            volume: volume.ok_or_else(|| bad("missing volume=NAME"))?,
            path,
            app_volume: None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeApp {
    pub name: AcName,
    pub image: RuntimeImage,
    /// Replaces the image manifest's `app` when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    #[serde(rename = "readOnlyRootFS", skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_fs: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Merged over the image's annotations; these win.
    #[serde(skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
}

impl RuntimeApp {
    pub fn new(name: AcName, image: RuntimeImage) -> Self {
        RuntimeApp {
            name,
            image,
            app: None,
            read_only_root_fs: false,
            mounts: Vec::new(),
            annotations: Annotations::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodManifest {
    pub ac_version: AcVersion,
    pub apps: Vec<RuntimeApp>,
    pub volumes: Vec<Volume>,
    /// Pod-wide isolators; they bound those of each app.
    pub isolators: Isolators,
    pub annotations: Annotations,
    pub ports: Vec<ExposedPort>,
    pub user_annotations: BTreeMap<String, String>,
    pub user_labels: BTreeMap<String, String>,
}

fn first_duplicate<'a, T, K: PartialEq + ?Sized + 'a>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a K,
) -> Option<usize> {
    (0..items.len()).find(|&i| items[..i].iter().any(|o| key(o) == key(&items[i])))
}

impl PodManifest {
    /// An empty pod of the current spec version.
    pub fn new() -> Self {
        PodManifest::default()
    }

    /// Parses and validates manifest bytes; templates without image IDs pass.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SchemaError> {
        decode_slice(bytes)
    }

    pub fn app(&self, name: &str) -> Option<&RuntimeApp> {
        self.apps.iter().find(|a| a.name == name)
    }

    pub fn volume(&self, name: &str) -> Option<&Volume> {
        self.volumes.iter().find(|v| v.name == name)
    }

    /// The volume that serves a mount: its own, or the pod's of that name.
    pub fn volume_for<'a>(&'a self, mount: &'a Mount) -> Option<&'a Volume> {
        mount
            .app_volume
            .as_ref()
            .or_else(|| self.volume(mount.volume.as_str()))
    }

    /// Checks the rules a struct built or edited in code could break.
    pub fn validate(&self) -> Result<(), SchemaError> {
        self.check(&Path::root())
    }

    /// [`validate`](Self::validate), plus what a pod needs to run: every
    /// app names its image by ID and every mount finds its volume.
    pub fn validate_reified(&self) -> Result<(), SchemaError> {
        self.validate()?;
        let at = Path::root().key("apps");
        for (i, app) in self.apps.iter().enumerate() {
            if app.image.id.is_none() {
                return Err(locate(
                    SchemaError::Rule(format!("app {:?} has no image ID", app.name.as_str())),
                    &at.index(i).key("image").key("id"),
                ));
            }
            for (j, mount) in app.mounts.iter().enumerate() {
                if self.volume_for(mount).is_none() {
                    return Err(locate(
                        SchemaError::Rule(format!("no volume named {:?}", mount.volume.as_str())),
                        &at.index(i).key("mounts").index(j).key("volume"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check(&self, at: &Path) -> Result<(), SchemaError> {
        if let Some(i) = first_duplicate(&self.apps, |a| &a.name) {
            let name = self.apps[i].name.as_str();
            return Err(locate(
                SchemaError::duplicate("app", name),
                &at.key("apps").index(i).key("name"),
            ));
        }
        for (i, app) in self.apps.iter().enumerate() {
            let here = at.key("apps").index(i);
            if let Some(a) = &app.app {
                a.check(&here.key("app"))?;
            }
            for (j, m) in app.mounts.iter().enumerate() {
                let mount_at = here.key("mounts").index(j);
                check_app_path("mount path", &m.path)
                    .map_err(|e| locate(e, &mount_at.key("path")))?;
                if let Some(v) = &m.app_volume {
                    v.validate()
                        .map_err(|e| locate(e, &mount_at.key("appVolume")))?;
                }
            }
        }
        if let Some(i) = first_duplicate(&self.volumes, |v| &v.name) {
            let name = self.volumes[i].name.as_str();
            return Err(locate(
                SchemaError::duplicate("volume", name),
                &at.key("volumes").index(i).key("name"),
            ));
        }
        for (i, v) in self.volumes.iter().enumerate() {
            v.validate()
                .map_err(|e| locate(e, &at.key("volumes").index(i)))?;
        }
        if let Some(i) = first_duplicate(&self.ports, |p| &p.name) {
            let name = self.ports[i].name.as_str();
            return Err(locate(
                SchemaError::duplicate("port", name),
                &at.key("ports").index(i).key("name"),
            ));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if let Some(pp) = &p.pod_port {
                pp.validate()
                    .map_err(|e| locate(e, &at.key("ports").index(i).key("podPort")))?;
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

impl Serialize for PodManifest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PodManifest", 9)?;
        st.serialize_field("acVersion", &self.ac_version)?;
        st.serialize_field("acKind", POD_MANIFEST_KIND)?;
        // Required by the spec, so written even when empty.
        st.serialize_field("apps", &self.apps)?;
        if !self.volumes.is_empty() {
            st.serialize_field("volumes", &self.volumes)?;
        }
        if !self.isolators.is_empty() {
            st.serialize_field("isolators", &self.isolators)?;
        }
        if !self.annotations.is_empty() {
            st.serialize_field("annotations", &self.annotations)?;
        }
        if !self.ports.is_empty() {
            st.serialize_field("ports", &self.ports)?;
        }
        if !self.user_annotations.is_empty() {
            st.serialize_field("userAnnotations", &self.user_annotations)?;
        }
        if !self.user_labels.is_empty() {
            st.serialize_field("userLabels", &self.user_labels)?;
        }
        st.end()
    }
}

impl FromJson for RuntimeImage {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(RuntimeImage {
            name: o.optional("name")?,
            id: o.optional("id")?,
            labels: o.or_default("labels")?,
        })
    }
}

impl FromJson for Mount {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(Mount {
            volume: o.required("volume")?,
            path: o.required("path")?,
            app_volume: o.optional("appVolume")?,
        })
    }
}

impl FromJson for RuntimeApp {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        Ok(RuntimeApp {
            name: o.required("name")?,
            image: o.required("image")?,
            app: o.optional("app")?,
            read_only_root_fs: o.or_default("readOnlyRootFS")?,
            mounts: o.or_default("mounts")?,
            annotations: o.or_default("annotations")?,
        })
    }
}

impl FromJson for PodManifest {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        check_kind(&o, POD_MANIFEST_KIND)?;
        let m = PodManifest {
            ac_version: o.required("acVersion")?,
            apps: o.or_default("apps")?,
            volumes: o.or_default("volumes")?,
            isolators: o.or_default("isolators")?,
            annotations: o.or_default("annotations")?,
            ports: o.or_default("ports")?,
            user_annotations: o.or_default("userAnnotations")?,
            user_labels: o.or_default("userLabels")?,
        };
        m.check(at)?;
        Ok(m)
    }
}

deserialize_via_from_json!(RuntimeImage, Mount, RuntimeApp, PodManifest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flags() {
        let m = Mount::from_flag("volume=data,target=/var/lib/data").unwrap();
        assert_eq!(
            (m.volume.as_str(), m.path.as_str()),
            ("data", "/var/lib/data")
        );
        for bad in [
            "",
            "volume=data",
            "target=/x",
            "volume=Data,target=/x",
            "volume=d,target=",
            "volume=d,target=/x,extra=1",
        ] {
            assert!(Mount::from_flag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn volume_for_prefers_the_app_volume() {
        let mut p = PodManifest::new();
        p.volumes.push(Volume::empty("data".parse().unwrap()));
        let mut m = Mount::from_flag("volume=data,target=/d").unwrap();
        assert_eq!(p.volume_for(&m).unwrap().kind, crate::VolumeKind::Empty);
        m.app_volume = Some(Volume::host("data".parse().unwrap(), "/srv").unwrap());
        assert_eq!(p.volume_for(&m).unwrap().kind, crate::VolumeKind::Host);
        m.volume = "other".parse().unwrap();
        m.app_volume = None;
        assert!(p.volume_for(&m).is_none());
    }
}
