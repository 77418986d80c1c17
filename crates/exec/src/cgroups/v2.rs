//! Writing limits and reading state in the cgroup v2 (unified) tree.

use std::io;
use std::path::Path;

use super::devices::DeviceRule;
use super::limits::{shares_to_weight, CpuQuota};
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

pub(crate) fn set_memory(dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("memory.max"), &bytes.to_string())?;
    let swap = dir.join("memory.swap.max");
    if swap.exists() {
        fs::write(&swap, "0")?;
    }
    Ok(())
}

pub(crate) fn set_cpu_quota(dir: &Path, quota: CpuQuota) -> Result<(), CgroupError> {
    fs::write(
        &dir.join("cpu.max"),
        &format!("{} {}", quota.quota_us, quota.period_us),
    )
}

pub(crate) fn set_cpu_shares(dir: &Path, shares: u64) -> Result<(), CgroupError> {
    fs::write(
        &dir.join("cpu.weight"),
        &shares_to_weight(shares).to_string(),
    )
}

pub(crate) fn set_pids(dir: &Path, max: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("pids.max"), &max.to_string())
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
