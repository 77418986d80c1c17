//! `vessel image ...`

use std::collections::HashSet;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use store::images::{Format as ImageFormat, ImageRecord};
use store::Store;

use crate::cli::{Format, ImageCommand, ListArgs, OutputDirArgs};
use crate::context::Context;
use crate::output::{self, Table};

pub fn run(ctx: &Context, cmd: ImageCommand) -> Result<i32> {
    let store = ctx.store()?;
    match cmd {
        ImageCommand::List(args) => list(&store, &args),
        ImageCommand::Rm { images } => rm(&store, &images),
        ImageCommand::CatManifest { image, compact } => cat_manifest(&store, &image, compact),
        ImageCommand::Export {
            image,
            file,
            overwrite,
        } => export(&store, &image, &file, overwrite),
        ImageCommand::Extract(args) => to_dir(&store, args, false),
        ImageCommand::Render(args) => to_dir(&store, args, true),
        ImageCommand::Gc { grace_period } => gc(ctx, &store, grace_period),
        ImageCommand::Verify(f) => verify(&store, f.format),
    }
}

pub fn resolve(store: &Store, query: &str) -> Result<ImageRecord> {
    Ok(store.resolve(query)?)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageJson {
    id: String,
    name: String,
    names: Vec<String>,
    format: ImageFormat,
    size: u64,
    import_time: chrono::DateTime<chrono::Utc>,
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

fn list(store: &Store, args: &ListArgs) -> Result<i32> {
    let refs = store.refs()?;
    let images = store.images()?;
    let rows: Vec<ImageJson> = images
        .iter()
        .map(|r| {
            let names = store.names_of(r, &refs);
            ImageJson {
                id: r.id.key(),
                name: names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{}:<none>", r.name)),
                names,
                format: r.format,
                size: store.image_size(r),
                import_time: r.imported,
                last_used: store.last_used(&r.id),
                labels: r.labels.clone(),
                layers: r.layers.iter().map(|l| l.key()).collect(),
                source: r.source.clone(),
            }
        })
        .collect();
    match args.format.format {
        Format::Table => {
            let mut t = Table::new(&["ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"]);
            for r in &rows {
                t.row(vec![
                    short_id(&r.id, args.full),
                    if args.full {
                        r.names.join(",")
                    } else {
                        r.name.clone()
                    },
                    if args.full {
                        r.size.to_string()
                    } else {
                        output::size(r.size)
                    },
                    output::when(Some(r.import_time), args.full),
                    output::when(r.last_used, args.full),
                ]);
            }
            print!("{}", t.render(!args.no_legend));
        }
        f => print!("{}", output::json(&rows, f)),
    }
    Ok(0)
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
                eprintln!("vessel: image rm {q}: {e}");
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
    println!(
        "{}",
        if compact {
            serde_json::to_string(&v)?
        } else {
            serde_json::to_string_pretty(&v)?
        }
    );
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
        ImageFormat::Oci => bail!("exporting OCI images as ACI is not available yet"),
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

fn gc(ctx: &Context, store: &Store, grace: std::time::Duration) -> Result<i32> {
    let keep: HashSet<store::Digest> = crate::commands::pods::pinned(ctx)?;
    let report = store.gc(grace, &keep)?;
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

fn verify(store: &Store, format: Format) -> Result<i32> {
    let report = store.verify()?;
    match format {
        Format::Table => {
            for p in &report.problems {
                println!("{p}");
            }
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
        f => print!("{}", output::json(&report, f)),
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}
