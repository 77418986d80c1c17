//! Pod volumes: host bind mounts and per-pod empty directories.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::error::SchemaError;
use crate::json::{deserialize_via_from_json, locate, FromJson, Obj, Path};
use crate::name::AcName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// Bind mount of `source` from the host.
    Host,
    /// A directory created for the pod and removed with it.
    Empty,
}

impl VolumeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeKind::Host => "host",
            VolumeKind::Empty => "empty",
        }
    }
}

impl fmt::Display for VolumeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for VolumeKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for VolumeKind {
    type Err = SchemaError;
    fn from_str(s: &str) -> Result<Self, SchemaError> {
        match s {
            "host" => Ok(VolumeKind::Host),
            "empty" => Ok(VolumeKind::Empty),
            _ => Err(SchemaError::invalid_because(
                "volume kind",
                s,
                "must be host or empty",
            )),
        }
    }
}

/// Optional fields stay optional so that a manifest round-trips as written;
/// the accessor methods apply the spec's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: AcName,
    pub kind: VolumeKind,
    /// Host only: absolute path on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Host only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
    /// Empty only: permission bits of the directory.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_mode"
    )]
    pub mode: Option<u32>,
    /// Empty only: owner of the directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

const DEFAULT_EMPTY_MODE: u32 = 0o755;

fn serialize_mode<S: serde::Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match mode {
        Some(m) => s.serialize_str(&format!("{m:04o}")),
        None => s.serialize_none(),
    }
}

fn parse_mode(s: &str) -> Result<u32, SchemaError> {
    let ok = !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !ok {
        return Err(SchemaError::invalid_because(
            "volume mode",
            s,
            "expected octal such as 0755",
        ));
    }
    u32::from_str_radix(s, 8).map_err(|_| SchemaError::invalid("volume mode", s))
}

fn parse_bool(key: &str, s: &str) -> Result<bool, SchemaError> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(SchemaError::invalid_because(
            "boolean",
            s,
            format!("for {key}, expected true or false"),
        )),
    }
}

impl Volume {
    pub fn host(name: AcName, source: &str) -> Result<Self, SchemaError> {
        let v = Volume {
            kind: VolumeKind::Host,
            source: Some(source.to_owned()),
            ..Volume::empty(name)
        };
        v.validate()?;
        Ok(v)
    }

