//! Applying [`Limits`] to a cgroup, each limit in the hierarchy that has its controller
//! (at creation, and again for `vessel-runtime update`).

use super::{v1, v2, Cgroup, CgroupError, Limits, Version};

impl Cgroup {
    /// Applies `limits`, each in the hierarchy that has its controller.
    pub fn set_limits(&self, limits: &Limits) -> Result<(), CgroupError> {
        if limits.memory_bytes.is_some() || limits.memory_swap.is_some() {
            let dir = self.dir_with("memory")?;
            match dir.version {
                Version::V1 => v1::set_memory(&dir.path, limits.memory_bytes, limits.memory_swap)?,
                Version::V2 => v2::set_memory(&dir.path, limits.memory_bytes, limits.memory_swap)?,
            }
        }
        if let Some(bytes) = limits.memory_reservation {
            let dir = self.dir_with("memory")?;
            match dir.version {
                Version::V1 => v1::set_memory_reservation(&dir.path, bytes)?,
                Version::V2 => v2::set_memory_reservation(&dir.path, bytes)?,
            }
        }
        if let Some(quota) = limits.cpu_quota {
            let dir = self.dir_with("cpu")?;
            match dir.version {
                Version::V1 => v1::set_cpu_quota(&dir.path, quota)?,
                Version::V2 => v2::set_cpu_quota(&dir.path, quota)?,
            }
        } else if let Some(period) = limits.cpu_period {
            let dir = self.dir_with("cpu")?;
            match dir.version {
                Version::V1 => v1::set_cpu_period(&dir.path, period)?,
                Version::V2 => v2::set_cpu_period(&dir.path, period)?,
            }
        }
        if let Some(shares) = limits.cpu_shares {
            let dir = self.dir_with("cpu")?;
            match dir.version {
                Version::V1 => v1::set_cpu_shares(&dir.path, shares)?,
                Version::V2 => v2::set_cpu_shares(&dir.path, shares)?,
            }
        }
        if limits.cpu_rt_period.is_some() || limits.cpu_rt_runtime.is_some() {
            let dir = self.dir_with("cpu")?;
            if dir.version == Version::V2 {
                return Err(CgroupError::InvalidLimit(
                    "real-time cpu limits (cpu-rt-period, cpu-rt-runtime) need cgroup v1".into(),
                ));
            }
            v1::set_cpu_rt(&dir.path, limits.cpu_rt_period, limits.cpu_rt_runtime)?;
        }
        if limits.cpuset_cpus.is_some() || limits.cpuset_mems.is_some() {
            // Same file names in v1 and v2.
            let dir = self.dir_with("cpuset")?;
            v1::set_cpuset(
                &dir.path,
                limits.cpuset_cpus.as_deref(),
                limits.cpuset_mems.as_deref(),
            )?;
        }
        if let Some(max) = limits.pids {
            let dir = self.dir_with("pids")?;
            match dir.version {
                Version::V1 => v1::set_pids(&dir.path, max)?,
                Version::V2 => v2::set_pids(&dir.path, max)?,
            }
        }
        if let Some(weight) = limits.blkio_weight {
            if !(10..=1000).contains(&weight) {
                return Err(CgroupError::InvalidLimit(format!(
                    "blkio weight {weight}: must be 10 to 1000"
                )));
            }
            match self.dir_with("blkio") {
                Ok(dir) => v1::set_blkio_weight(&dir.path, weight)?,
                Err(_) => v2::set_io_weight(&self.dir_with("io")?.path, weight)?,
            }
        }
        if let Some(rules) = &limits.devices {
            // v1's devices controller if mounted, else v2's eBPF filter,
            // which needs no controller.
            let v1_devices = self
                .dirs
                .iter()
                .find(|d| d.version == Version::V1 && d.has_controller("devices"));
            let unified = self.dirs.iter().find(|d| d.version == Version::V2);
            match (v1_devices, unified) {
                (Some(dir), _) => v1::set_devices(&dir.path, rules)?,
                (None, Some(dir)) => v2::set_devices(&dir.path, rules)?,
                (None, None) => {
                    return Err(CgroupError::ControllerUnavailable {
                        controller: "devices",
                        path: self.relative.clone(),
                    })
                }
            }
        }
        self.set_other_limits(&limits.other)
    }
}
