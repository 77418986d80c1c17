//! `vessel image ...`

use std::collections::HashSet;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use store::images::{Format as ImageFormat, ImageRecord};
use store::Store;

use crate::cli::{Format, ImageCommand, ImageField, ImageListArgs, OutputDirArgs, SortOrder};
use crate::context::Context;
use crate::output::{self, Table};

pub fn run(ctx: &Context, cmd: ImageCommand) -> Result<i32> {
    if let ImageCommand::Fetch(args) = cmd {
        return crate::commands::fetch::run(ctx, args);
    }
    let store = ctx.store()?;
    match cmd {
        ImageCommand::List(args) => list(&store, &args),
        ImageCommand::Rm { images } => rm(&store, &images),
        ImageCommand::CatManifest {
            image,
            compact,
            pretty_print,
        } => cat_manifest(&store, &image, compact || !pretty_print),
        ImageCommand::Export {
            image,
            file,
            overwrite,
        } => export(&store, &image, &file, overwrite),
        ImageCommand::Extract(args) => to_dir(&store, args, false),
        ImageCommand::Render(args) => to_dir(&store, args, true),
        ImageCommand::Gc { grace_period } => gc(ctx, &store, grace_period),
        ImageCommand::Verify(v) => verify(&store, &v.images, v.format.format),
        ImageCommand::Fetch(_) => unreachable!("handled above"),
    }
}

pub fn resolve(store: &Store, query: &str) -> Result<ImageRecord> {
    Ok(store.resolve(query)?)
}

/// One image as `image list --format=json` prints it: rkt's `ImageListEntry` (`id`,
/// `name`, `import_time` and `last_used_time` in nanoseconds since the epoch, `size`)
/// plus Vessel's fields, all in rkt's snake_case.
#[derive(Serialize)]
struct ImageJson {
    id: String,
    name: String,
    import_time: i64,
    /// 0 for an image no pod has used yet.
    last_used_time: i64,
    size: u64,
    // Vessel's own.
    names: Vec<String>,
    /// rkt's `latest` column.
    latest: bool,
    format: ImageFormat,
    imported: chrono::DateTime<chrono::Utc>,
    last_used: Option<chrono::DateTime<chrono::Utc>>,
    labels: std::collections::BTreeMap<String, String>,
    layers: Vec<String>,
    source: String,
}

fn short_id(id: &str, full: bool) -> String {
    if full {
        return id.to_string();
    }
    let (algo, hex) = id.split_once('-').unwrap_or(("", id));
    format!("{algo}-{}", &hex[..hex.len().min(12)])
}

fn list(store: &Store, args: &ImageListArgs) -> Result<i32> {
    let refs = store.refs()?;
    let images = store.images()?;
    let mut rows: Vec<ImageJson> = images
        .iter()
        .map(|r| {
            let names = store.names_of(r, &refs);
            let last_used = store.last_used(&r.id);
            ImageJson {
                id: r.id.key(),
                name: names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{}:<none>", r.name)),
                latest: is_latest(r, &names),
                names,
                format: r.format,
                size: store.image_size(r),
                import_time: r.imported.timestamp_nanos_opt().unwrap_or(0),
                last_used_time: last_used.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0),
                imported: r.imported,
                last_used,
                labels: r.labels.clone(),
                layers: r.layers.iter().map(|l| l.key()).collect(),
                source: r.source.clone(),
            }
        })
        .collect();
    // A stable sort by the last key first leaves the first key deciding.
    for field in args.sort.iter().rev() {
        rows.sort_by(|a, b| compare(a, b, *field));
    }
    if args.order == SortOrder::Desc {
        rows.reverse();
    }
    let list = &args.list;
    match list.format.format {
        Format::Table => {
            let fields: &[ImageField] = if args.fields.is_empty() {
                &[
                    ImageField::Id,
                    ImageField::Name,
                    ImageField::Size,
                    ImageField::Importtime,
                    ImageField::Lastused,
                ]
            } else {
                &args.fields
            };
            let mut t = Table::new(&fields.iter().map(|f| header(*f)).collect::<Vec<_>>());
            for r in &rows {
                t.row(fields.iter().map(|f| cell(r, *f, list.full)).collect());
            }
            print!("{}", t.render(!list.no_legend));
        }
        f => print!("{}", output::json(&rows, f)),
    }
    Ok(0)
}

