//! Resource limits for one cgroup, independent of the cgroup version.

use super::devices::DeviceRule;
use super::CgroupError;

/// The CFS bandwidth period Vessel uses: 100 ms, the kernel's default.
pub const DEFAULT_CPU_PERIOD_US: u64 = 100_000;
/// The kernel refuses quotas below 1 ms.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// A value meaning "no limit" in the limits that may be lifted again (memory, swap,
/// reservation, pids, cpu quota): v1 files get `-1`, v2 files `max`.
pub const UNLIMITED: u64 = u64::MAX;

/// Limits to apply to a cgroup; `None` leaves that setting untouched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Hard memory limit in bytes. Swap is disabled for the cgroup as well
    /// where the kernel offers the knob (v1 `memsw`, v2 `memory.swap.max`).
    pub memory_bytes: Option<u64>,
    /// CPU bandwidth limit.
    pub cpu_quota: Option<CpuQuota>,
    /// Relative CPU weight in v1 `cpu.shares` units (2..=262144, 1024 is the
    /// kernel default); converted for v2 by [`shares_to_weight`].
    pub cpu_shares: Option<u64>,
    /// Maximum number of tasks (processes and threads).
    pub pids: Option<u64>,
    /// Device access rules in order; later rules override earlier ones.
    /// See [`DeviceRule::container_defaults`].
    pub devices: Option<Vec<DeviceRule>>,
    /// Memory plus swap in bytes (runc's and v1's sense); without it a memory limit
    /// leaves the cgroup no swap.
    pub memory_swap: Option<u64>,
    /// Memory soft limit (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`).
    pub memory_reservation: Option<u64>,
    /// A new CFS period alone, the quota kept (when `cpu_quota` is not given).
    pub cpu_period: Option<u64>,
    /// Real-time scheduling budget (v1 only, kernels with RT group scheduling).
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs and memory nodes allowed (cpuset lists such as `0-1,3`).
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// Block I/O weight (10..=1000).
    pub blkio_weight: Option<u16>,
    /// The rest of the runtime spec's resources (`other_limits.rs`).
    pub other: OtherLimits,
}

/// Which per-device I/O limit (v1 file name part, v2 `io.max` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

/// Resources fewer containers ask for: each is written where its controller is, and
/// refused naming the controller where this host has none (never silently dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtherLimits {
    /// `blockIO.throttle*Device`: (major, minor, kind, rate).
    pub io_throttles: Vec<(i64, i64, Throttle, u64)>,
    /// `blockIO.weightDevice`: (major, minor, weight).
    pub io_device_weights: Vec<(i64, i64, u16)>,
    /// `memory.swappiness` (v1).
    pub memory_swappiness: Option<u64>,
    /// `memory.disableOOMKiller` (v1).
    pub oom_kill_disabled: bool,
    /// `hugepageLimits`: (page size as the kernel names it, such as `2MB`; bytes).
    pub hugepages: Vec<(String, u64)>,
    /// `network.classID` (v1 net_cls).
    pub net_class_id: Option<u32>,
    /// `network.priorities` (v1 net_prio): (interface, priority).
    pub net_priorities: Vec<(String, u32)>,
    /// `rdma`: (device, hca_handles, hca_objects).
    pub rdma: Vec<(String, Option<u32>, Option<u32>)>,
    /// `unified`: v2 interface file -> value, written as they are (v2 only).
    pub unified: Vec<(String, String)>,
}

/// An OCI signed limit: positive is a value, negative is unlimited, 0 is unset.
fn oci_limit(v: Option<i64>) -> Option<u64> {
    match v? {
        0 => None,
        n if n < 0 => Some(UNLIMITED),
        n => Some(n as u64),
    }
}

/// CPU time allowed per period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuQuota {
    /// A limit in thousandths of a CPU: 500 is half a CPU, 2000 two CPUs.
    pub fn from_millicores(millicores: u64) -> Result<Self, CgroupError> {
        if millicores == 0 {
            return Err(CgroupError::InvalidLimit(
                "cpu limit of 0 millicores".to_string(),
            ));
        }
        // 1000 millicores use the whole period on one CPU.
        let quota_us = millicores
            .checked_mul(DEFAULT_CPU_PERIOD_US / 1000)
            .ok_or_else(|| {
                CgroupError::InvalidLimit(format!("cpu limit of {millicores} millicores"))
            })?;
        Ok(CpuQuota {
            quota_us: quota_us.max(MIN_CPU_QUOTA_US),
            period_us: DEFAULT_CPU_PERIOD_US,
        })
    }
}

