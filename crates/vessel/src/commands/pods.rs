//! `list`, `status`, `cat-manifest`, `logs`, `stop`, `rm`, `gc`.

use std::io::{Read, Seek, Write};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use pod::state::PodState;
use pod::{PodDir, State};
use serde::Serialize;

use crate::cli::{Format, GcArgs, ListArgs, LogsArgs, StatusArgs, StopArgs, UuidArgs, UuidsArgs};
use crate::context::Context;
use crate::output::{self, Table};

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodJson {
    uuid: String,
    state: State,
    #[serde(flatten)]
    recorded: PodState,
    exited: bool,
}

fn describe(pod: &PodDir) -> PodJson {
    let state = pod.state();
    let recorded = PodState::load(&pod.path()).unwrap_or_else(|_| PodState {
        uuid: pod.uuid.clone(),
        ..Default::default()
    });
    PodJson {
        uuid: pod.uuid.clone(),
        state,
        exited: matches!(state, State::Exited | State::ExitedGarbage),
        recorded,
    }
}

pub fn list(ctx: &Context, args: &ListArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    // Pods in garbage/ are being deleted: not listed.
    let mut all: Vec<PodJson> = pods
        .all()?
        .iter()
        .filter(|p| p.dir != pod::Dir::Garbage)
        .map(describe)
        .collect();
    all.sort_by(|a, b| {
        a.recorded
            .created
            .cmp(&b.recorded.created)
            .then(a.uuid.cmp(&b.uuid))
    });
    match args.format.format {
        Format::Table => {
            let mut t = Table::new(&[
                "UUID",
                "APP",
                "IMAGE NAME",
                "STATE",
                "CREATED",
                "STARTED",
                "NETWORKS",
            ]);
            for p in &all {
                let uuid = if args.full {
                    p.uuid.clone()
                } else {
                    p.uuid[..8].to_string()
                };
                let apps = p
                    .recorded
                    .apps
                    .iter()
                    .map(|a| a.name.clone())
                    .collect::<Vec<_>>()
                    .join(",");
                let images = p
                    .recorded
                    .apps
                    .iter()
                    .map(|a| a.image_name.clone())
                    .collect::<Vec<_>>()
                    .join(",");
                t.row(vec![
                    uuid,
                    apps,
                    images,
                    p.state.name().to_string(),
                    output::when(p.recorded.created, args.full),
                    output::when(p.recorded.started, args.full),
                    networks_column(&p.recorded),
                ]);
            }
            print!("{}", t.render(!args.no_legend));
        }
        f => print!("{}", output::json(&all, f)),
    }
    Ok(0)
}

