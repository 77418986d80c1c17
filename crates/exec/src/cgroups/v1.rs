//! Writing limits and reading state in cgroup v1 hierarchies.
//! Each function takes the cgroup's directory in the hierarchy that holds
//! the controller concerned.

use std::io;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::devices::DeviceRule;
use super::fs;
use super::limits::CpuQuota;
use super::CgroupError;

pub(crate) fn set_memory(dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    let limit = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let value = bytes.to_string();
    if !memsw.exists() {
        // No swap accounting on this kernel: only the memory limit exists.
        return fs::write(&limit, &value);
    }
    // memory+swap must stay >= memory, so the order depends on whether the
    // limit goes up or down: try lowering first, and raise memsw first if
    // the kernel refuses. Equal values leave the cgroup no swap.
    match fs::write(&limit, &value) {
        Ok(()) => fs::write(&memsw, &value),
        Err(CgroupError::Write { ref source, .. })
            if source.raw_os_error() == Some(libc::EINVAL) =>
        {
            fs::write(&memsw, &value)?;
            fs::write(&limit, &value)
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn set_cpu_quota(dir: &Path, quota: CpuQuota) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.cfs_period_us"), &quota.period_us.to_string())?;
    fs::write(&dir.join("cpu.cfs_quota_us"), &quota.quota_us.to_string())
}

pub(crate) fn set_cpu_shares(dir: &Path, shares: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("cpu.shares"), &shares.to_string())
}

pub(crate) fn set_pids(dir: &Path, max: u64) -> Result<(), CgroupError> {
    fs::write(&dir.join("pids.max"), &max.to_string())
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
