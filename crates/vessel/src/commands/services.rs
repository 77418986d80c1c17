//! `metadata-service` and `api-service`: long-running processes for platforms, outside
//! the pod start path (their async runtimes never run in `vessel run`).

use anyhow::Result;

use crate::cli::{ApiServiceArgs, MetadataServiceArgs};
use crate::context::Context;
use crate::insecure::InsecureOptions;

pub fn metadata_service(args: &MetadataServiceArgs) -> Result<i32> {
    mds::server::run(mds::server::Options {
        port: args.listen_port,
        run_dir: mds::paths::run_dir(),
    })?;
    Ok(0)
}

/// rkt's spelling of the checks skipped, for `GetInfo`.
fn insecure_names(o: &InsecureOptions) -> String {
    let all = [
        ("image", o.image),
        ("tls", o.tls),
        ("http", o.http),
        ("pubkey", o.pubkey),
        ("capabilities", o.capabilities),
        ("paths", o.paths),
        ("seccomp", o.seccomp),
    ];
    let on: Vec<&str> = all.iter().filter(|(_, b)| *b).map(|(n, _)| *n).collect();
    if on.is_empty() {
        "none".into()
    } else {
        on.join(",")
    }
}

pub fn api_service(ctx: &Context, args: &ApiServiceArgs) -> Result<i32> {
    let g = &ctx.global;
    api::server::run(api::server::Options {
        listen: args.listen.clone(),
        vessel_dir: ctx.dir.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        flags: api::service::Flags {
            dir: ctx.dir.display().to_string(),
            system_config_dir: g.system_config.display().to_string(),
            local_config_dir: g.local_config.display().to_string(),
            user_config_dir: g
                .user_config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            insecure_flags: insecure_names(&g.insecure_options),
            trust_keys_from_https: g.trust_keys_from_https,
        },
    })?;
    Ok(0)
}
