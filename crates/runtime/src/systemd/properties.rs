//! A container's unit properties for StartTransientUnit and SetUnitProperties: the unit's
//! own (PIDs, Slice, Delegate, ...) and its resources translated where systemd has a
//! property for them, with runc's names per cgroup layout (v1 and hybrid hosts: systemd's
//! legacy names, MemoryLimit, CPUShares, BlockIOWeight; v2: MemoryMax, CPUWeight,
//! IOWeight, AllowedCPUs). Pure data, kept apart from D-Bus so it is tested without a bus.
//! What systemd lacks (swappiness, hugetlb, throttles, cpuset on v1, ...) is written to
//! the unit's cgroup by the cgroupfs writers afterwards (`super::driver`).

use exec::cgroups::{DeviceKind, DeviceRule, Layout, Limits, UNLIMITED};

use super::path::UnitPath;

/// A property's value, in the D-Bus type systemd declares for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `as`
    Strs(Vec<String>),
    /// `au`
    U32s(Vec<u32>),
    /// `ay`: a CPU or memory node mask, bit N of byte N/8 for CPU N.
    Bytes(Vec<u8>),
    /// `a(ss)`: DeviceAllow's (node, access) pairs.
    Pairs(Vec<(String, String)>),
}

pub type Property = (&'static str, Value);

/// systemd's value for "no limit" in its `t` limits (`infinity`).
pub const INFINITY: u64 = u64::MAX;

/// The unit's own properties at StartTransientUnit: the process `pid` in a scope
/// (a new slice takes no process; the process joins it through cgroupfs).
pub fn unit(path: &UnitPath, pid: i32, description: &str, layout: Layout) -> Vec<Property> {
    let mut out: Vec<Property> = vec![("Description", Value::Str(description.to_string()))];
    if path.is_slice() {
        out.push(("Wants", Value::Strs(vec![path.slice.clone()])));
    } else {
        out.push(("Slice", Value::Str(path.slice.clone())));
        out.push(("Delegate", Value::Bool(true)));
        out.push(("PIDs", Value::U32s(vec![pid as u32])));
    }
    out.push(("DefaultDependencies", Value::Bool(false)));
    // Accounting on, so systemd makes the unit's cgroup in those controllers (v1).
    out.push(("MemoryAccounting", Value::Bool(true)));
    out.push(("CPUAccounting", Value::Bool(true)));
    out.push(("TasksAccounting", Value::Bool(true)));
    out.push(if layout == Layout::V2 {
        ("IOAccounting", Value::Bool(true))
    } else {
        ("BlockIOAccounting", Value::Bool(true))
    });
    out
}

/// The resources of `limits` that systemd has a property for on this `layout`.
pub fn resources(limits: &Limits, layout: Layout) -> Vec<Property> {
    let v2 = layout == Layout::V2;
    let inf = |v: u64| if v == UNLIMITED { INFINITY } else { v };
    let mut out: Vec<Property> = Vec::new();
    if let Some(m) = limits.memory_bytes {
        out.push((
            if v2 { "MemoryMax" } else { "MemoryLimit" },
            Value::U64(inf(m)),
        ));
    }
    if v2 {
        if let Some(r) = limits.memory_reservation {
            out.push(("MemoryLow", Value::U64(inf(r))));
        }
        // memory+swap (runc's sense) becomes swap alone, as the v2 writer does.
        let swap = match (limits.memory_bytes, limits.memory_swap) {
            (_, Some(UNLIMITED)) => Some(INFINITY),
            (Some(m), Some(total)) if m != UNLIMITED && total >= m => Some(total - m),
            (Some(_), None) => Some(0),
            _ => None,
        };
        if let Some(s) = swap {
            out.push(("MemorySwapMax", Value::U64(s)));
        }
    }
    if let Some(shares) = limits.cpu_shares {
        out.push(if v2 {
            (
                "CPUWeight",
                Value::U64(exec::cgroups::shares_to_weight(shares)),
            )
        } else {
            ("CPUShares", Value::U64(shares))
        });
    }
    if let Some(q) = limits.cpu_quota {
        out.push((
            "CPUQuotaPerSecUSec",
            Value::U64(quota_per_sec(q.quota_us, q.period_us)),
        ));
        out.push(("CPUQuotaPeriodUSec", Value::U64(q.period_us)));
    } else if let Some(p) = limits.cpu_period {
        out.push(("CPUQuotaPeriodUSec", Value::U64(p)));
    }
    if let Some(p) = limits.pids {
        out.push(("TasksMax", Value::U64(inf(p))));
    }
    if let Some(w) = limits.blkio_weight.filter(|w| (10..=1000).contains(w)) {
        out.push(if v2 {
            ("IOWeight", Value::U64(1 + (u64::from(w) - 10) * 9999 / 990))
        } else {
            ("BlockIOWeight", Value::U64(u64::from(w)))
        });
    }
    if v2 {
        // systemd has no cpuset on v1: there the cgroupfs writer sets it.
        if let Some(mask) = limits.cpuset_cpus.as_deref().and_then(list_to_mask) {
            out.push(("AllowedCPUs", Value::Bytes(mask)));
        }
        if let Some(mask) = limits.cpuset_mems.as_deref().and_then(list_to_mask) {
            out.push(("AllowedMemoryNodes", Value::Bytes(mask)));
        }
    }
    if let Some(rules) = &limits.devices {
        out.extend(devices(rules));
    }
    out
}

/// CPU time per second of wall time, rounded up to systemd's 10 ms steps (systemd keeps
/// it as a percentage), so the quota the kernel gets is never below the one asked for.
/// An unlimited quota is systemd's infinity.
pub fn quota_per_sec(quota_us: u64, period_us: u64) -> u64 {
    if quota_us == UNLIMITED || period_us == 0 {
        return INFINITY;
    }
    let per_sec = quota_us.saturating_mul(1_000_000) / period_us;
    per_sec.div_ceil(10_000).saturating_mul(10_000)
}

/// A cpuset list (`0-2,5`) as systemd's byte mask; None for a list that does not parse
/// (the cgroupfs writer then reports it, naming the file).
pub fn list_to_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask: Vec<u8> = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ),
            None => {
                let n = part.trim().parse::<usize>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi >= 8192 {
            return None;
        }
        for bit in lo..=hi {
            if mask.len() <= bit / 8 {
                mask.resize(bit / 8 + 1, 0);
            }
            mask[bit / 8] |= 1 << (bit % 8);
        }
    }
    Some(mask)
}

