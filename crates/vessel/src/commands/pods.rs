//! `list`, `status`, `cat-manifest`, `logs`, `stop`, `rm`, `gc`.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use pod::state::PodState;
use pod::{PodDir, State};

use crate::cli::{
    CatManifestArgs, Format, GcArgs, ListArgs, StatusArgs, StopArgs, UuidArgs, UuidsArgs,
};
use crate::context::Context;
use crate::output::{self, Table};
use crate::podview::PodView;

pub fn uuid_of(args: &UuidArgs) -> Result<String> {
    match (&args.uuid, &args.uuid_file) {
        (Some(u), _) => Ok(u.clone()),
        (None, Some(f)) => Ok(std::fs::read_to_string(f)
            .with_context(|| format!("--uuid-file {}", f.display()))?
            .trim()
            .to_string()),
        (None, None) => bail!("give a pod UUID or --uuid-file"),
    }
}

fn uuids_of(args: &UuidsArgs) -> Result<Vec<String>> {
    let mut out = args.uuids.clone();
    if let Some(f) = &args.uuid_file {
        out.push(
            std::fs::read_to_string(f)
                .with_context(|| format!("--uuid-file {}", f.display()))?
                .trim()
                .to_string(),
        );
    }
    Ok(out)
}

pub fn list(ctx: &Context, args: &ListArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    // Pods in garbage/ are being deleted: not listed.
    let mut all: Vec<PodView> = pods
        .all()?
        .iter()
        .filter(|p| p.dir != pod::Dir::Garbage)
        .map(PodView::of)
        .collect();
    all.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    match args.format.format {
        Format::Table => {
            let mut header = vec!["UUID", "APP", "IMAGE NAME"];
            if args.full {
                header.push("IMAGE ID");
            }
            header.extend(["STATE", "CREATED", "STARTED", "NETWORKS"]);
            if args.full {
                header.push("STAGE1");
            }
            let mut t = Table::new(&header);
            // As rkt: one row per app; the pod's own columns on its first row only.
            for p in &all {
                let uuid = if args.full {
                    p.name.clone()
                } else {
                    p.name[..8].to_string()
                };
                let mut first = vec![
                    p.state.to_string(),
                    output::when(p.created, args.full),
                    output::when(p.started, args.full),
                    p.networks_column(),
                ];
                if args.full {
                    first.push(p.stage1.to_string());
                }
                let blank = vec![String::new(); first.len()];
                let apps: Vec<(String, String, String)> = if p.apps.is_empty() {
                    vec![("-".into(), "-".into(), "-".into())]
                } else {
                    p.apps
                        .iter()
                        .map(|a| (a.name.clone(), a.image_name.clone(), a.image_id.clone()))
                        .collect()
                };
                for (i, (app, image, id)) in apps.into_iter().enumerate() {
                    let mut row = vec![
                        if i == 0 { uuid.clone() } else { String::new() },
                        app,
                        image,
                    ];
                    if args.full {
                        row.push(id.chars().take(19).collect());
                    }
                    row.extend(if i == 0 { first.clone() } else { blank.clone() });
                    t.row(row);
                }
            }
            print!("{}", t.render(!args.no_legend));
        }
        f => print!("{}", output::json(&all, f)),
    }
    Ok(0)
}

