//! OCI image config → appc app, as docker2aci converted Docker images.
//!
//! | OCI config            | appc                                             |
//! |-----------------------|--------------------------------------------------|
//! | Entrypoint + Cmd      | `app.exec`, concatenated; also kept apart in the `appc.io/docker/entrypoint` and `appc.io/docker/cmd` annotations (JSON arrays) so `run IMAGE -- args` can replace Cmd alone |
//! | User                  | `app.user`/`app.group` (see [`user`])            |
//! | Env                   | `app.environment`, in order, PATH included       |
//! | WorkingDir            | `app.workingDirectory`                           |
//! | ExposedPorts          | `app.ports`, `80/tcp` → port `80-tcp`            |
//! | Volumes               | `app.mountPoints`, `/var/lib/data` → `volume-var-lib-data` |
//! | os, architecture, variant | `os`/`arch` labels                           |
//! | created, author       | `created`/`authors` annotations                  |
//!
//! A program that is not an absolute path (`nginx`, `./run`) is kept as
//! written: appc gives it execvp semantics, and [`crate::Exec::lookup`]
//! tells the executor to search the app's `PATH` (or its working
//! directory) for it before exec.

mod ports;
pub mod user;
mod volumes;

use oci_spec::image::{Config, ImageConfiguration};

use crate::annotations::{names as annotation_names, Annotations};
use crate::app::App;
use crate::environment::{is_env_name, Environment};
use crate::error::SchemaError;
use crate::exec::Exec;
use crate::identifier::AcIdentifier;
use crate::image_manifest::ImageManifest;
use crate::labels::{self, Labels};
use crate::os_arch;

pub use ports::exposed_port;
pub use volumes::mount_point_names;

/// The appc view of an OCI image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedImage {
    /// Always present: an OCI image without Entrypoint/Cmd gets an empty exec,
    /// which the user must fill (`--exec`).
    pub app: App,
    /// `os` and `arch`, when appc has names for the platform. The caller
    /// adds `version` (e.g. the tag) if it has one.
    pub labels: Labels,
    /// Facts that have no field of their own; they belong with the app
    /// (image manifest or pod app annotations).
    pub annotations: Annotations,
    /// What was dropped or adjusted, for the user to see.
    pub warnings: Vec<String>,
}

impl ConvertedImage {
    pub fn into_image_manifest(self, name: AcIdentifier) -> ImageManifest {
        ImageManifest {
            labels: self.labels,
            app: Some(self.app),
            annotations: self.annotations,
            ..ImageManifest::new(name)
        }
    }
}

fn field_error(field: &'static str, problem: SchemaError) -> SchemaError {
    SchemaError::OciConfig {
        field,
        problem: Box::new(problem),
    }
}

fn known_annotation(name: &str) -> AcIdentifier {
    name.parse().expect("well-known annotation names are valid")
}

/// Converts an OCI image configuration.
pub fn convert_config(image: &ImageConfiguration) -> Result<ConvertedImage, SchemaError> {
    let empty = Config::default();
    let config = image.config().as_ref().unwrap_or(&empty);
    let mut warnings = Vec::new();
    let mut annotations = Annotations::default();

    let entrypoint = config.entrypoint().clone().unwrap_or_default();
    let cmd = config.cmd().clone().unwrap_or_default();
    let argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    let exec = Exec::new(argv).map_err(|e| {
        let field = if entrypoint.is_empty() {
            "Cmd"
        } else {
            "Entrypoint"
        };
        field_error(field, e)
    })?;
    if exec.is_empty() {
        warnings.push(
            "the image has neither Entrypoint nor Cmd; an exec must be given to run it".into(),
        );
    }
    for (name, part) in [
        (annotation_names::DOCKER_ENTRYPOINT, config.entrypoint()),
        (annotation_names::DOCKER_CMD, config.cmd()),
    ] {
        if let Some(list) = part {
            let json = serde_json::to_string(list).expect("string lists serialise");
            annotations.set(known_annotation(name), json);
        }
    }

    let user = user::parse(config.user().as_deref().unwrap_or_default())
        .map_err(|e| field_error("User", e))?;
    if user.group_from_passwd {
        annotations.set(
            known_annotation(annotation_names::VESSEL_GROUP_FROM_PASSWD),
            "true",
        );
    }

    let mut app = App::new(exec, &user.user, &user.group);
    app.environment = environment(config.env().as_deref().unwrap_or_default(), &mut warnings);
    app.working_directory = working_directory(config.working_dir().as_deref(), &mut warnings)
        .map_err(|e| field_error("WorkingDir", e))?;
    app.ports = ports::ports(config.exposed_ports().as_deref().unwrap_or_default())
        .map_err(|e| field_error("ExposedPorts", e))?;
    app.mount_points = volumes::mount_points(config.volumes().as_deref().unwrap_or_default())
        .map_err(|e| field_error("Volumes", e))?;

    let labels = platform_labels(image, &mut warnings);
    if let Some(created) = image.created() {
        annotations.set(
            known_annotation(annotation_names::CREATED),
            created.as_str(),
        );
    }
    if let Some(author) = image.author() {
        annotations.set(known_annotation(annotation_names::AUTHORS), author.as_str());
    }

    Ok(ConvertedImage {
        app,
        labels,
        annotations,
        warnings,
    })
}

/// `K=V` entries in order; later duplicates win, as in Docker. Entries an
/// appc environment cannot hold are dropped with a warning.
fn environment(entries: &[String], warnings: &mut Vec<String>) -> Environment {
    let mut env = Environment::default();
    for entry in entries {
        let Some((name, value)) = entry.split_once('=') else {
            warnings.push(format!("Env entry {entry:?} has no \"=\"; dropped"));
            continue;
        };
        if !is_env_name(name) {
            warnings.push(format!(
                "Env entry {entry:?} has a name appc does not allow; dropped"
            ));
            continue;
        }
        if let Err(e) = env.set(name, value) {
            warnings.push(format!("Env entry {name:?} dropped: {e}"));
        }
    }
    env
}

fn working_directory(
    dir: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, SchemaError> {
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if dir.contains('\0') {
        return Err(SchemaError::invalid_because(
            "working directory",
            dir,
            "contains a NUL byte",
        ));
    }
    if dir.starts_with('/') {
        return Ok(Some(dir.to_owned()));
    }
    warnings.push(format!("WorkingDir {dir:?} is relative; using /{dir}"));
    Ok(Some(format!("/{dir}")))
}

fn platform_labels(image: &ImageConfiguration, warnings: &mut Vec<String>) -> Labels {
    let (os, arch) = (image.os().to_string(), image.architecture().to_string());
    let variant = image.variant().as_deref();
    match os_arch::from_oci(&os, &arch, variant) {
        Some((os, arch)) => Labels::from_pairs([(labels::OS, os), (labels::ARCH, arch)])
            .expect("from_oci returns valid pairs"),
        None => {
            let platform = match variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            };
            warnings.push(format!(
                "appc has no os/arch for platform {platform}; labels left out"
            ));
            Labels::default()
        }
    }
}

#[cfg(test)]
mod tests;
