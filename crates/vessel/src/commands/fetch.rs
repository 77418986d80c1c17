use anyhow::Result;

use crate::cli::FetchArgs;
use crate::context::Context;

/// `vessel fetch IMAGE...`: prints each image's ID on stdout, one per line, and on stderr
/// what was neutralised in layers imported now (device nodes skipped, say).
pub fn run(ctx: &Context, args: FetchArgs) -> Result<i32> {
    let store = ctx.store()?;
    let opts = ctx.fetch_options(args.pull_policy, args.quiet);
    let started = chrono::Utc::now();
    for image in &args.images {
        ctx.debug(|| format!("fetching {image}"));
        let record = fetch::fetch(&store, image, &opts)?;
        for key in &record.layers {
            let Ok(meta) = store.layer_meta(key) else {
                continue;
            };
            if meta.imported >= started && !args.quiet {
                for w in &meta.warnings {
                    eprintln!("vessel: warning: image {image}: {w}");
                }
            }
        }
        println!("{}", record.id.key());
    }
    Ok(0)
}
