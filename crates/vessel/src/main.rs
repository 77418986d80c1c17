//! The `vessel` binary: parses the command line and hands each command to the libraries.

mod cli;
mod commands;
mod context;
mod insecure;
mod output;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vessel: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
