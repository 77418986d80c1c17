pub mod enter;
pub mod export;
pub mod fetch;
pub mod image;
pub mod logs;
pub mod pods;
pub mod run;
pub mod services;
pub mod stage1;
pub mod trust;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Command, Format, FormatArgs};
use crate::context::Context;

/// Runs a command; the result is the process exit status.
pub fn dispatch(cli: Cli) -> Result<i32> {
    if needs_data_dir(&cli.command) {
        check_root()?;
    }
    let dir = data_dir(&cli.global)?;
    if cli.global.insecure_options.ondisk {
        eprintln!(
            "vessel: note: --insecure-options=ondisk has no effect: images are checked when they are fetched, and `vessel image verify` re-checks the store"
        );
    }
    let ctx = Context {
        global: cli.global,
        dir,
    };
    match cli.command {
        Command::Fetch(args) => fetch::run(&ctx, args),
        Command::Image(cmd) => image::run(&ctx, cmd),
        Command::Run(args) => run::run(&ctx, args, run::Mode::Run),
        Command::Prepare(args) => run::run(&ctx, args, run::Mode::Prepare),
        Command::RunPrepared(args) => run::run_prepared(&ctx, args),
        Command::List(args) => pods::list(&ctx, &args),
        Command::Status(args) => pods::status(&ctx, &args),
        Command::CatManifest(args) => pods::cat_manifest(&ctx, &args),
        Command::Logs(args) => logs::run(&ctx, &args),
        Command::Enter(args) => enter::run(&ctx, args),
        Command::Stop(args) => pods::stop(&ctx, &args),
        Command::Rm(args) => pods::rm(&ctx, &args),
        Command::Gc(args) => pods::gc(&ctx, &args),
        Command::Export(args) => export::run(&ctx, &args),
        Command::Trust(args) => trust::run(&ctx, args),
        Command::MetadataService(args) => services::metadata_service(&args),
        Command::ApiService(args) => services::api_service(&ctx, &args),
        Command::Config => {
            let cfg = config::Config::load(&ctx.config_dirs())?;
            let mut json = cfg.to_rkt_json(&ctx.dir);
            // Vessel's own field: the built-in flavour the stage1 entry chooses.
            if let Some(entry) = json["stage0"]
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|e| e["rktKind"] == "stage1"))
            {
                if let Some(f) = stage1::configured_flavour(&cfg) {
                    entry["flavour"] = f.into();
                }
            }
            print!("{}", crate::output::pretty(&json));
            Ok(0)
        }
        Command::Version(f) => version(f),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "vessel", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// --dir, else $VESSEL_DIR (clap reads it into the flag), else the `paths`
/// configuration's `data`, else the default; absolute, because pods record paths under it
/// and their processes change directory.
fn data_dir(g: &crate::cli::Global) -> Result<std::path::PathBuf> {
    let dir = match &g.dir {
        Some(d) => d.clone(),
        None => {
            let mut dirs = vec![g.system_config.clone(), g.local_config.clone()];
            dirs.extend(g.user_config.clone());
            config::Config::load_only(&dirs, &["paths.d"])?
                .data_dir()
                .map(|d| d.to_path_buf())
                .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into())
        }
    };
    Ok(if dir.is_relative() {
        std::env::current_dir()?.join(dir)
    } else {
        dir
    })
}

/// Commands that read or write under the data directory (all but those that only print
/// what the binary or the configuration says).
fn needs_data_dir(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Version(_) | Command::Completion { .. } | Command::Config
    )
}

/// Vessel works as root: stores, pods and their namespaces are root's. A user without it
/// is told so before anything is read or written, rather than meeting "Permission
/// denied" halfway through.
fn check_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("this needs root (or a --dir you own, once rootless mode exists)");
    }
    Ok(())
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
        | Command::Config
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
