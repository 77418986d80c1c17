//! The `vessel` binary: parses the command line and hands each command to the libraries.

mod cli;
mod commands;
mod context;
mod insecure;
mod output;
mod podmanifest;
mod runargs;

use clap::Parser;

fn main() {
    // The pod init and enter's crossing process run from this same binary: decide before clap.
    let mut args = std::env::args();
    let argv0 = args.next();
    if argv0.as_deref() == Some(exec::crossing::enter::ENTER_ARGV0) {
        exec::crossing::enter::exec_main();
    }
    if argv0.as_deref() == Some(exec::crossing::embryo::INIT_ARGV0) {
        exec::pid1::init::main();
    }
    exec::trace::init();
    let cli = cli::Cli::parse();
    exec::trace::mark("command line parsed");
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vessel: {e:#}");
            1
        }
    };
    exec::trace::mark("exiting");
    std::process::exit(code);
}
