//! One configuration file: its kind and version, then the fields of that kind, each
//! checked with an error naming the field.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{Config, ConfigError, Result, Sourced};

/// rkt's `auth` types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Basic(BasicCredentials),
    /// A bearer token, sent as it is.
    OAuth {
        token: String,
    },
    /// AWS v4 request signing (read and shown; Vessel does not sign requests yet).
    Aws {
        access_key_id: String,
        secret_access_key: String,
        region: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub user: String,
    pub password: String,
}

impl Auth {
    /// The `type` and `credentials` of an `auth` file.
    pub fn to_json(&self) -> (&'static str, Value) {
        use serde_json::json;
        match self {
            Auth::Basic(b) => ("basic", json!({"user": b.user, "password": b.password})),
            Auth::OAuth { token } => ("oauth", json!({ "token": token })),
            Auth::Aws {
                access_key_id,
                secret_access_key,
                region,
            } => (
                "aws",
                json!({
                    "accessKeyID": access_key_id,
                    "secretAccessKey": secret_access_key,
                    "awsRegion": region,
                }),
            ),
        }
    }
}

/// A file's fields, with errors that name the file and the field.
struct Fields<'a> {
    path: &'a Path,
    obj: &'a Map<String, Value>,
    /// The field path so far (`credentials.` inside the credentials object).
    prefix: String,
}

impl<'a> Fields<'a> {
    fn err(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            path: self.path.to_path_buf(),
            field: format!("{}{field}", self.prefix),
            reason: reason.into(),
        }
    }

    /// A string field; None if absent.
    fn opt_str(&self, field: &str) -> Result<Option<&'a str>> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(field, format!("must be a string, not {other}"))),
        }
    }

    /// A string field that must be there and not be empty.
    fn str(&self, field: &str) -> Result<&'a str> {
        match self.opt_str(field)? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(self.err(field, "must not be empty")),
            None => Err(self.err(field, "is missing")),
        }
    }

    /// A non-empty array of non-empty strings.
    fn strings(&self, field: &str) -> Result<Vec<String>> {
        let Some(v) = self.obj.get(field) else {
            return Err(self.err(field, "is missing"));
        };
        let Value::Array(items) = v else {
            return Err(self.err(field, format!("must be an array of strings, not {v}")));
        };
        if items.is_empty() {
            return Err(self.err(field, "must not be empty"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::String(_) => Err(self.err(&format!("{field}[{i}]"), "must not be empty")),
                other => Err(self.err(
                    &format!("{field}[{i}]"),
                    format!("must be a string, not {other}"),
                )),
            })
            .collect()
    }

    /// The `credentials` object.
    fn object(&self, field: &str) -> Result<Fields<'a>> {
        match self.obj.get(field) {
            Some(Value::Object(o)) => Ok(Fields {
                path: self.path,
                obj: o,
                prefix: format!("{}{field}.", self.prefix),
            }),
            None => Err(self.err(field, "is missing")),
            Some(other) => Err(self.err(field, format!("must be an object, not {other}"))),
        }
    }
}

/// Reads one file into `cfg` (the configuration of its directory so far).
pub fn parse_file(cfg: &mut Config, path: &Path, kinds: &[&str]) -> Result<()> {
    let bad = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let value: Value =
        serde_json::from_slice(&data).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = &value else {
        return Err(bad("must hold a JSON object".into()));
    };
    let f = Fields {
        path,
        obj,
        prefix: String::new(),
    };
    let kind = f.str("rktKind")?;
    let version = f.str("rktVersion")?;
    if !kinds.contains(&kind) {
        return Err(f.err(
            "rktKind",
            format!(
                "{kind:?} does not belong in {} (expected {})",
                path.parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kinds.join(" or ")
            ),
        ));
    }
    if version != "v1" {
        return Err(f.err(
            "rktVersion",
            format!("{version:?} is not a version of kind {kind} this vessel knows (v1)"),
        ));
    }
    let file = path.to_path_buf();
    match kind {
        "auth" => auth(cfg, &f, file),
        "dockerAuth" => docker_auth(cfg, &f, file),
        "paths" => paths(cfg, &f, file),
        "stage1" => stage1(cfg, &f, file),
        "logs" => logs(cfg, &f, file),
        _ => unreachable!("kinds are checked above"),
    }
}

fn duplicate(path: PathBuf, what: String, other: &Path) -> ConfigError {
    ConfigError::Duplicate {
        path,
        what,
        other: other.to_path_buf(),
    }
}

fn basic(c: &Fields<'_>) -> Result<BasicCredentials> {
    Ok(BasicCredentials {
        user: c.str("user")?.to_string(),
        password: c.str("password")?.to_string(),
    })
}

