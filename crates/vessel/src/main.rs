//! The `vessel` binary: parses the command line and hands each command to the libraries.

mod cli;
mod commands;
mod context;
mod insecure;
mod output;
mod podmanifest;
mod podview;
mod rootless;
mod runargs;

use clap::Parser;

fn main() {
    // The pod init and enter's crossing process run from this same binary: decide before clap.
    let mut args = std::env::args();
    let argv0 = args.next();
    if argv0.as_deref() == exec::crossing::enter::ENTER_ARGV0.to_str().ok() {
        exec::crossing::enter::exec_main();
    }
    if argv0.as_deref() == exec::crossing::embryo::INIT_ARGV0.to_str().ok() {
        exec::pid1::init::main();
    }
    // The initramfs of a kvm pod holds this binary as the guest's /init.
    if exec::kvm::guest::is_guest_init(argv0.as_deref()) {
        exec::kvm::guest::main();
    }
    exec::trace::init();
    let cli = cli::Cli::parse();
    exec::trace::mark("command line parsed");
    if commands::only_prints(&cli.command) {
        // A reader that went away (`vessel list | head -1`) ends us quietly, as it ends
        // any Unix filter. Commands that run or change pods keep SIGPIPE ignored: a
        // supervisor must outlive whoever reads its output.
        // SAFETY: restoring a default disposition before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            output::say!("{e:#}");
            // A command line that does not parse is a usage error, as clap's are.
            if e.downcast_ref::<runargs::Usage>().is_some() {
                2
            } else {
                1
            }
        }
    };
    exec::trace::mark("exiting");
    std::process::exit(code);
}
