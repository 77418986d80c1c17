//! `update` (new limits on a container's cgroup) and `events` (its statistics and OOM
//! kills), both on the executor's cgroup code (exec::cgroups).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use exec::cgroups::{Cgroup, Cgroups, Limits};
use oci_spec::runtime::LinuxResources;

use crate::cli::{EventsArgs, UpdateArgs};
use crate::error::{Result, RuntimeError};
use crate::layout::Root;
use crate::state::{Container, Record};
use crate::status::{check, Op, Status};

fn exec_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Exec(e.to_string())
}

/// The v1 controllers (v2 names differ only for blkio/io) an OCI container may be under
/// beyond Vessel's own: freezer (pause), cpuacct (cpu usage), and those of the limits
/// only some containers ask for (each costs a directory per container, so only when
/// asked).
pub const ALWAYS: &[&str] = &["freezer", "cpuacct"];
pub const WHEN_ASKED: &[&str] = &["cpuset", "blkio", "hugetlb", "net_cls", "net_prio", "rdma"];

/// The hierarchies of OCI containers: Vessel's, the ones above always, and those of
/// `WHEN_ASKED` that `limits` needs (all of them for a handle on an existing container).
pub fn container_cgroups(limits: Option<&Limits>) -> Result<Cgroups> {
    let mut cgroups = Cgroups::detect().map_err(exec_err)?;
    for c in ALWAYS {
        cgroups = cgroups.with_controller(c);
    }
    for c in needed(limits) {
        cgroups = cgroups.with_controller(c);
    }
    Ok(cgroups)
}

fn needed(limits: Option<&Limits>) -> Vec<&'static str> {
    let Some(l) = limits else {
        return WHEN_ASKED.to_vec();
    };
    let mut out = Vec::new();
    if l.cpuset_cpus.is_some() || l.cpuset_mems.is_some() {
        out.push("cpuset");
    }
    if l.blkio_weight.is_some() {
        out.push("blkio");
    }
    for c in l.other.controllers() {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The container's cgroup across every hierarchy it may be under (a handle).
fn full_cgroup(record: &Record) -> Result<Cgroup> {
    if record.cgroup_path.is_empty() {
        return Err(exec_err("the container has no cgroup"));
    }
    container_cgroups(None)?
        .at(std::path::Path::new(&record.cgroup_path))
        .map_err(exec_err)
}

/// A size as runc's flags take it: bytes, or with a k, m, g, t or p suffix (powers of
/// 1024, an optional "b" or "ib" after), or -1 for no limit.
pub fn parse_size(flag: &str, text: &str) -> Result<i64> {
    let bad = || RuntimeError::Usage(format!("invalid value {text:?} for flag --{flag}"));
    let t = text.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match lower.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let shift = 10 * (1 + "kmgtp".find(c).expect("listed"));
            (&lower[..lower.len() - 1], 1u64 << shift)
        }
        _ => (lower, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    if n.is_nan() || n < 0.0 {
        return Err(bad());
    }
    let v = (n * mult as f64) as u64;
    i64::try_from(v).map_err(|_| bad())
}

/// The resources `update` applies: `-r` (a file, or `-` for stdin, in runc's and the
/// runtime spec's `linux.resources` shape), then the flags over it.
pub fn update_resources(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut v: serde_json::Value = match &a.resources {
        None => serde_json::json!({}),
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(RuntimeError::io("reading", "stdin"))?;
            } else {
                text = std::fs::read_to_string(path).map_err(RuntimeError::io("reading", path))?;
            }
            serde_json::from_str(&text)
                .map_err(|e| RuntimeError::Usage(format!("resources {}: {e}", path.display())))?
        }
    };
    if !v.is_object() {
        return Err(RuntimeError::Usage(
            "resources: a JSON object (linux.resources) is expected".into(),
        ));
    }
    let mut set = |section: &str, key: &str, value: serde_json::Value| {
        let s = v
            .as_object_mut()
            .expect("object")
            .entry(section)
            .or_insert_with(|| serde_json::json!({}));
        s[key] = value;
    };
    if let Some(w) = a.blkio_weight {
        set("blockIO", "weight", w.into());
    }
    if let Some(p) = a.cpu_period {
        set("cpu", "period", p.into());
    }
    if let Some(q) = a.cpu_quota {
        set("cpu", "quota", q.into());
    }
    if let Some(p) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", p.into());
    }
    if let Some(r) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", r.into());
    }
    if let Some(s) = a.cpu_share {
        set("cpu", "shares", s.into());
    }
    if let Some(c) = &a.cpuset_cpus {
        set("cpu", "cpus", c.clone().into());
    }
    if let Some(m) = &a.cpuset_mems {
        set("cpu", "mems", m.clone().into());
    }
    if let Some(m) = &a.memory {
        set("memory", "limit", parse_size("memory", m)?.into());
    }
    if let Some(m) = &a.memory_reservation {
        set(
            "memory",
            "reservation",
            parse_size("memory-reservation", m)?.into(),
        );
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", parse_size("memory-swap", m)?.into());
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", p.into());
    }
    for (flag, given) in [
        ("kernel-memory", a.kernel_memory.is_some()),
        ("kernel-memory-tcp", a.kernel_memory_tcp.is_some()),
    ] {
        if given {
            crate::log::warn(&format!(
                "--{flag} is ignored: kernel memory limits are deprecated (runc ignores them too)"
            ));
        }
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(RuntimeError::NotSupported(
            "Intel RDT (--l3-cache-schema, --mem-bw-schema)",
        ));
    }
    serde_json::from_value(v).map_err(|e| RuntimeError::Usage(format!("resources: {e}")))
}