    pub fn empty(name: AcName) -> Self {
        Volume {
            name,
            kind: VolumeKind::Empty,
            source: None,
            read_only: None,
            recursive: None,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }

    /// The spec asks executors to default to recursive bind mounts.
    pub fn is_recursive(&self) -> bool {
        self.recursive.unwrap_or(true)
    }

    pub fn mode_or_default(&self) -> u32 {
        self.mode.unwrap_or(DEFAULT_EMPTY_MODE)
    }

    pub fn uid_or_default(&self) -> u32 {
        self.uid.unwrap_or(0)
    }

    pub fn gid_or_default(&self) -> u32 {
        self.gid.unwrap_or(0)
    }

    /// Kind-specific rules, as appc's own validator applies them.
    pub fn validate(&self) -> Result<(), SchemaError> {
        match self.kind {
            VolumeKind::Host => {
                let source = self.source.as_deref().ok_or_else(|| {
                    SchemaError::Rule(format!(
                        "host volume {:?} needs a source",
                        self.name.as_str()
                    ))
                })?;
                if !source.starts_with('/') || source.contains('\0') {
                    return Err(SchemaError::invalid_because(
                        "volume source",
                        source,
                        "must be an absolute path",
                    ));
                }
                if self.mode.is_some() || self.uid.is_some() || self.gid.is_some() {
                    return Err(SchemaError::Rule(format!(
                        "host volume {:?} cannot have mode, uid or gid",
                        self.name.as_str()
                    )));
                }
            }
            VolumeKind::Empty => {
                if self.source.is_some() {
                    return Err(SchemaError::Rule(format!(
                        "empty volume {:?} cannot have a source",
                        self.name.as_str()
                    )));
                }
                if self.mode.is_some_and(|m| m > 0o7777) {
                    return Err(SchemaError::invalid(
                        "volume mode",
                        format!("{:o}", self.mode_or_default()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses rkt's `--volume` syntax:
    /// `NAME,kind=host,source=/path[,readOnly=true][,recursive=false]` or
    /// `NAME,kind=empty[,mode=0755][,uid=N][,gid=N][,readOnly=true]`.
    pub fn from_flag(s: &str) -> Result<Self, SchemaError> {
        let mut parts = s.split(',');
        let name: AcName = parts.next().unwrap_or_default().parse()?;
        let mut v = Volume::empty(name);
        let mut kind = None;
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                SchemaError::invalid_because("volume option", part, "expected key=value")
            })?;
            let number = |value: &str| {
                value
                    .parse::<u32>()
                    .map_err(|_| SchemaError::invalid_because("id", value, format!("for {key}")))
            };
            match key.to_ascii_lowercase().as_str() {
                "kind" => kind = Some(value.parse::<VolumeKind>()?),
                "source" => v.source = Some(value.to_owned()),
                "readonly" => v.read_only = Some(parse_bool(key, value)?),
                "recursive" => v.recursive = Some(parse_bool(key, value)?),
                "mode" => v.mode = Some(parse_mode(value)?),
                "uid" => v.uid = Some(number(value)?),
                "gid" => v.gid = Some(number(value)?),
                _ => {
                    return Err(SchemaError::invalid_because(
                        "volume option",
                        key,
                        "unknown option",
                    ))
                }
            }
        }
        v.kind = kind.ok_or_else(|| {
            SchemaError::Rule(format!("volume {s:?} needs kind=host or kind=empty"))
        })?;
        v.validate()?;
        Ok(v)
    }
}

impl FromJson for Volume {
    fn from_json(value: &Value, at: &Path) -> Result<Self, SchemaError> {
        let o = Obj::new(value, at)?;
        let kind: String = o.required("kind")?;
        let mode = match o.optional::<String>("mode")? {
            Some(m) => Some(parse_mode(&m).map_err(|e| locate(e, &o.path("mode")))?),
            None => None,
        };
        let v = Volume {
            name: o.required("name")?,
            kind: kind.parse().map_err(|e| locate(e, &o.path("kind")))?,
            source: o.optional("source")?,
            read_only: o.optional("readOnly")?,
            recursive: o.optional("recursive")?,
            mode,
            uid: o.optional("uid")?,
            gid: o.optional("gid")?,
        };
        v.validate().map_err(|e| locate(e, at))?;
        Ok(v)
    }
}

deserialize_via_from_json!(Volume);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vol(v: Value) -> Result<Volume, SchemaError> {
        Volume::from_json(&v, &Path::root().key("volumes").index(0))
    }

    #[test]
    fn host_and_empty_round_trip() {
        let h = json!({"name": "dbvolume", "kind": "host", "source": "/opt/tenant1/database", "readOnly": true});
        let v = vol(h.clone()).unwrap();
        assert!(v.is_read_only() && v.is_recursive());
        assert_eq!(serde_json::to_value(&v).unwrap(), h);
        let e = json!({"name": "buildoutput", "kind": "empty", "mode": "0777", "uid": 0, "gid": 0});
        let v = vol(e.clone()).unwrap();
        assert_eq!(v.mode_or_default(), 0o777);
        assert_eq!(serde_json::to_value(&v).unwrap(), e);
        let v = vol(json!({"name": "e", "kind": "empty"})).unwrap();
        assert_eq!(
            (v.mode_or_default(), v.uid_or_default(), v.is_read_only()),
            (0o755, 0, false)
        );
    }

    #[test]
    fn rejects_what_appc_rejects() {
        let cases = [
            (json!({"name": "v", "kind": "host"}), "needs a source"),
            (
                json!({"name": "v", "kind": "host", "source": "rel"}),
                "must be an absolute path",
            ),
            (
                json!({"name": "v", "kind": "empty", "source": "/x"}),
                "cannot have a source",
            ),
            (
                json!({"name": "v", "kind": "host", "source": "/x", "mode": "0755"}),
                "cannot have mode",
            ),
            (
                json!({"name": "v", "kind": "empty", "mode": "abc"}),
                "expected octal",
            ),
            (
                json!({"name": "v", "kind": "empty", "mode": "07777"}),
                "expected octal",
            ),
            (
                json!({"name": "v", "kind": "tmpfs"}),
                "must be host or empty",
            ),
            (json!({"name": "v"}), "required but missing"),
            (
                json!({"name": "v", "kind": "empty", "uid": -1}),
                "out of range",
            ),
        ];
        for (v, problem) in cases {
            let e = vol(v.clone()).unwrap_err();
            assert!(e.field().unwrap().starts_with("volumes[0]"), "{v}: {e}");
            assert!(e.to_string().contains(problem), "{v}: {e}");
        }
    }

    #[test]
    fn parses_flags() {
        let v = Volume::from_flag("data,kind=host,source=/srv/data,readOnly=true,recursive=false")
            .unwrap();
        assert_eq!(v.kind, VolumeKind::Host);
        assert_eq!(v.source.as_deref(), Some("/srv/data"));
        assert!(v.is_read_only() && !v.is_recursive());
        let v = Volume::from_flag("scratch,kind=empty,mode=0700,uid=1000,gid=100").unwrap();
        assert_eq!((v.mode, v.uid, v.gid), (Some(0o700), Some(1000), Some(100)));
        for bad in [
            "",
            "Data,kind=empty",
            "data",
            "data,kind=host",
            "data,kind=empty,bogus=1",
            "data,kind=empty,mode=9",
            "data,kind=host,source=/x,readOnly=maybe",
            "data,kind",
        ] {
            assert!(Volume::from_flag(bad).is_err(), "{bad:?}");
        }
    }
}
