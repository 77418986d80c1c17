//! A cgroup's statistics, read from v1 or v2 files into the shape runc's `events`
//! prints (the format its clients parse), so the OCI face serialises it as is.
//! Counters a hierarchy does not have stay zero; a controller the cgroup is not under
//! leaves its part empty.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{fs, Cgroup, CgroupDir, CgroupError, Version};

/// Nanoseconds per USER_HZ tick (cpuacct.stat counts ticks of 1/100 s).
const NS_PER_TICK: u64 = 10_000_000;

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: BTreeMap<String, u64>,
    pub network_interfaces: Option<Vec<()>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    pub failcnt: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A number file; `max` (v2) and a missing file read as given.
fn number(path: &Path, missing: u64) -> Result<u64, CgroupError> {
    if !path.exists() {
        return Ok(missing);
    }
    let text = fs::read(path)?;
    match text.trim() {
        "max" => Ok(u64::MAX),
        t => t.parse().map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            content: text.clone(),
        }),
    }
}

/// A flat-keyed file (`key value` lines) as a map; missing is empty.
fn keyed(path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    Ok(fs::read(path)?
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect())
}

/// A cpuset list (`0-2,5`) as numbers.
pub fn parse_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn words(path: &Path) -> Result<Vec<u64>, CgroupError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(fs::read(path)?
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect())
}

impl Cgroup {
    /// The statistics of this cgroup, from every hierarchy it is in.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        for dir in self.dirs.iter().filter(|d| d.path.is_dir()) {
            match dir.version {
                Version::V1 => v1_stats(dir, &mut s)?,
                Version::V2 => v2_stats(&dir.path, &mut s)?,
            }
        }
        Ok(s)
    }
}

fn v1_stats(dir: &CgroupDir, s: &mut Stats) -> Result<(), CgroupError> {
    let p = &dir.path;
    let has = |c: &str| dir.controllers.iter().any(|x| x == c);
    if has("cpuacct") {
        let u = &mut s.cpu.usage;
        u.total = number(&p.join("cpuacct.usage"), 0)?;
        u.percpu = words(&p.join("cpuacct.usage_percpu"))?;
        u.percpu_kernel = words(&p.join("cpuacct.usage_percpu_sys"))?;
        u.percpu_user = words(&p.join("cpuacct.usage_percpu_user"))?;
        let ticks = keyed(&p.join("cpuacct.stat"))?;
        u.user = ticks.get("user").copied().unwrap_or(0) * NS_PER_TICK;
        u.kernel = ticks.get("system").copied().unwrap_or(0) * NS_PER_TICK;
    }
    if has("cpu") {
        let t = keyed(&p.join("cpu.stat"))?;
        s.cpu.throttling = Throttling {
            periods: t.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: t.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: t.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if has("cpuset") {
        s.cpuset.cpus = parse_list(&fs::read(&p.join("cpuset.cpus"))?);
        s.cpuset.mems = parse_list(&fs::read(&p.join("cpuset.mems"))?);
    }
    if has("memory") {
        let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
            Ok(MemoryEntry {
                limit: number(&p.join(format!("{prefix}limit_in_bytes")), 0)?,
                usage: number(&p.join(format!("{prefix}usage_in_bytes")), 0)?,
                max: number(&p.join(format!("{prefix}max_usage_in_bytes")), 0)?,
                failcnt: number(&p.join(format!("{prefix}failcnt")), 0)?,
            })
        };
        let m = &mut s.memory;
        m.usage = entry("memory.")?;
        m.swap = entry("memory.memsw.")?;
        m.kernel = entry("memory.kmem.")?;
        m.kernel_tcp = entry("memory.kmem.tcp.")?;
        m.raw = keyed(&p.join("memory.stat"))?;
        m.cache = m
            .raw
            .get("total_cache")
            .or_else(|| m.raw.get("cache"))
            .copied()
            .unwrap_or(0);
    }
    if has("pids") {
        s.pids.current = number(&p.join("pids.current"), 0)?;
        s.pids.limit = match number(&p.join("pids.max"), 0)? {
            u64::MAX => 0,
            n => n,
        };
    }
    Ok(())
}

fn v2_stats(p: &Path, s: &mut Stats) -> Result<(), CgroupError> {
    let cpu = keyed(&p.join("cpu.stat"))?;
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    let effective = p.join("cpuset.cpus.effective");
    if effective.exists() {
        s.cpuset.cpus = parse_list(&fs::read(&effective)?);
        s.cpuset.mems = parse_list(&fs::read(&p.join("cpuset.mems.effective"))?);
    }
    if p.join("memory.current").exists() {
        let m = &mut s.memory;
        let usage = number(&p.join("memory.current"), 0)?;
        let limit = number(&p.join("memory.max"), u64::MAX)?;
        let events = keyed(&p.join("memory.events"))?;
        m.usage = MemoryEntry {
            limit,
            usage,
            max: number(&p.join("memory.peak"), 0)?,
            failcnt: events.get("max").copied().unwrap_or(0),
        };
        // runc reports swap as memory+swap, v1's sense.
        let swap_usage = number(&p.join("memory.swap.current"), 0)?;
        let swap_limit = number(&p.join("memory.swap.max"), u64::MAX)?;
        m.swap = MemoryEntry {
            limit: limit.saturating_add(swap_limit),
            usage: usage + swap_usage,
            max: 0,
            failcnt: 0,
        };
        m.raw = keyed(&p.join("memory.stat"))?;
        m.cache = m.raw.get("file").copied().unwrap_or(0);
    }
    if p.join("pids.current").exists() {
        s.pids.current = number(&p.join("pids.current"), 0)?;
        s.pids.limit = match number(&p.join("pids.max"), 0)? {
            u64::MAX => 0,
            n => n,
        };
    }
    Ok(())
}
