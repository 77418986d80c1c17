//! `vessel enter [--app=NAME] UUID [CMD ARGS...]`

use anyhow::{bail, Context as _, Result};
use pod::state::PodState;
use pod::State;

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
    if pod.state() != State::Running {
        bail!(
            "pod {} is {}: only a running pod can be entered",
            pod.uuid,
            pod.state().name()
        );
    }
    let state = PodState::load(&pod.path())?;
    let app = match &args.app {
        Some(name) => state
            .apps
            .iter()
            .find(|a| &a.name == name)
            .with_context(|| {
                format!(
                    "pod {} has no app named {name:?} (apps: {})",
                    pod.uuid,
                    names(&state)
                )
            })?,
        None if state.apps.len() == 1 => &state.apps[0],
        None => bail!(
            "pod {} has several apps ({}): choose one with --app",
            pod.uuid,
            names(&state)
        ),
    };
    let pid = app
        .pid
        .with_context(|| format!("app {} of pod {} is not running", app.name, pod.uuid))?;
    let plan_path = pod.paths().plan();
    let plan: exec::plan::PodPlan = serde_json::from_slice(
        &std::fs::read(&plan_path).with_context(|| plan_path.display().to_string())?,
    )?;
    let app_plan = plan
        .apps
        .iter()
        .find(|a| a.name == app.name)
        .context("the pod's plan lacks the app")?;
    let seccomp = match app_plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(profile) => Some(exec::supervisor::launch::compiled_filter(
            profile,
            Some(&pod::layout::seccomp_cache(&ctx.global.dir)),
        )?),
        None => None,
    };
    let status = exec::crossing::enter::enter(exec::crossing::enter::EnterRequest {
        app_pid: pid,
        init_pid: state.pid.context("the pod's init is not running")?,
        init_start: state.pid_start,
        spec: &app_plan.spec,
        seccomp,
        command,
    })
    .with_context(|| format!("entering app {} of pod {}", app.name, pod.uuid))?;
    Ok(exec::proto::ExitStatus::from_wait(status).code)
}

fn names(state: &PodState) -> String {
    state
        .apps
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
