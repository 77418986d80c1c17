//! Which stage1 flavour `run` and `prepare` use: the stage1 flags, else the `stage1`
//! configuration kind, mapped onto Vessel's built-in flavours (`pod::stage1`).

use anyhow::Result;
use exec::plan::Flavour;
use pod::stage1::{Stage1, Stage1Config, Stage1Flags};

use crate::cli::RunArgs;
use crate::context::Context;
use crate::runargs::Usage;

/// The `stage1` configuration kind in effect, as `pod::stage1::select` reads it.
pub fn configured(cfg: &config::Config) -> Stage1Config {
    Stage1Config {
        name: cfg
            .stage1_name_version
            .as_ref()
            .map(|s| (s.value.0.clone(), s.value.1.clone(), s.file.clone())),
        location: cfg
            .stage1_location
            .as_ref()
            .map(|s| (s.value.clone(), s.file.clone())),
    }
}

/// The flavour a pod is to run under; a stage1 Vessel cannot run is a usage error
/// (exit status 2) that names the flag or file and why.
pub fn flavour(ctx: &Context, args: &RunArgs) -> Result<Flavour> {
    let flags = Stage1Flags {
        stage1: args.stage1.clone(),
        name: args.stage1_name.clone(),
        path: args.stage1_path.clone(),
        url: args.stage1_url.clone(),
        hash: args.stage1_hash.clone(),
        from_dir: args.stage1_from_dir.clone(),
    };
    let cfg = configured(&ctx.config(&["stage1.d"])?);
    let chosen: Stage1 = pod::stage1::select(&flags, &cfg).map_err(Usage)?;
    Ok(chosen.flavour().map_err(Usage)?)
}

/// The flavour the configuration chooses, for `vessel config` (None: it names none Vessel
/// has; `run` says why).
pub fn configured_flavour(cfg: &config::Config) -> Option<&'static str> {
    match pod::stage1::select(&Stage1Flags::default(), &configured(cfg)).ok()? {
        Stage1::Default => Some("default"),
        Stage1::Fly => Some("fly"),
        Stage1::Kvm => Some("kvm"),
    }
}
