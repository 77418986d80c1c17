//! Writing limits and reading state in cgroup v1 hierarchies.
//! Each function takes the cgroup's directory in the hierarchy that holds
//! the controller concerned.

use std::io;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::devices::DeviceRule;
use super::fs;
use super::limits::{CpuQuota, UNLIMITED};
use super::CgroupError;

/// A limit as v1 files take it: `-1` is unlimited.
fn value(v: u64) -> String {
    if v == UNLIMITED {
        "-1".into()
    } else {
        v.to_string()
    }
}

/// Sets the memory limit and memory+swap. Without `swap`, memory+swap follows the
/// memory limit (the cgroup gets no swap); without swap accounting on the kernel there is
/// no swap limit to set.
pub(crate) fn set_memory(
    dir: &Path,
    memory: Option<u64>,
    swap: Option<u64>,
) -> Result<(), CgroupError> {
    let limit = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    if !memsw.exists() {
        return match memory {
            Some(m) => fs::write(&limit, &value(m)),
            None => Ok(()),
        };
    }
    let Some(memory) = memory else {
        return fs::write(&memsw, &value(swap.unwrap_or(UNLIMITED)));
    };
    let total = value(swap.unwrap_or(memory));
    // memory+swap must stay >= memory, so the order depends on whether the
    // limits go up or down: try lowering first, and raise memsw first if
    // the kernel refuses.
    match fs::write(&limit, &value(memory)) {
        Ok(()) => fs::write(&memsw, &total),
        Err(CgroupError::Write { ref source, .. })
            if source.raw_os_error() == Some(libc::EINVAL) =>
        {
            fs::write(&memsw, &total)?;
            fs::write(&limit, &value(memory))
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn set_memory_reservation(dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("memory.soft_limit_in_bytes"), &value(bytes))
}

pub(crate) fn set_cpu_quota(dir: &Path, quota: CpuQuota) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.cfs_period_us"), &quota.period_us.to_string())?;
    fs::write(&dir.join("cpu.cfs_quota_us"), &value(quota.quota_us))
}

pub(crate) fn set_cpu_period(dir: &Path, period_us: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.cfs_period_us"), &period_us.to_string())
}

/// Real-time budget; only kernels built with RT group scheduling have the files.
pub(crate) fn set_cpu_rt(
    dir: &Path,
    period_us: Option<u64>,
    runtime_us: Option<i64>,
) -> Result<(), CgroupError> {
    let period = dir.join("cpu.rt_period_us");
    if !period.exists() {
        return Err(CgroupError::InvalidLimit(format!(
            "real-time cpu limits: this kernel has no real-time group scheduling ({} is missing)",
            period.display()
        )));
    }
    if let Some(p) = period_us {
        fs::write(&period, &p.to_string())?;
    }
    if let Some(r) = runtime_us {
        fs::write(&dir.join("cpu.rt_runtime_us"), &r.to_string())?;
    }
    Ok(())
}

/// CPUs and memory nodes (the same files in v1 and v2).
pub(crate) fn set_cpuset(
    dir: &Path,
    cpus: Option<&str>,
    mems: Option<&str>,
) -> Result<(), CgroupError> {
    if let Some(c) = cpus {
        fs::write(&dir.join("cpuset.cpus"), c)?;
    }
    if let Some(m) = mems {
        fs::write(&dir.join("cpuset.mems"), m)?;
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and a process cannot
/// join it so: it gets its parent's.
pub(crate) fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if fs::read(&dir.join(file))?.trim().is_empty() {
            fs::write(&dir.join(file), fs::read(&parent.join(file))?.trim())?;
        }
    }
    Ok(())
}

/// The weight file of the I/O scheduler in use (CFQ's `blkio.weight`, BFQ's
/// `blkio.bfq.weight`).
pub(crate) fn set_blkio_weight(dir: &Path, weight: u16) -> Result<(), CgroupError> {
    for file in ["blkio.weight", "blkio.bfq.weight"] {
        let path = dir.join(file);
        if path.exists() {
            return fs::write(&path, &weight.to_string());
        }
    }
    Err(CgroupError::InvalidLimit(format!(
        "blkio weight: no I/O scheduler here takes weights (no blkio.weight or blkio.bfq.weight in {})",
        dir.display()
    )))
}

pub(crate) fn set_cpu_shares(dir: &Path, shares: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.shares"), &shares.to_string())
}

pub(crate) fn set_pids(dir: &Path, max: u64) -> Result<(), CgroupError> {
    let v = if max == UNLIMITED {
        "max".into()
    } else {
        max.to_string()
    };
    fs::write(&dir.join("pids.max"), &v)
}

/// Applies the rules in order. The kernel refuses to change a cgroup's
/// default ("a" in devices.deny) once it has children, so rules must be set
/// before child cgroups are created.
pub(crate) fn set_devices(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(&dir.join(file), &rule.v1_entry())?;
    }
    Ok(())
}

/// OOM kills seen by this memory cgroup: the `oom_kill` counter of
/// `memory.oom_control` (kernel 4.13+); on older kernels, 1 if the cgroup is
/// under OOM right now, since nothing else records past kills.
pub(crate) fn oom_kills(dir: &Path) -> Result<u64, CgroupError> {
    let path = dir.join("memory.oom_control");
    let text = fs::read(&path)?;
    fs::keyed_value(&text, "oom_kill")
        .or_else(|| fs::keyed_value(&text, "under_oom"))
        .ok_or(CgroupError::Parse {
            path,
            content: text,
        })
}

/// Sets `freezer.state` to `state` and waits until the kernel reports it.
pub(crate) fn set_freezer_state(dir: &Path, state: &'static str) -> Result<(), CgroupError> {
    let path = dir.join("freezer.state");
    match fs::write(&path, state) {
        Err(CgroupError::Write { ref source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(())
        }
        other => other?,
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = fs::read(&path)?;
        if now.trim() == state {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CgroupError::Freeze { path, state });
        }
        // Retrying the write nudges tasks that were mid-fork into the state.
        let _ = fs::write(&path, state);
        thread::sleep(Duration::from_millis(5));
    }
}
