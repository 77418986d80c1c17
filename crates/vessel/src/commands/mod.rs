pub mod enter;
pub mod fetch;
pub mod image;
pub mod pods;
pub mod run;
pub mod services;
pub mod trust;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Command, Format, FormatArgs};
use crate::context::Context;

/// Runs a command; the result is the process exit status.
pub fn dispatch(mut cli: Cli) -> Result<i32> {
    // Absolute, because pods record paths under it and their processes change directory.
    if cli.global.dir.is_relative() {
        cli.global.dir = std::env::current_dir()?.join(&cli.global.dir);
    }
    if cli.global.insecure_options.ondisk {
        eprintln!(
            "vessel: note: --insecure-options=ondisk has no effect: images are checked when they are fetched, and `vessel image verify` re-checks the store"
        );
    }
    let ctx = Context { global: cli.global };
    match cli.command {
        Command::Fetch(args) => fetch::run(&ctx, args),
        Command::Image(cmd) => image::run(&ctx, cmd),
        Command::Run(args) => run::run(&ctx, args, run::Mode::Run),
        Command::Prepare(args) => run::run(&ctx, args, run::Mode::Prepare),
        Command::RunPrepared(args) => run::run_prepared(&ctx, args),
        Command::List(args) => pods::list(&ctx, &args),
        Command::Status(args) => pods::status(&ctx, &args),
        Command::CatManifest(args) => pods::cat_manifest(&ctx, &args),
        Command::Logs(args) => pods::logs(&ctx, &args),
        Command::Enter(args) => enter::run(&ctx, args),
        Command::Stop(args) => pods::stop(&ctx, &args),
        Command::Rm(args) => pods::rm(&ctx, &args),
        Command::Gc(args) => pods::gc(&ctx, &args),
        Command::Trust(args) => trust::run(&ctx, args),
        Command::MetadataService(args) => services::metadata_service(&args),
        Command::ApiService(args) => services::api_service(&ctx, &args),
        Command::Version(f) => version(f),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "vessel", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// Commands that read and print, and change nothing: a closed stdout may end them.
pub fn only_prints(cmd: &Command) -> bool {
    use crate::cli::ImageCommand as I;
    match cmd {
        Command::List(_)
        | Command::Status(_)
        | Command::CatManifest(_)
        | Command::Logs(_)
        | Command::Version(_)
        | Command::Completion { .. } => true,
        Command::Trust(t) => t.list,
        Command::Image(i) => matches!(i, I::List(_) | I::CatManifest { .. } | I::Verify(_)),
        _ => false,
    }
}

fn version(f: FormatArgs) -> Result<i32> {
    let v = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "appcVersion": "0.8.11",
        "ociRuntimeSpec": "1.2.0",
        "ociImageSpec": "1.1.0",
    });
    match f.format {
        Format::Table => {
            println!("vessel version {}", env!("CARGO_PKG_VERSION"));
            println!("appc version 0.8.11");
            println!("oci runtime spec 1.2.0, image spec 1.1.0");
        }
        other => print!("{}", crate::output::json(&v, other)),
    }
    Ok(0)
}