pub fn update(root: &Root, a: &UpdateArgs) -> Result<i32> {
    let resources = update_resources(a)?;
    let mut limits = Limits::from_oci(&resources).map_err(exec_err)?;
    // runc's update leaves device rules alone.
    limits.devices = None;
    let mut c = Container::open(root, &a.id)?;
    check(Op::Update, c.status(), &a.id)?;
    let cgroup = full_cgroup(&c.record)?;
    if let Some(unit) = &c.record.systemd_unit {
        // Properties first, so systemd applying them again later keeps the new values.
        let bus = crate::systemd::Systemd::connect()?;
        let layout = exec::cgroups::CgroupMounts::read()
            .ok()
            .and_then(|m| m.layout())
            .unwrap_or(exec::cgroups::Layout::V2);
        crate::systemd::set_resources(&bus, unit, &limits, layout)?;
    }
    for controller in needed(Some(&limits)) {
        let controller = if controller == "blkio" && cgroup.dir_of("blkio").is_none() {
            "io"
        } else {
            controller
        };
        cgroup.ensure_controller(controller).map_err(exec_err)?;
    }
    cgroup.set_limits(&limits).map_err(exec_err)?;
    record_resources(&mut c.record, &resources);
    c.save()?;
    Ok(0)
}

/// Merges what `update` set into the recorded config (as runc keeps it in its state).
fn record_resources(record: &mut Record, new: &LinuxResources) {
    let mut linux = record.config.linux().clone().unwrap_or_default();
    let old = linux.resources().clone().unwrap_or_default();
    let merge = |old: serde_json::Value, new: serde_json::Value| -> serde_json::Value {
        let mut out = old;
        if let (Some(o), Some(n)) = (out.as_object_mut(), new.as_object()) {
            for (section, values) in n {
                match (o.get_mut(section), values.as_object()) {
                    (Some(serde_json::Value::Object(os)), Some(vs)) => {
                        for (k, v) in vs {
                            os.insert(k.clone(), v.clone());
                        }
                    }
                    _ => {
                        o.insert(section.clone(), values.clone());
                    }
                }
            }
        }
        out
    };
    let merged = merge(
        serde_json::to_value(&old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    if let Ok(r) = serde_json::from_value(merged) {
        linux.set_resources(Some(r));
        record.config.set_linux(Some(linux));
    }
}

/// One event, as runc prints it (one JSON object per line).
fn print_event(kind: &str, id: &str, data: Option<serde_json::Value>) -> Result<()> {
    let mut v = serde_json::json!({"type": kind, "id": id});
    if let Some(d) = data {
        v["data"] = d;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
        .and_then(|()| out.flush())
        .map_err(RuntimeError::io("writing", "stdout"))
}

/// A Go duration as runc's `--interval` takes it (`5s`, `500ms`, `1m30s`, `1.5s`).
pub fn parse_interval(text: &str) -> Result<Duration> {
    let bad = || RuntimeError::Usage(format!("invalid value {text:?} for flag --interval"));
    let mut rest = text.trim();
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[u_end..];
    }
    if total <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// How often `events` looks for new OOM kills between statistics.
const OOM_POLL: Duration = Duration::from_millis(100);

pub fn events(root: &Root, a: &EventsArgs) -> Result<i32> {
    let interval = parse_interval(&a.interval)?;
    let record = {
        let c = Container::open(root, &a.id)?;
        check(Op::Events, c.status(), &a.id)?;
        c.record.clone()
    };
    let cgroup = full_cgroup(&record)?.existing();
    let stats = || -> Result<serde_json::Value> {
        let s = cgroup.stats().map_err(exec_err)?;
        Ok(serde_json::to_value(s).expect("serialisable"))
    };
    if a.stats {
        print_event("stats", &a.id, Some(stats()?))?;
        return Ok(0);
    }
    let oom_kills = || cgroup.oom_kills().unwrap_or(0);
    let mut seen = oom_kills();
    let mut next_stats = Instant::now();
    loop {
        let dir = root.container(&a.id);
        let alive = crate::state::load(&dir, &a.id)
            .map(|r| r.status(&dir) != Status::Stopped)
            .unwrap_or(false);
        let now_kills = oom_kills();
        if now_kills > seen {
            seen = now_kills;
            print_event("oom", &a.id, None)?;
        }
        if !alive {
            return Ok(0);
        }
        if Instant::now() >= next_stats {
            // The cgroup may vanish with the container between the check and the read.
            match stats() {
                Ok(s) => print_event("stats", &a.id, Some(s))?,
                Err(_) => return Ok(0),
            }
            next_stats += interval;
        }
        std::thread::sleep(OOM_POLL.min(next_stats.saturating_duration_since(Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use exec::cgroups::UNLIMITED;

    #[test]
    fn sizes_as_runc_takes_them() {
        assert_eq!(parse_size("memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "1.5k").unwrap(), 1536);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        for bad in ["", "m", "ten", "-2", "1x"] {
            let e = parse_size("memory", bad).unwrap_err().to_string();
            assert!(e.contains("--memory"), "{bad}: {e}");
        }
    }

    #[test]
    fn intervals_as_go_durations() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_interval("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5", "s", "0s", "5x"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    fn update_args(args: &[&str]) -> UpdateArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["vessel-runtime", "update"]
                .iter()
                .chain(args.iter())
                .copied(),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Update(u) => u,
            _ => panic!(),
        }
    }

    #[test]
    fn flags_override_the_resources_file() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("r.json");
        std::fs::write(
            &file,
            r#"{"memory":{"limit":1000000,"swap":2000000},"cpu":{"shares":100},"pids":{"limit":5}}"#,
        )
        .unwrap();
        let a = update_args(&[
            "-r",
            file.to_str().unwrap(),
            "--memory",
            "32m",
            "--cpu-quota",
            "-1",
            "--pids-limit",
            "-1",
            "c1",
        ]);
        let r = update_resources(&a).unwrap();
        let l = Limits::from_oci(&r).unwrap();
        assert_eq!(l.memory_bytes, Some(32 << 20));
        assert_eq!(l.memory_swap, Some(2_000_000));
        assert_eq!(l.cpu_shares, Some(100));
        assert_eq!(l.cpu_quota.unwrap().quota_us, UNLIMITED);
        assert_eq!(l.pids, Some(UNLIMITED));
        std::fs::write(&file, "[1]").unwrap();
        let e = update_resources(&update_args(&["-r", file.to_str().unwrap(), "c"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("JSON object"), "{e}");
        std::fs::write(&file, r#"{"memory":{"limit":"x"}}"#).unwrap();
        let e = update_resources(&update_args(&["-r", file.to_str().unwrap(), "c"]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("resources"), "{e}");
    }
}