/// rkt's `latest`: the image is what its name means without a version (fetched as
/// `NAME` or `NAME:latest`).
fn is_latest(r: &ImageRecord, names: &[String]) -> bool {
    r.labels.get("version").is_some_and(|v| v == "latest")
        || names.iter().any(|n| n.ends_with(":latest"))
}

fn header(f: ImageField) -> &'static str {
    match f {
        ImageField::Id => "ID",
        ImageField::Name => "NAME",
        ImageField::Importtime => "IMPORT TIME",
        ImageField::Lastused => "LAST USED",
        ImageField::Size => "SIZE",
        ImageField::Latest => "LATEST",
    }
}

fn cell(r: &ImageJson, f: ImageField, full: bool) -> String {
    match f {
        ImageField::Id => short_id(&r.id, full),
        ImageField::Name if full => r.names.join(","),
        ImageField::Name => r.name.clone(),
        ImageField::Importtime => output::when(Some(r.imported), full),
        ImageField::Lastused => output::when(r.last_used, full),
        ImageField::Size if full => r.size.to_string(),
        ImageField::Size => output::size(r.size),
        ImageField::Latest => r.latest.to_string(),
    }
}

fn compare(a: &ImageJson, b: &ImageJson, f: ImageField) -> std::cmp::Ordering {
    match f {
        ImageField::Id => a.id.cmp(&b.id),
        ImageField::Name => a.name.cmp(&b.name),
        ImageField::Importtime => a.imported.cmp(&b.imported),
        ImageField::Lastused => a.last_used.cmp(&b.last_used),
        ImageField::Size => a.size.cmp(&b.size),
        ImageField::Latest => a.latest.cmp(&b.latest),
    }
}

