use anyhow::Result;

use crate::cli::FetchArgs;
use crate::context::Context;

/// `vessel fetch IMAGE...`: prints each image's ID on stdout, one per line.
pub fn run(ctx: &Context, args: FetchArgs) -> Result<i32> {
    let store = ctx.store()?;
    let opts = fetch::FetchOptions {
        insecure_skip_verify: ctx.global.insecure_options.image,
    };
    for image in &args.images {
        ctx.debug(|| format!("fetching {image}"));
        let record = fetch::fetch(&store, image, &opts)?;
        println!("{}", record.id.key());
    }
    Ok(0)
}