/// rkt's NETWORKS column: `default:ip4=172.16.28.5,...`, or host, none.
fn networks_column(r: &PodState) -> String {
    if !r.networks.is_empty() {
        return r
            .networks
            .iter()
            .map(|n| n.short())
            .collect::<Vec<_>>()
            .join(",");
    }
    if r.net.is_empty() {
        "-".into()
    } else {
        r.net.clone()
    }
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
            #[derive(Serialize)]
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
    if let Some(w) = &args.wait {
        let timeout = if w == "forever" {
            None
        } else {
            Some(humantime::parse_duration(w).with_context(|| format!("--wait={w}"))?)
        };
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            pod.refresh()?;
            let st = pod.state();
            let settled = matches!(
                st,
                State::Exited | State::ExitedGarbage | State::Garbage | State::AbortedPrepare
            );
            if settled {
                break;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                bail!(
                    "pod {} is still {} after {}",
                    pod.uuid,
                    st.name(),
                    args.wait.as_deref().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let p = describe(&pod);
    match args.format.format {
        Format::Table => {
            let r = &p.recorded;
            println!("state={}", p.state.name());
            println!("created={}", output::when(r.created, true));
            println!("started={}", output::when(r.started, true));
            if p.state == State::Running {
                println!(
                    "pid={}",
                    r.pid.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
                );
            }
            println!("exited={}", p.exited);
            if let Some(f) = r.finished {
                println!("finished={}", output::when(Some(f), true));
            }
            println!("networks={}", networks_column(r));
            for a in &r.apps {
                let mut line = format!(
                    "app-{}={}",
                    a.name,
                    a.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                if a.oom_killed {
                    line.push_str(" (killed: out of memory)");
                } else if let Some(s) = a.signal {
                    line.push_str(&format!(" (signal {s})"));
                }
                if let Some(e) = &a.error {
                    line.push_str(&format!(" (failed to start: {e})"));
                }
                println!("{line}");
            }
            if let Some(e) = &r.error {
                println!("error={e}");
            }
        }
        f => print!("{}", output::json(&p, f)),
    }
    Ok(0)
}

pub fn cat_manifest(ctx: &Context, args: &UuidArgs) -> Result<i32> {
    let pod = ctx.pods()?.find(&uuid_of(args)?)?;
    let p = pod.paths().manifest();
    let data =
        std::fs::read(&p).with_context(|| format!("pod {} has no manifest yet", pod.uuid))?;
    let v: serde_json::Value = serde_json::from_slice(&data)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}

pub fn logs(ctx: &Context, args: &LogsArgs) -> Result<i32> {
    let mut pod = ctx.pods()?.find(&uuid_of(&args.pod)?)?;
    let state = PodState::load(&pod.path())?;
    let apps: Vec<String> = match &args.app {
        Some(a) => {
            if !state.apps.iter().any(|x| &x.name == a) {
                bail!(
                    "pod {} has no app named {a:?} (apps: {})",
                    pod.uuid,
                    state
                        .apps
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            vec![a.clone()]
        }
        None => state.apps.iter().map(|a| a.name.clone()).collect(),
    };
    let mut offsets = vec![0u64; apps.len()];
    let mut out = std::io::stdout();
    loop {
        for (i, app) in apps.iter().enumerate() {
            let p = pod.paths().log(app);
            let Ok(mut f) = std::fs::File::open(&p) else {
                continue;
            };
            f.seek(std::io::SeekFrom::Start(offsets[i]))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            offsets[i] += buf.len() as u64;
            out.write_all(&buf)?;
        }
        out.flush()?;
        if !args.follow {
            break;
        }
        pod.refresh()?;
        if !pod.is_locked() {
            // One last read for what was written before the pod exited.
            for (i, app) in apps.iter().enumerate() {
                let p = pod.paths().log(app);
                if let Ok(mut f) = std::fs::File::open(&p) {
                    f.seek(std::io::SeekFrom::Start(offsets[i]))?;
                    std::io::copy(&mut f, &mut out)?;
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}

pub fn stop(ctx: &Context, args: &StopArgs) -> Result<i32> {
    let pods = ctx.pods()?;
    let mut failed = 0;
    for q in uuids_of(&args.pods)? {
        match pods.find(&q).map_err(anyhow::Error::from).and_then(|p| {
            let uuid = p.uuid.clone();
            pod::ops::stop(p, args.force, args.timeout)?;
            Ok(uuid)
        }) {
            Ok(uuid) => println!("{uuid}"),
            Err(e) => {
                eprintln!("vessel: stop {q}: {e}");
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
        match pods.find(&q).map_err(anyhow::Error::from).and_then(|p| {
            let uuid = p.uuid.clone();
            pod::ops::remove(p, exec::cgroups::DEFAULT_PARENT)?;
            Ok(uuid)
        }) {
            Ok(uuid) => println!("{uuid}"),
            Err(e) => {
                eprintln!("vessel: rm {q}: {e}");
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
        cgroup_parent: exec::cgroups::DEFAULT_PARENT.to_string(),
    };
    let report = pod::ops::gc(&pods, &opts)?;
    for u in &report.marked {
        println!("marked {u}");
    }
    for u in &report.removed {
        println!("removed {u}");
    }
    for f in &report.failed {
        eprintln!("vessel: gc: {f}");
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