/// Device rules as DevicePolicy and DeviceAllow, so that systemd, when it applies the
/// unit's settings again (an update, a daemon-reload), keeps the container's devices
/// closed. Only an allow list (everything denied first, then allows) is expressible;
/// anything else leaves systemd's policy `auto` and the rules to the cgroupfs writer.
pub fn devices(rules: &[DeviceRule]) -> Vec<Property> {
    let deny_all = |r: &DeviceRule| {
        !r.allow && r.kind == DeviceKind::All && r.major.is_none() && r.minor.is_none()
    };
    let Some(start) = rules.iter().rposition(deny_all) else {
        return Vec::new();
    };
    let allows = &rules[start + 1..];
    if allows.iter().any(|r| !r.allow || r.kind == DeviceKind::All) {
        return Vec::new();
    }
    let mut entries = Vec::new();
    for r in allows {
        let (node_dir, class) = match r.kind {
            DeviceKind::Char => ("char", "char"),
            DeviceKind::Block => ("block", "block"),
            DeviceKind::All => unreachable!("refused above"),
        };
        let node = match (r.major, r.minor) {
            (Some(major), Some(minor)) => format!("/dev/{node_dir}/{major}:{minor}"),
            (None, _) => format!("{class}-*"),
            // A whole major: systemd names it by its driver in /proc/devices.
            (Some(major), None) => match driver_name(r.kind, major) {
                Some(name) => format!("{class}-{name}"),
                None => continue,
            },
        };
        entries.push((node, r.access.to_string()));
    }
    vec![
        ("DevicePolicy", Value::Str("strict".into())),
        ("DeviceAllow", Value::Pairs(entries)),
    ]
}

/// The driver of a major number in /proc/devices (its "Character devices:" or "Block
/// devices:" section).
fn driver_name(kind: DeviceKind, major: u32) -> Option<String> {
    let text = std::fs::read_to_string("/proc/devices").ok()?;
    driver_in(&text, kind, major)
}

