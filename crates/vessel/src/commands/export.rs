//! `vessel export UUID OUT.aci`: an exited pod's app as an ACI (rkt's export): the
//! image's layers with what the app changed on top, under the image's manifest with the
//! app as it ran (cat-manifest's `app`, overrides applied).
//!
//! The app's tree is seen as the kernel saw it: its upper directory and the image's
//! layers are overlaid read-only in a mount namespace of this process's own, so
//! whiteouts and opaque directories mean what they meant in the pod, and nothing is
//! mounted where another process could see it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use pod::state::PodState;
use pod::State;

use crate::cli::ExportArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: &ExportArgs) -> Result<i32> {
    let pod = ctx.pods()?.find(&args.uuid)?;
    match pod.state() {
        State::Exited | State::ExitedGarbage => {}
        other => bail!(
            "pod {} is {}: only an exited pod can be exported (stop it first)",
            pod.uuid,
            format!("{other:?}").to_lowercase()
        ),
    }
    if args.output.exists() && !args.overwrite {
        bail!(
            "{} exists; pass --overwrite to replace it",
            args.output.display()
        );
    }
    let state = PodState::load(&pod.path())?;
    let names = || {
        state
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let app = match &args.app {
        Some(name) => state
            .apps
            .iter()
            .find(|a| &a.name == name)
            .with_context(|| format!("pod {} has no app {name:?} (apps: {})", pod.uuid, names()))?,
        None if state.apps.len() == 1 => &state.apps[0],
        None => bail!(
            "pod {} has several apps ({}): choose one with --app",
            pod.uuid,
            names()
        ),
    };
    let store = ctx.store()?;
    let image = store
        .resolve(&app.image_id)
        .with_context(|| format!("the image of app {} ({})", app.name, app.image_name))?;
    let mut manifest = aci_manifest(&store, &image)?;
    // The app as it ran, as the pod's manifest records it.
    let pod_manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pod.paths().manifest())
            .with_context(|| format!("pod {} has no manifest", pod.uuid))?,
    )?;
    if let Some(ran) = pod_manifest["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == app.name.as_str()))
        .and_then(|a| a.get("app"))
        .filter(|a| !a.is_null())
    {
        manifest["app"] = ran.clone();
    }
    let mut lower = vec![pod.paths().app_upper(&app.name)];
    lower.retain(|p| p.is_dir());
    lower.extend(store.lower_dirs(&image)?);
    write_merged_aci(&lower, &manifest, &args.output)?;
    Ok(0)
}

/// The image's manifest as an ACI carries it: an ACI's own, or an OCI image's config
/// converted (as pods see it, and as rkt's docker2aci gave a Docker image).
pub fn aci_manifest(
    store: &store::Store,
    image: &store::images::ImageRecord,
) -> Result<serde_json::Value> {
    let manifest = store
        .image_manifest(image)
        .with_context(|| format!("the manifest of image {}", image.name))?;
    Ok(serde_json::to_value(&manifest)?)
}

/// Writes `out` (through `out.part`, renamed when whole): `manifest` and the tree of
/// `lower` overlaid (topmost first), as one flat ACI.
pub fn write_merged_aci(lower: &[PathBuf], manifest: &serde_json::Value, out: &Path) -> Result<()> {
    let part = part_path(out);
    let written = with_merged_tree(lower, |root| write_aci(&part, manifest, root));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, out).with_context(|| format!("writing {}", out.display()))
}

fn part_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Runs `f` with the directories overlaid read-only (topmost first), in a mount
/// namespace of its own on a thread of its own (the namespace goes with the thread).
fn with_merged_tree(lower: &[PathBuf], f: impl FnOnce(&Path) -> Result<()> + Send) -> Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("vessel-export-")
        .tempdir()
        .context("making a scratch directory")?;
    let target = scratch.path().to_path_buf();
    std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            use nix::mount::{mount, MsFlags};
            use nix::sched::{unshare, CloneFlags};
            // A thread's own filesystem context, then its own mount namespace.
            unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS)
                .context("unsharing a mount namespace")?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .context("making mounts private")?;
            let dirs: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
            if dirs.iter().any(|d| d.contains([',', ':'])) {
                bail!("a layer path holds ',' or ':', which overlay options cannot carry");
            }
            let opts = if dirs.len() == 1 {
                // overlayfs needs two lower layers without an upper: bind the one.
                None
            } else {
                Some(format!("lowerdir={}", dirs.join(":")))
            };
            match &opts {
                Some(o) => mount(
                    Some("overlay"),
                    &target,
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(o.as_str()),
                ),
                None => mount(
                    Some(lower[0].as_path()),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                ),
            }
            .with_context(|| format!("overlaying {}", dirs.join(", ")))?;
            f(&target)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the export thread panicked"))?
    })
}

/// An ACI: `manifest`, then the tree under `rootfs/`, owners, modes and times kept,
/// symlinks as symlinks.
fn write_aci(path: &Path, manifest: &serde_json::Value, root: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.follow_symlinks(false);
    let data = serde_json::to_vec_pretty(manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "manifest", &data[..])?;
    tar.append_dir_all("rootfs", root)
        .with_context(|| format!("archiving {}", root.display()))?;
    let mut out = tar.into_inner()?;
    out.flush()?;
    out.into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