fn rm(store: &Store, images: &[String]) -> Result<i32> {
    let mut failed = 0;
    for q in images {
        let res = store.resolve(q).and_then(|r| {
            store.remove_image(&r.id)?;
            Ok(r)
        });
        match res {
            Ok(r) => println!("{}", r.id.key()),
            Err(e) => {
                crate::output::say!("image rm {q}: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn cat_manifest(store: &Store, query: &str, compact: bool) -> Result<i32> {
    let r = resolve(store, query)?;
    let data = store.read_blob(&r.manifest)?;
    let v: serde_json::Value =
        serde_json::from_slice(&data).context("stored manifest is not JSON")?;
    if compact {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print!("{}", output::pretty(&v));
    }
    Ok(0)
}

fn export(store: &Store, query: &str, file: &std::path::Path, overwrite: bool) -> Result<i32> {
    let r = resolve(store, query)?;
    if file.exists() && !overwrite {
        bail!("{} exists; pass --overwrite to replace it", file.display());
    }
    match r.format {
        ImageFormat::Aci => {
            // The stored ACI is the uncompressed archive: exporting it gives back the same ID.
            let src = store.blob_path(&r.id);
            let tmp = file.with_extension("aci.part");
            std::fs::copy(&src, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
        }
        // Flattened into one ACI under the converted manifest, as rkt exported a Docker
        // image it had converted at fetch (docker2aci): a new image ID, the same tree.
        ImageFormat::Oci => {
            let manifest = super::export::aci_manifest(store, &r)?;
            super::export::write_merged_aci(&store.lower_dirs(&r)?, &manifest, file)?;
        }
    }
    Ok(0)
}

fn to_dir(store: &Store, args: OutputDirArgs, render: bool) -> Result<i32> {
    let r = resolve(store, &args.image)?;
    if args.overwrite && args.output.exists() {
        store::fsutil::remove_tree(&args.output)?;
    }
    let rootfs = if args.rootfs_only {
        args.output.clone()
    } else {
        args.output.join("rootfs")
    };
    if !args.rootfs_only {
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;
        if std::fs::read_dir(&args.output)?.next().is_some() {
            bail!(
                "{} is not empty; pass --overwrite to replace its content",
                args.output.display()
            );
        }
    }
    if render {
        store.render_to(&r, &rootfs)?;
    } else {
        store.extract_to(&r, &rootfs)?;
    }
    if !args.rootfs_only {
        let manifest = store.read_blob(&r.manifest)?;
        std::fs::write(args.output.join("manifest"), manifest)?;
    }
    Ok(0)
}

/// rkt's image gc: images not used (nor imported) for `grace` go, unless a pod uses
/// them; then whatever layers and blobs no image uses.
fn gc(ctx: &Context, store: &Store, grace: std::time::Duration) -> Result<i32> {
    let keep: HashSet<store::Digest> = crate::commands::pods::pinned(ctx)?;
    let now = chrono::Utc::now();
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let refs = store.refs()?;
    for r in store.images()? {
        let used = store.last_used(&r.id).unwrap_or(r.imported).max(r.imported);
        let in_use = keep.contains(&r.id) || r.layers.iter().any(|l| keep.contains(l));
        if in_use || now.signed_duration_since(used) < grace {
            continue;
        }
        let names = store.names_of(&r, &refs);
        store
            .remove_image(&r.id)
            .with_context(|| format!("removing image {}", r.id.key()))?;
        println!(
            "removed image {} ({})",
            r.id.key(),
            names.first().cloned().unwrap_or_else(|| r.display_name())
        );
    }
    let report = store.gc(std::time::Duration::ZERO, &keep)?;
    for l in &report.layers {
        println!("removed layer {l}");
    }
    for b in &report.blobs {
        println!("removed blob {b}");
    }
    for r in &report.rendered {
        println!("removed rendered tree {r}");
    }
    Ok(0)
}

/// Re-hashes the store; with images named, reports only what concerns them (their
/// blobs, layers and record), and rkt's line for each sound one.
fn verify(store: &Store, images: &[String], format: Format) -> Result<i32> {
    let named: Vec<ImageRecord> = images
        .iter()
        .map(|q| resolve(store, q))
        .collect::<Result<_>>()?;
    let mut report = store.verify()?;
    let concerns = |r: &ImageRecord, problem: &str| {
        problem.starts_with(&format!("image {}:", r.id.key()))
            || problem.starts_with(&format!("blob {}:", r.id.oci()))
            || std::iter::once(&r.manifest)
                .chain(r.config.iter())
                .any(|b| problem.starts_with(&format!("blob {}:", b.oci())))
            || r.layers
                .iter()
                .any(|l| problem.starts_with(&format!("layer {}:", l.key())))
    };
    if !named.is_empty() {
        report
            .problems
            .retain(|p| named.iter().any(|r| concerns(r, p)));
    }
    match format {
        Format::Table => {
            for p in &report.problems {
                println!("{}", output::line(p));
            }
            for (q, r) in images.iter().zip(&named) {
                if !report.problems.iter().any(|p| concerns(r, p)) {
                    println!(
                        "successfully verified checksum for image: {q:?} ({:?})",
                        r.id.key()
                    );
                }
            }
            if named.is_empty() {
                eprintln!(
                    "verified {} images, {} layers, {} blobs: {}",
                    report.images,
                    report.layers,
                    report.blobs,
                    if report.problems.is_empty() {
                        "all sound".to_string()
                    } else {
                        format!("{} problems", report.problems.len())
                    }
                );
            }
        }
        f => print!("{}", output::json(&report, f)),
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}
