//! Writing limits and reading state in the cgroup v2 (unified) tree.

use std::io;
use std::path::Path;

use super::devices::DeviceRule;
use super::limits::{shares_to_weight, CpuQuota, UNLIMITED};
use super::{bpf, fs, CgroupError};

/// Enables `wanted` controllers for the children of `dir`. Only missing ones
/// are written, so an already-prepared root is not touched at all. A cgroup
/// that holds processes cannot enable controllers for children (v2's "no
/// internal processes" rule; the tree's root is exempt).
pub(crate) fn enable_controllers(dir: &Path, wanted: &[String]) -> Result<(), CgroupError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    let current = fs::read(&path)?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| !current.split_whitespace().any(|e| e == c.as_str()))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    match fs::write(&path, &missing.join(" ")) {
        Err(CgroupError::Write { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
            Err(CgroupError::InternalProcesses { path })
        }
        other => other,
    }
}

/// A limit as v2 files take it.
fn value(v: u64) -> String {
    if v == UNLIMITED {
        "max".into()
    } else {
        v.to_string()
    }
}

/// Sets `memory.max` and `memory.swap.max`. `swap` is memory+swap (runc's sense, which
/// v2 splits): the swap file gets the difference; without it the cgroup gets no swap.
pub(crate) fn set_memory(
    dir: &Path,
    memory: Option<u64>,
    swap: Option<u64>,
) -> Result<(), CgroupError> {
    if let Some(m) = memory {
        fs::write(&dir.join("memory.max"), &value(m))?;
    }
    let swap_file = dir.join("memory.swap.max");
    if !swap_file.exists() {
        return Ok(());
    }
    let swap_only = match (swap, memory) {
        (None, _) => 0,
        (Some(UNLIMITED), _) => UNLIMITED,
        (Some(total), memory) => {
            let memory = match memory {
                Some(m) => m,
                None => {
                    let path = dir.join("memory.max");
                    let text = fs::read(&path)?;
                    match text.trim() {
                        "max" => UNLIMITED,
                        t => t.parse().map_err(|_| CgroupError::Parse {
                            path,
                            content: text.clone(),
                        })?,
                    }
                }
            };
            if memory == UNLIMITED || total < memory {
                return Err(CgroupError::InvalidLimit(format!(
                    "memory+swap {total} is below the memory limit {}",
                    value(memory)
                )));
            }
            total - memory
        }
    };
    fs::write(&swap_file, &value(swap_only))
}

pub(crate) fn set_memory_reservation(dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("memory.low"), &value(bytes))
}

pub(crate) fn set_cpu_quota(dir: &Path, quota: CpuQuota) -> Result<(), CgroupError> {
    fs::write(
        &dir.join("cpu.max"),
        &format!("{} {}", value(quota.quota_us), quota.period_us),
    )
}

/// A new period, the quota kept.
pub(crate) fn set_cpu_period(dir: &Path, period_us: u64) -> Result<(), CgroupError> {
    let path = dir.join("cpu.max");
    let now = fs::read(&path)?;
    let quota = now.split_whitespace().next().unwrap_or("max").to_string();
    fs::write(&path, &format!("{quota} {period_us}"))
}

/// `io.weight` takes weights 1..=10000 where blkio took 10..=1000: the scale converted
/// as runc does; BFQ's `io.bfq.weight` takes blkio's scale.
pub(crate) fn set_io_weight(dir: &Path, weight: u16) -> Result<(), CgroupError> {
    let bfq = dir.join("io.bfq.weight");
    if bfq.exists() {
        return fs::write(&bfq, &weight.to_string());
    }
    let converted = 1 + (u64::from(weight) - 10) * 9999 / 990;
    fs::write(&dir.join("io.weight"), &format!("default {converted}"))
}

pub(crate) fn set_cpu_shares(dir: &Path, shares: u64) -> Result<(), CgroupError> {
    fs::write(
        &dir.join("cpu.weight"),
        &shares_to_weight(shares).to_string(),
    )
}

pub(crate) fn set_pids(dir: &Path, max: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("pids.max"), &value(max))
}

pub(crate) fn set_devices(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    bpf::attach_device_filter(dir, &bpf::device_filter_program(rules))
}

/// OOM kills in this cgroup and below, from `memory.events`.
pub(crate) fn oom_kills(dir: &Path) -> Result<u64, CgroupError> {
    let path = dir.join("memory.events");
    let text = fs::read(&path)?;
    fs::keyed_value(&text, "oom_kill").ok_or(CgroupError::Parse {
        path,
        content: text,
    })
}

/// Kills every process in the cgroup and below through `cgroup.kill`
/// (kernel 5.14+). Returns false when the kernel has no such file.
pub(crate) fn kill(dir: &Path) -> Result<bool, CgroupError> {
    let path = dir.join("cgroup.kill");
    match fs::write(&path, "1") {
        Ok(()) => Ok(true),
        Err(CgroupError::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
