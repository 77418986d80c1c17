use std::path::PathBuf;

use anyhow::Result;

use crate::runargs::Usage;

use crate::cli::{FetchArgs, PullPolicy};
use crate::context::Context;

/// `vessel fetch IMAGE...`: prints each image's ID on stdout, one per line, and on stderr
/// what was neutralised in layers imported now (device nodes skipped, say).
pub fn run(ctx: &Context, args: FetchArgs) -> Result<i32> {
    let images = images_and_signatures(&args.images)?;
    let store = ctx.store()?;
    let policy = deprecated_store_flags(args.pull_policy, args.store_only, args.no_store);
    let base = ctx.fetch_options(policy, args.quiet);
    let started = chrono::Utc::now();
    for (image, signature) in &images {
        ctx.debug(|| format!("fetching {image}"));
        let mut opts = base.clone();
        opts.signature = signature.clone();
        let record = fetch::fetch(&store, image, &opts)?;
        for key in &record.layers {
            let Ok(meta) = store.layer_meta(key) else {
                continue;
            };
            if meta.imported >= started && !args.quiet {
                for w in &meta.warnings {
                    crate::output::say!("warning: image {image}: {w}");
                }
            }
        }
        let id = record.id.key();
        println!(
            "{}",
            if args.full {
                id.as_str()
            } else {
                short_id(&id)
            }
        );
    }
    Ok(0)
}

/// appc's short form of an image ID (rkt's `ShortHash`): the algorithm and 32 hex digits,
/// enough to name the image in every command.
pub fn short_id(id: &str) -> &str {
    const SHORT: usize = "sha512-".len() + 32;
    &id[..id.len().min(SHORT)]
}

/// `IMAGE [--signature FILE] IMAGE2 ...`: each image with the signature given after it.
fn images_and_signatures(words: &[String]) -> Result<Vec<(String, Option<PathBuf>)>> {
    let mut out: Vec<(String, Option<PathBuf>)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if let Some(rest) = w.strip_prefix("--signature") {
            let file = match rest.strip_prefix('=') {
                Some(f) => f.to_string(),
                None if rest.is_empty() => {
                    i += 1;
                    words
                        .get(i)
                        .cloned()
                        .ok_or_else(|| Usage("--signature needs a file".into()))?
                }
                None => return Err(Usage(format!("unknown flag {w}")).into()),
            };
            let Some(last) = out.last_mut() else {
                return Err(Usage(
                    "--signature names the signature of the image before it: give the image first"
                        .into(),
                )
                .into());
            };
            last.1 = Some(file.into());
        } else if w.starts_with("--") {
            return Err(Usage(format!(
                "{w}: fetch's flags come before the images (only --signature follows an image)"
            ))
            .into());
        } else {
            out.push((w.clone(), None));
        }
        i += 1;
    }
    Ok(out)
}

/// rkt's deprecated `--store-only` and `--no-store`, as the pull policies they became.
pub fn deprecated_store_flags(policy: PullPolicy, store_only: bool, no_store: bool) -> PullPolicy {
    if store_only {
        eprintln!("vessel: note: --store-only is deprecated: it is --pull-policy=never");
        return PullPolicy::Never;
    }
    if no_store {
        eprintln!("vessel: note: --no-store is deprecated: it is --pull-policy=update");
        return PullPolicy::Update;
    }
    policy
}