fn auth(cfg: &mut Config, f: &Fields<'_>, file: PathBuf) -> Result<()> {
    let domains = f.strings("domains")?;
    let kind = f.str("type")?;
    let c = f.object("credentials")?;
    let value = match kind {
        "basic" => Auth::Basic(basic(&c)?),
        "oauth" => Auth::OAuth {
            token: c.str("token")?.to_string(),
        },
        "aws" => Auth::Aws {
            access_key_id: c.str("accessKeyID")?.to_string(),
            secret_access_key: c.str("secretAccessKey")?.to_string(),
            region: c.opt_str("awsRegion")?.unwrap_or_default().to_string(),
        },
        other => {
            return Err(f.err(
                "type",
                format!("unknown type {other:?} (basic, oauth or aws)"),
            ))
        }
    };
    for d in domains {
        if let Some(prev) = cfg.auth.get(&d) {
            return Err(duplicate(
                file,
                format!("auth for domain {d:?}"),
                &prev.file,
            ));
        }
        cfg.auth.insert(
            d,
            Sourced {
                value: value.clone(),
                file: file.clone(),
            },
        );
    }
    Ok(())
}

fn docker_auth(cfg: &mut Config, f: &Fields<'_>, file: PathBuf) -> Result<()> {
    let registries = f.strings("registries")?;
    let creds = basic(&f.object("credentials")?)?;
    for r in registries {
        if let Some(prev) = cfg.docker_auth.get(&r) {
            return Err(duplicate(
                file,
                format!("dockerAuth for registry {r:?}"),
                &prev.file,
            ));
        }
        cfg.docker_auth.insert(
            r,
            Sourced {
                value: creds.clone(),
                file: file.clone(),
            },
        );
    }
    Ok(())
}

fn absolute(f: &Fields<'_>, field: &str) -> Result<Option<PathBuf>> {
    match f.opt_str(field)? {
        None | Some("") => Ok(None),
        Some(p) if Path::new(p).is_absolute() => Ok(Some(PathBuf::from(p))),
        Some(p) => Err(f.err(field, format!("{p:?} must be an absolute path"))),
    }
}

fn paths(cfg: &mut Config, f: &Fields<'_>, file: PathBuf) -> Result<()> {
    if let Some(data) = absolute(f, "data")? {
        if let Some(prev) = &cfg.data {
            return Err(duplicate(file, "paths data".into(), &prev.file));
        }
        cfg.data = Some(Sourced {
            value: data,
            file: file.clone(),
        });
    }
    if let Some(dir) = absolute(f, "stage1-images")? {
        if let Some(prev) = &cfg.stage1_images {
            return Err(duplicate(file, "paths stage1-images".into(), &prev.file));
        }
        cfg.stage1_images = Some(Sourced { value: dir, file });
    }
    Ok(())
}

/// Where a stage1 image may come from: an absolute path, or a file, http, https or
/// docker URL.
fn check_location(f: &Fields<'_>, loc: &str) -> Result<()> {
    if loc.starts_with('/') {
        return Ok(());
    }
    match loc.split_once("://") {
        Some(("file" | "http" | "https" | "docker", rest)) if !rest.is_empty() => Ok(()),
        Some((scheme, _)) => Err(f.err(
            "location",
            format!("scheme {scheme:?} is not one of file, http, https, docker"),
        )),
        None => Err(f.err(
            "location",
            format!("{loc:?} is neither an absolute path nor a URL"),
        )),
    }
}

fn stage1(cfg: &mut Config, f: &Fields<'_>, file: PathBuf) -> Result<()> {
    let name = f.opt_str("name")?.filter(|s| !s.is_empty());
    let version = f.opt_str("version")?.filter(|s| !s.is_empty());
    match (name, version) {
        (Some(n), Some(v)) => {
            if let Some(prev) = &cfg.stage1_name_version {
                return Err(duplicate(
                    file,
                    "stage1 name and version".into(),
                    &prev.file,
                ));
            }
            cfg.stage1_name_version = Some(Sourced {
                value: (n.to_string(), v.to_string()),
                file: file.clone(),
            });
        }
        (Some(_), None) => return Err(f.err("version", "is missing, though name is set")),
        (None, Some(_)) => return Err(f.err("name", "is missing, though version is set")),
        (None, None) => {}
    }
    if let Some(loc) = f.opt_str("location")?.filter(|s| !s.is_empty()) {
        check_location(f, loc)?;
        if let Some(prev) = &cfg.stage1_location {
            return Err(duplicate(file, "stage1 location".into(), &prev.file));
        }
        cfg.stage1_location = Some(Sourced {
            value: loc.to_string(),
            file,
        });
    }
    Ok(())
}

/// `maxSize`: bytes, as a number or a string with a unit (100MiB, 50M).
fn logs(cfg: &mut Config, f: &Fields<'_>, file: PathBuf) -> Result<()> {
    let size = match f.obj.get("maxSize") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| f.err("maxSize", format!("{n} is not a whole number of bytes")))?,
        Some(Value::String(s)) => crate::parse_size(s).map_err(|e| f.err("maxSize", e))?,
        Some(other) => {
            return Err(f.err(
                "maxSize",
                format!("must be a size such as \"100MiB\", not {other}"),
            ))
        }
    };
    if let Some(prev) = &cfg.log_max_size {
        return Err(duplicate(file, "logs maxSize".into(), &prev.file));
    }
    cfg.log_max_size = Some(Sourced { value: size, file });
    Ok(())
}
