//! `--pod-manifest=FILE`: an appc PodManifest run as it is written.

use anyhow::{bail, Context as _, Result};
use pod::request::AppRequest;
use schema::PodManifest;

/// The apps, volumes, isolators and annotations of a pod manifest file.
pub struct FromManifest {
    pub apps: Vec<AppRequest>,
    pub volumes: Vec<schema::Volume>,
    pub isolators: Vec<schema::Isolator>,
    pub annotations: Vec<(String, String)>,
}

pub fn load(path: &std::path::Path) -> Result<FromManifest> {
    let data = std::fs::read(path).with_context(|| format!("--pod-manifest {}", path.display()))?;
    let m = PodManifest::from_slice(&data)
        .with_context(|| format!("--pod-manifest {}", path.display()))?;
    if m.apps.is_empty() {
        bail!(
            "--pod-manifest {}: the manifest has no apps",
            path.display()
        );
    }
    let mut apps = Vec::new();
    for ra in &m.apps {
        // An image ID pins the image exactly; else its name, at the version its labels ask.
        let image = match (&ra.image.id, &ra.image.name) {
            (Some(id), _) => id.to_string(),
            (None, Some(name)) => match ra.image.labels.version() {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            },
            (None, None) => bail!(
                "--pod-manifest {}: app {} names no image (name or id)",
                path.display(),
                ra.name.as_str()
            ),
        };
        apps.push(AppRequest {
            image,
            name: Some(ra.name.to_string()),
            readonly_rootfs: ra.read_only_root_fs,
            mounts: ra.mounts.clone(),
            annotations: ra
                .annotations
                .iter()
                .map(|a| (a.name.to_string(), a.value.clone()))
                .collect(),
            app: ra.app.clone(),
            ..Default::default()
        });
    }
    Ok(FromManifest {
        apps,
        volumes: m.volumes.clone(),
        isolators: m.isolators.iter().cloned().collect(),
        annotations: m
            .annotations
            .iter()
            .map(|a| (a.name.to_string(), a.value.clone()))
            .collect(),
    })
}
