//! One module per command group; `dispatch` runs the parsed command line.

mod create;
mod exec;
mod info;
mod lifecycle;
mod resources;
mod terminal;

use crate::cli::{Cli, Command};
use crate::error::{Result, RuntimeError};
use crate::layout::Root;

/// Runs a command; Ok gives the exit status (a container's own for `run` and `exec`).
pub fn dispatch(cli: Cli) -> Result<i32> {
    let root = Root::new(&cli.root).with_systemd_cgroup(cli.systemd_cgroup);
    match cli.command {
        Command::State(a) => info::state(&root, &a.id),
        Command::List(a) => info::list(&root, &a.format, a.quiet),
        Command::Spec(a) => crate::spec_cmd::write(&a.bundle, a.rootless).map(|()| 0),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::features::features()).expect("json")
            );
            Ok(0)
        }
        Command::Checkpoint(_) => Err(RuntimeError::NotSupported("checkpoint")),
        Command::Restore(_) => Err(RuntimeError::NotSupported("restore")),
        Command::Create(a) => create::create(&root, &a, create::Start::Create).map(|_| 0),
        Command::Start(a) => lifecycle::start(&root, &a.id),
        Command::Run(a) => lifecycle::run(&root, &a),
        Command::Kill(a) => lifecycle::kill(&root, &a.id, &a.signal, a.all),
        Command::Delete(a) => lifecycle::delete(&root, &a.id, a.force),
        Command::Pause(a) => lifecycle::pause(&root, &a.id, false),
        Command::Resume(a) => lifecycle::pause(&root, &a.id, true),
        Command::Exec(a) => exec::exec(&root, &a),
        Command::Ps(a) => lifecycle::ps(&root, &a.id, &a.format, &a.ps_args),
        Command::Update(a) => resources::update(&root, &a),
        Command::Events(a) => resources::events(&root, &a),
    }
}
