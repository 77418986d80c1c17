//! `vessel enter [--app=NAME] UUID [CMD ARGS...]`

use anyhow::{bail, Context as _, Result};

use crate::cli::EnterArgs;
use crate::context::Context;

pub fn run(ctx: &Context, args: EnterArgs) -> Result<i32> {
    let mut rest = args.rest.clone();
    let uuid = match &args.uuid_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("--uuid-file {}", f.display()))?
            .trim()
            .to_string(),
        None if rest.is_empty() => bail!("give a pod UUID (or --uuid-file)"),
        None => rest.remove(0),
    };
    let command = if rest.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        rest
    };
    let pod = ctx.pods()?.find(&uuid)?;
    let state = pod::state::PodState::load(&pod.path())?;
    if state.stage1 == exec::plan::Flavour::Kvm && exec::crossing::enter_io::wants_terminal() {
        eprintln!(
            "vessel: warning: pod {}: enter of a kvm pod gives the command no terminal: its stdin, stdout and stderr are pipes",
            pod.uuid
        );
    }
    if ctx.rootless {
        // Into the namespace the pod runs in: only there do our capabilities reach it.
        if let Some(pid) = state.pid {
            exec::rootless::join(pid).context("rootless: entering the pod's user namespace")?;
        }
    }
    let status = pod::ops::enter(&pod, args.app.as_deref(), command)?;
    Ok(exec::proto::ExitStatus::from_wait(status).code)
}