/// Converts v1 `cpu.shares` to v2 `cpu.weight`.
///
/// The two scales are mapped linearly onto each other by their end points:
/// shares run from 2 to 262144 and weights from 1 to 10000, so
/// `weight = 1 + (shares - 2) * (10000 - 1) / (262144 - 2)`.
/// This keeps the order and the extremes (the convention the OCI runtimes
/// share), though the defaults do not line up: 1024 shares give weight 39,
/// not the v2 default of 100.
pub fn shares_to_weight(shares: u64) -> u64 {
    const MIN_SHARES: u64 = 2;
    const MAX_SHARES: u64 = 262_144;
    const MIN_WEIGHT: u64 = 1;
    const MAX_WEIGHT: u64 = 10_000;
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    MIN_WEIGHT + (shares - MIN_SHARES) * (MAX_WEIGHT - MIN_WEIGHT) / (MAX_SHARES - MIN_SHARES)
}

impl Limits {
    /// The limits of an OCI runtime spec's `linux.resources`.
    pub fn from_oci(resources: &oci_spec::runtime::LinuxResources) -> Result<Self, CgroupError> {
        let mut limits = Limits::default();
        if let Some(memory) = resources.memory() {
            limits.memory_bytes = oci_limit(memory.limit());
            limits.memory_swap = oci_limit(memory.swap());
            limits.memory_reservation = oci_limit(memory.reservation());
        }
        if let Some(cpu) = resources.cpu() {
            match oci_limit(cpu.quota()) {
                Some(quota) => {
                    limits.cpu_quota = Some(CpuQuota {
                        quota_us: quota.max(MIN_CPU_QUOTA_US),
                        period_us: cpu.period().unwrap_or(DEFAULT_CPU_PERIOD_US),
                    })
                }
                None => limits.cpu_period = cpu.period().filter(|&p| p > 0),
            }
            limits.cpu_shares = cpu.shares().filter(|&s| s > 0);
            limits.cpu_rt_period = cpu.realtime_period().filter(|&p| p > 0);
            limits.cpu_rt_runtime = cpu.realtime_runtime().filter(|&r| r != 0);
            limits.cpuset_cpus = cpu.cpus().clone().filter(|c| !c.is_empty());
            limits.cpuset_mems = cpu.mems().clone().filter(|m| !m.is_empty());
        }
        if let Some(pids) = resources.pids() {
            limits.pids = oci_limit(Some(pids.limit()));
        }
        if let Some(blkio) = resources.block_io() {
            limits.blkio_weight = blkio.weight().filter(|&w| w > 0);
        }
        limits.other = OtherLimits::from_oci(resources);
        if let Some(devices) = resources.devices() {
            limits.devices = Some(
                devices
                    .iter()
                    .map(DeviceRule::from_oci)
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millicores_to_quota() {
        assert_eq!(
            CpuQuota::from_millicores(500).unwrap(),
            CpuQuota {
                quota_us: 50_000,
                period_us: 100_000
            }
        );
        assert_eq!(CpuQuota::from_millicores(2500).unwrap().quota_us, 250_000);
        // Below the kernel minimum the quota is raised to 1 ms.
        assert_eq!(CpuQuota::from_millicores(1).unwrap().quota_us, 1_000);
        assert!(CpuQuota::from_millicores(0).is_err());
        assert!(CpuQuota::from_millicores(u64::MAX).is_err());
    }

    #[test]
    fn shares_to_weight_maps_the_end_points_linearly() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
        // Monotonic.
        let mut last = 0;
        for shares in (2..262_144).step_by(997) {
            let weight = shares_to_weight(shares);
            assert!(weight >= last);
            last = weight;
        }
    }

    #[test]
    fn limits_from_oci_resources() {
        use oci_spec::runtime::{
            LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
        };
        let resources = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(20_000i64)
                    .period(50_000u64)
                    .shares(512u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
            .build()
            .unwrap();
        let limits = Limits::from_oci(&resources).unwrap();
        assert_eq!(limits.memory_bytes, Some(64 << 20));
        assert_eq!(
            limits.cpu_quota,
            Some(CpuQuota {
                quota_us: 20_000,
                period_us: 50_000
            })
        );
        assert_eq!(limits.cpu_shares, Some(512));
        assert_eq!(limits.pids, Some(100));
        assert_eq!(limits.devices, None);
        assert_eq!(limits.memory_swap, None);
    }

    #[test]
    fn oci_negative_limits_lift_and_zero_leaves_unset() {
        let resources: oci_spec::runtime::LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":-1,"swap":0,"reservation":1048576},
                "cpu":{"period":20000,"quota":0,"cpus":"0","mems":"","realtimeRuntime":0},
                "pids":{"limit":-1},"blockIO":{"weight":300}}"#,
        )
        .unwrap();
        let limits = Limits::from_oci(&resources).unwrap();
        assert_eq!(limits.memory_bytes, Some(UNLIMITED));
        assert_eq!(limits.memory_swap, None);
        assert_eq!(limits.memory_reservation, Some(1 << 20));
        assert_eq!(limits.cpu_quota, None);
        assert_eq!(limits.cpu_period, Some(20_000));
        assert_eq!(limits.cpu_rt_runtime, None);
        assert_eq!(limits.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(limits.cpuset_mems, None);
        assert_eq!(limits.pids, Some(UNLIMITED));
        assert_eq!(limits.blkio_weight, Some(300));
    }
}
