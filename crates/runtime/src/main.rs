//! The `vessel-runtime` binary: runc's command line. Errors are logged in runc's format
//! (to --log, else stderr) and end the process with status 1.

use clap::Parser;

fn main() {
    // The container's process runs from this same binary, sealed: decide before clap.
    if std::env::args().next().as_deref() == exec::container::INIT_ARGV0.to_str().ok() {
        exec::container::init::main();
    }
    exec::trace::init();
    let cli = runtime::cli::Cli::parse();
    runtime::log::init(runtime::log::Logger {
        file: cli.log.clone(),
        format: cli.log_format,
        debug: cli.debug,
    });
    let code = match runtime::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            runtime::log::error(&msg);
            // runc: with --log, the plain message goes to stderr too.
            if !runtime::log::to_stderr() {
                eprintln!("{msg}");
            }
            1
        }
    };
    std::process::exit(code);
}