/// `status --check-net`: CNI CHECK of every network of a running pod.
fn check_networks(pod: &PodDir, format: Format) -> Result<i32> {
    if pod.state() != State::Running {
        bail!(
            "pod {} is {}: only a running pod's networks can be checked",
            pod.uuid,
            pod.state().name()
        );
    }
    let inv = pod::network::teardown_invoker(None);
    let results = pod::network::check(&pod.paths().net(), &inv)?;
    let failed = results.iter().any(|(_, r)| r.is_err());
    match format {
        Format::Table => {
            for (net, r) in &results {
                match r {
                    Ok(net::CheckOutcome::Ok) => println!("check-{net}=ok"),
                    Ok(net::CheckOutcome::NotSupported) => {
                        println!("check-{net}=skipped (CHECK disabled or before CNI 0.4.0)")
                    }
                    Ok(net::CheckOutcome::NotAdded) => println!("check-{net}=not added"),
                    Err(e) => println!("check-{net}=failed: {e}"),
                }
            }
        }
        f => {
            #[derive(serde::Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Check<'a> {
                net_name: &'a str,
                ok: bool,
                #[serde(skip_serializing_if = "Option::is_none")]
                error: Option<&'a str>,
            }
            let out: Vec<Check<'_>> = results
                .iter()
                .map(|(n, r)| Check {
                    net_name: n,
                    ok: r.is_ok(),
                    error: r.as_ref().err().map(String::as_str),
                })
                .collect();
            print!("{}", output::json(&out, f));
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn status(ctx: &Context, args: &StatusArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    let mut pod = pods.find(&uuid_of(&args.pod)?)?;
    if args.check_net {
        return check_networks(&pod, args.format.format);
    }
    if let Some(limit) = args.wait_ready.0 {
        wait_until(&mut pod, limit, "--wait-ready", "ready", |pod| {
            let st = pod.state();
            st == State::Running && all_started(pod) || settled(st)
        })?;
    }
    if let Some(limit) = args.wait.0 {
        wait_until(&mut pod, limit, "--wait", "exited", |pod| {
            settled(pod.state())
        })?;
    }
    let p = PodView::of(&pod);
    match args.format.format {
        Format::Table => {
            println!("state={}", p.state);
            println!("created={}", output::when(p.created, true));
            println!("started={}", output::when(p.started, true));
            if let Some(pid) = p.pid {
                println!("pid={pid}");
            }
            println!("exited={}", p.exited);
            if let Some(f) = p.finished {
                println!("finished={}", output::when(Some(f), true));
            }
            println!("networks={}", p.networks_column());
            println!("stage1={}", p.stage1);
            // rkt's `app-NAME=CODE`, a plain number; what Vessel knows besides on lines of
            // their own (`app-NAME.signal=15`: an app name holds no dot).
            for a in &p.apps {
                println!(
                    "app-{}={}",
                    a.name,
                    a.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                if let Some(s) = a.signal {
                    println!("app-{}.signal={s}", a.name);
                }
                if a.oom_killed {
                    println!("app-{}.oom-killed=true", a.name);
                }
                if let Some(e) = &a.error {
                    println!("app-{}.error={}", a.name, output::line(e));
                }
            }
            if let Some(e) = &p.error {
                println!("error={}", output::line(e));
            }
        }
        f => print!("{}", output::json(&p, f)),
    }
    Ok(0)
}

/// A pod that will not run (again).
fn settled(st: State) -> bool {
    matches!(
        st,
        State::Exited | State::ExitedGarbage | State::Garbage | State::AbortedPrepare
    )
}

/// Every app of the pod has started (the supervisor records their pids together).
fn all_started(pod: &PodDir) -> bool {
    PodState::load(&pod.path()).is_ok_and(|s| {
        s.started.is_some()
            && s.apps
                .iter()
                .all(|a| a.pid.is_some() || a.exit_code.is_some())
    })
}

/// Polls until `done`, for at most `limit` (None: for ever).
fn wait_until(
    pod: &mut PodDir,
    limit: Option<Duration>,
    flag: &str,
    what: &str,
    done: impl Fn(&PodDir) -> bool,
) -> Result<()> {
    let deadline = limit.map(|t| std::time::Instant::now() + t);
    loop {
        pod.refresh()?;
        if done(pod) {
            return Ok(());
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            bail!(
                "pod {} is still {}, not {what}, after {} ({flag})",
                pod.uuid,
                pod.state().name(),
                humantime::format_duration(limit.unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn cat_manifest(ctx: &Context, args: &CatManifestArgs) -> Result<i32> {
    let pod = ctx.pods()?.find(&uuid_of(&args.pod)?)?;
    let p = pod.paths().manifest();
    let data =
        std::fs::read(&p).with_context(|| format!("pod {} has no manifest yet", pod.uuid))?;
    let v: serde_json::Value = serde_json::from_slice(&data)?;
    if args.pretty_print {
        print!("{}", output::pretty(&v));
    } else {
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(0)
}

pub fn stop(ctx: &Context, args: &StopArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    let mut failed = 0;
    let mut found = Vec::new();
    for q in uuids_of(&args.pods)? {
        match pods.find(&q) {
            Ok(p) => found.push(p),
            Err(e) => {
                output::say!("stop {q}: {e}");
                failed += 1;
            }
        }
    }
    for (uuid, res) in pod::ops::stop_all(found, args.force, args.timeout) {
        match res {
            Ok(pod::ops::Stopped::Now) => println!("{uuid}"),
            // As rkt: not an error, so a unit's ExecStop may run twice.
            Ok(pod::ops::Stopped::Already) => println!("pod {uuid} is already stopped"),
            Err(e) => {
                output::say!("stop {uuid}: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

pub fn rm(ctx: &Context, args: &UuidsArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    let mut failed = 0;
    for q in uuids_of(args)? {
        match pods
            .find_for_removal(&q)
            .map_err(anyhow::Error::from)
            .and_then(|p| {
                let uuid = p.uuid.clone();
                pod::ops::remove(p)?;
                Ok(uuid)
            }) {
            Ok(uuid) => println!("{uuid}"),
            Err(e) => {
                output::say!("rm {q}: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

pub fn gc(ctx: &Context, args: &GcArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    let opts = pod::ops::GcOptions {
        grace: args.grace_period,
        expire_prepared: args.expire_prepared,
        mark_only: args.mark_only,
    };
    let report = pod::ops::gc(&pods, &opts)?;
    for u in &report.marked {
        println!("marked {u}");
    }
    for u in &report.removed {
        println!("removed {u}");
    }
    for f in &report.failed {
        output::say!("gc: {f}");
    }
    Ok(if report.failed.is_empty() { 0 } else { 1 })
}

/// Layers and images that pods still use, for image gc.
pub fn pinned(ctx: &Context) -> Result<std::collections::HashSet<store::Digest>> {
    let mut keep = std::collections::HashSet::new();
    for p in ctx.pods()?.all()? {
        if let Ok(s) = PodState::load(&p.path()) {
            keep.extend(s.pinned.iter().filter_map(|k| k.parse().ok()));
        }
    }
    Ok(keep)
}