fn driver_in(text: &str, kind: DeviceKind, major: u32) -> Option<String> {
    let section = match kind {
        DeviceKind::Char => "Character devices:",
        DeviceKind::Block => "Block devices:",
        DeviceKind::All => return None,
    };
    let mut inside = false;
    for line in text.lines() {
        if line.ends_with(':') {
            inside = line == section;
            continue;
        }
        if !inside {
            continue;
        }
        let mut fields = line.split_whitespace();
        if fields.next()?.parse::<u32>().ok() == Some(major) {
            return fields.next().map(str::to_string);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use exec::cgroups::{CpuQuota, DeviceAccess};

    fn get<'a>(props: &'a [Property], name: &str) -> Option<&'a Value> {
        props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn a_scope_s_own_properties() {
        let path = super::super::path::parse(Some("system.slice:p:c"), "c", false).unwrap();
        let props = unit(&path, 42, "vessel-runtime container c", Layout::V2);
        assert_eq!(get(&props, "PIDs"), Some(&Value::U32s(vec![42])));
        assert_eq!(
            get(&props, "Slice"),
            Some(&Value::Str("system.slice".into()))
        );
        assert_eq!(get(&props, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(
            get(&props, "DefaultDependencies"),
            Some(&Value::Bool(false))
        );
        assert!(get(&props, "Wants").is_none());
        let slice = super::super::path::parse(Some("system.slice:p:x.slice"), "c", false).unwrap();
        let props = unit(&slice, 42, "d", Layout::Hybrid);
        assert!(get(&props, "PIDs").is_none() && get(&props, "Delegate").is_none());
        assert_eq!(
            get(&props, "Wants"),
            Some(&Value::Strs(vec!["system.slice".into()]))
        );
    }

    fn limits() -> Limits {
        Limits {
            memory_bytes: Some(64 << 20),
            memory_swap: Some(96 << 20),
            memory_reservation: Some(32 << 20),
            cpu_shares: Some(1024),
            cpu_quota: Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            pids: Some(UNLIMITED),
            cpuset_cpus: Some("0-1,3".into()),
            cpuset_mems: Some("0".into()),
            blkio_weight: Some(500),
            ..Limits::default()
        }
    }

    #[test]
    fn v2_names() {
        let p = resources(&limits(), Layout::V2);
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(32 << 20)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(32 << 20)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(get(&p, "IOWeight"), Some(&Value::U64(1 + 490 * 9999 / 990)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Value::Bytes(vec![0b1011])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Value::Bytes(vec![1])));
        assert!(get(&p, "MemoryLimit").is_none() && get(&p, "CPUShares").is_none());
    }

    #[test]
    fn v1_and_hybrid_names() {
        for layout in [Layout::V1, Layout::Hybrid] {
            let p = resources(&limits(), layout);
            assert_eq!(get(&p, "MemoryLimit"), Some(&Value::U64(64 << 20)));
            assert_eq!(get(&p, "CPUShares"), Some(&Value::U64(1024)));
            assert_eq!(get(&p, "BlockIOWeight"), Some(&Value::U64(500)));
            assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
            // systemd has no cpuset, swap or low on v1: left to the cgroupfs writer.
            for absent in [
                "AllowedCPUs",
                "MemorySwapMax",
                "MemoryLow",
                "MemoryMax",
                "CPUWeight",
            ] {
                assert!(get(&p, absent).is_none(), "{absent}");
            }
        }
        assert!(resources(&Limits::default(), Layout::V1).is_empty());
    }

    #[test]
    fn quota_rounds_up_to_systemd_steps() {
        assert_eq!(quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(quota_per_sec(1_000, 100_000), 10_000);
        assert_eq!(quota_per_sec(UNLIMITED, 100_000), INFINITY);
        assert_eq!(quota_per_sec(200_000, 100_000), 2_000_000);
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(list_to_mask("0"), Some(vec![1]));
        assert_eq!(list_to_mask("8-9"), Some(vec![0, 3]));
        assert_eq!(list_to_mask("0,2,4-5"), Some(vec![0b110101]));
        assert_eq!(list_to_mask("x"), None);
        assert_eq!(list_to_mask("3-1"), None);
    }

    fn rule(allow: bool, kind: DeviceKind, major: Option<u32>, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: DeviceAccess::parse("rwm").unwrap(),
        }
    }

    #[test]
    fn an_allow_list_becomes_a_strict_policy() {
        let rules = vec![
            rule(false, DeviceKind::All, None, None),
            rule(true, DeviceKind::Char, Some(1), Some(3)),
            rule(true, DeviceKind::Block, None, None),
        ];
        let p = devices(&rules);
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        assert_eq!(
            get(&p, "DeviceAllow"),
            Some(&Value::Pairs(vec![
                ("/dev/char/1:3".into(), "rwm".into()),
                ("block-*".into(), "rwm".into())
            ]))
        );
        // A deny after the allows cannot be said to systemd: left to cgroupfs.
        let mut mixed = rules.clone();
        mixed.push(rule(false, DeviceKind::Char, Some(1), Some(3)));
        assert!(devices(&mixed).is_empty());
        assert!(devices(&[rule(true, DeviceKind::All, None, None)]).is_empty());
    }

    #[test]
    fn whole_majors_by_driver_name() {
        let text = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        assert_eq!(
            driver_in(text, DeviceKind::Char, 136).as_deref(),
            Some("pts")
        );
        assert_eq!(driver_in(text, DeviceKind::Block, 8).as_deref(), Some("sd"));
        assert_eq!(driver_in(text, DeviceKind::Block, 1), None);
    }
}
