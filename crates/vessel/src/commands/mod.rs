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
pub fn dispatch(mut cli: Cli) -> Result<i32> {
    // A user without root runs rootless: XDG defaults, then a user namespace of their own
    // before anything is read or written under the data directory.
    let rootless = crate::rootless::identity();
    if let Some(who) = &rootless {
        crate::rootless::apply_defaults(&mut cli.global, who)?;
    }
    // Commands that print only what the binary knows read no configuration.
    let dir = if matches!(
        cli.command,
        Command::Version(_) | Command::Completion { .. }
    ) {
        std::path::PathBuf::new()
    } else {
        data_dir(&cli.global, rootless.as_ref())?
    };
    if let Some(who) = rootless.as_ref().filter(|_| needs_data_dir(&cli.command)) {
        let note = matches!(
            cli.command,
            Command::Fetch(_) | Command::Run(_) | Command::Prepare(_) | Command::RunPrepared(_)
        );
        if matches!(cli.command, Command::Enter(_)) {
            // `enter` joins the user namespace of the pod it enters (commands::enter).
            crate::rootless::check_dir(&dir)?;
        } else {
            crate::rootless::enter(&dir, who, note)?;
        }
    }
    if cli.global.insecure_options.ondisk {
        eprintln!(
            "vessel: note: --insecure-options=ondisk has no effect: images are checked when they are fetched, and `vessel image verify` re-checks the store"
        );
    }
    let ctx = Context {
        global: cli.global,
        dir,
        rootless: rootless.is_some(),
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
        Command::Info(f) => {
            let v = crate::rootless::info(&ctx.global, &ctx.dir, rootless.as_ref());
            match f.format {
                Format::Table => crate::rootless::print_table(&v),
                other => print!("{}", crate::output::json(&v, other)),
            }
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
/// and their processes change directory. Rootless, only the user's own configuration
/// may move it (the system's names root's), and the default is under $XDG_DATA_HOME.
fn data_dir(
    g: &crate::cli::Global,
    rootless: Option<&exec::rootless::Identity>,
) -> Result<std::path::PathBuf> {
    let dir = match &g.dir {
        Some(d) => d.clone(),
        None => {
            let mut dirs = Vec::new();
            if rootless.is_none() {
                dirs.extend([g.system_config.clone(), g.local_config.clone()]);
            }
            dirs.extend(g.user_config.clone());
            let configured = config::Config::load_only(&dirs, &["paths.d"])?
                .data_dir()
                .map(|d| d.to_path_buf());
            match (configured, rootless) {
                (Some(d), _) => d,
                (None, Some(who)) => crate::rootless::user_dirs(who)?.data,
                (None, None) => config::DEFAULT_DATA_DIR.into(),
            }
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
        Command::Version(_) | Command::Completion { .. } | Command::Config | Command::Info(_)
    )
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
        | Command::Info(_)
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
