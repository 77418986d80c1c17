//! The runtime spec's less common resources ([`OtherLimits`]): per-device I/O limits and
//! weights, swappiness and the OOM killer switch, hugetlb, net_cls and net_prio, rdma,
//! and `unified` (v2 files by name). Each is written in the hierarchy that has its
//! controller; where this host has none, the error names the controller and the field,
//! as runc's does, rather than the limit being dropped.

use std::path::Path;

use super::limits::{OtherLimits, Throttle, UNLIMITED};
use super::{fs, Cgroup, CgroupError, Version};

impl OtherLimits {
    pub fn from_oci(r: &oci_spec::runtime::LinuxResources) -> OtherLimits {
        let mut o = OtherLimits::default();
        if let Some(b) = r.block_io() {
            for (list, kind) in [
                (b.throttle_read_bps_device(), Throttle::ReadBps),
                (b.throttle_write_bps_device(), Throttle::WriteBps),
                (b.throttle_read_iops_device(), Throttle::ReadIops),
                (b.throttle_write_iops_device(), Throttle::WriteIops),
            ] {
                for d in list.iter().flatten() {
                    o.io_throttles.push((d.major(), d.minor(), kind, d.rate()));
                }
            }
            for d in b.weight_device().iter().flatten() {
                if let Some(w) = d.weight() {
                    o.io_device_weights.push((d.major(), d.minor(), w));
                }
            }
        }
        if let Some(m) = r.memory() {
            o.memory_swappiness = m.swappiness();
            o.oom_kill_disabled = m.disable_oom_killer().unwrap_or(false);
        }
        for h in r.hugepage_limits().iter().flatten() {
            let limit = if h.limit() < 0 {
                UNLIMITED
            } else {
                h.limit() as u64
            };
            o.hugepages.push((h.page_size().clone(), limit));
        }
        if let Some(n) = r.network() {
            o.net_class_id = n.class_id();
            for p in n.priorities().iter().flatten() {
                o.net_priorities.push((p.name().clone(), p.priority()));
            }
        }
        for (dev, l) in r.rdma().iter().flatten() {
            o.rdma.push((dev.clone(), l.hca_handles(), l.hca_objects()));
        }
        o.rdma.sort();
        for (k, v) in r.unified().iter().flatten() {
            o.unified.push((k.clone(), v.clone()));
        }
        o.unified.sort();
        o
    }

    /// The controllers these limits need beyond Vessel's own (for a container's
    /// hierarchies; v1 names).
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.io_throttles.is_empty() || !self.io_device_weights.is_empty() {
            out.push("blkio");
        }
        if !self.hugepages.is_empty() {
            out.push("hugetlb");
        }
        if self.net_class_id.is_some() {
            out.push("net_cls");
        }
        if !self.net_priorities.is_empty() {
            out.push("net_prio");
        }
        if !self.rdma.is_empty() {
            out.push("rdma");
        }
        out
    }
}

fn throttle_v1_file(kind: Throttle) -> &'static str {
    match kind {
        Throttle::ReadBps => "blkio.throttle.read_bps_device",
        Throttle::WriteBps => "blkio.throttle.write_bps_device",
        Throttle::ReadIops => "blkio.throttle.read_iops_device",
        Throttle::WriteIops => "blkio.throttle.write_iops_device",
    }
}

fn throttle_v2_key(kind: Throttle) -> &'static str {
    match kind {
        Throttle::ReadBps => "rbps",
        Throttle::WriteBps => "wbps",
        Throttle::ReadIops => "riops",
        Throttle::WriteIops => "wiops",
    }
}

/// A `unified` key names one interface file of the cgroup: `controller.knob`, nothing
/// that could leave the directory, nothing of the cgroup's own structure.
fn check_unified_key(key: &str) -> Result<(), CgroupError> {
    let ok = !key.is_empty()
        && key.contains('.')
        && !key.starts_with("cgroup.")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        && !key.contains("..");
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidLimit(format!(
            "linux.resources.unified: {key:?} is not a controller's interface file"
        )))
    }
}

impl Cgroup {
    /// Writes `o`, each in the hierarchy that has its controller.
    pub(crate) fn set_other_limits(&self, o: &OtherLimits) -> Result<(), CgroupError> {
        if !o.io_throttles.is_empty() || !o.io_device_weights.is_empty() {
            match self.dir_with("blkio") {
                Ok(dir) => set_io_v1(&dir.path, o)?,
                Err(_) => set_io_v2(&self.dir_with("io")?.path, o)?,
            }
        }
        if o.memory_swappiness.is_some() || o.oom_kill_disabled {
            let dir = self.dir_with("memory")?;
            if dir.version == Version::V2 {
                return Err(CgroupError::InvalidLimit(
                    "memory.swappiness and memory.disableOOMKiller need cgroup v1 (v2 has neither)"
                        .into(),
                ));
            }
            if let Some(s) = o.memory_swappiness {
                if s > 100 {
                    return Err(CgroupError::InvalidLimit(format!(
                        "memory.swappiness {s}: must be 0 to 100"
                    )));
                }
                fs::write(&dir.path.join("memory.swappiness"), &s.to_string())?;
            }
            if o.oom_kill_disabled {
                fs::write(&dir.path.join("memory.oom_control"), "1")?;
            }
        }
        if !o.hugepages.is_empty() {
            let dir = self.dir_with("hugetlb")?;
            for (size, limit) in &o.hugepages {
                if !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(CgroupError::InvalidLimit(format!(
                        "hugepageLimits: page size {size:?}"
                    )));
                }
                let (file, value) = match dir.version {
                    Version::V1 => (
                        format!("hugetlb.{size}.limit_in_bytes"),
                        if *limit == UNLIMITED {
                            "-1".to_string()
                        } else {
                            limit.to_string()
                        },
                    ),
                    Version::V2 => (
                        format!("hugetlb.{size}.max"),
                        if *limit == UNLIMITED {
                            "max".to_string()
                        } else {
                            limit.to_string()
                        },
                    ),
                };
                let path = dir.path.join(&file);
                if !path.exists() {
                    return Err(CgroupError::InvalidLimit(format!(
                        "hugepageLimits: this kernel has no {size} huge pages ({} is missing)",
                        path.display()
                    )));
                }
                fs::write(&path, &value)?;
            }
        }
        if let Some(id) = o.net_class_id {
            let dir = self.dir_with("net_cls")?;
            fs::write(&dir.path.join("net_cls.classid"), &id.to_string())?;
        }
        if !o.net_priorities.is_empty() {
            let dir = self.dir_with("net_prio")?;
            for (iface, prio) in &o.net_priorities {
                fs::write(
                    &dir.path.join("net_prio.ifpriomap"),
                    &format!("{iface} {prio}"),
                )?;
            }
        }
        if !o.rdma.is_empty() {
            let dir = self.dir_with("rdma")?;
            for (dev, handles, objects) in &o.rdma {
                let mut line = dev.clone();
                if let Some(h) = handles {
                    line.push_str(&format!(" hca_handle={h}"));
                }
                if let Some(n) = objects {
                    line.push_str(&format!(" hca_object={n}"));
                }
                fs::write(&dir.path.join("rdma.max"), &line)?;
            }
        }
        if !o.unified.is_empty() {
            let dir = self
                .dirs
                .iter()
                .find(|d| d.version == Version::V2 && !d.controllers.is_empty())
                .ok_or_else(|| {
                    CgroupError::InvalidLimit(
                        "linux.resources.unified needs the container in a cgroup v2 hierarchy with its controllers (this host puts containers in v1 hierarchies)".into(),
                    )
                })?;
            for (key, value) in &o.unified {
                check_unified_key(key)?;
                let path = dir.path.join(key);
                if !path.exists() {
                    return Err(CgroupError::InvalidLimit(format!(
                        "linux.resources.unified: no {key} in {} (controller not enabled?)",
                        dir.path.display()
                    )));
                }
                fs::write(&path, value)?;
            }
        }
        Ok(())
    }
}

fn set_io_v1(dir: &Path, o: &OtherLimits) -> Result<(), CgroupError> {
    for (major, minor, kind, rate) in &o.io_throttles {
        fs::write(
            &dir.join(throttle_v1_file(*kind)),
            &format!("{major}:{minor} {rate}"),
        )?;
    }
    if !o.io_device_weights.is_empty() {
        let file = ["blkio.weight_device", "blkio.bfq.weight_device"]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| {
                CgroupError::InvalidLimit(format!(
                    "blockIO.weightDevice: no I/O scheduler here takes weights (no blkio.weight_device or blkio.bfq.weight_device in {})",
                    dir.display()
                ))
            })?;
        for (major, minor, weight) in &o.io_device_weights {
            fs::write(&file, &format!("{major}:{minor} {weight}"))?;
        }
    }
    Ok(())
}

fn set_io_v2(dir: &Path, o: &OtherLimits) -> Result<(), CgroupError> {
    for (major, minor, kind, rate) in &o.io_throttles {
        fs::write(
            &dir.join("io.max"),
            &format!("{major}:{minor} {}={rate}", throttle_v2_key(*kind)),
        )?;
    }
    if !o.io_device_weights.is_empty() {
        let file = ["io.weight", "io.bfq.weight"]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .ok_or_else(|| {
                CgroupError::InvalidLimit(format!(
                    "blockIO.weightDevice: no io.weight or io.bfq.weight in {}",
                    dir.display()
                ))
            })?;
        for (major, minor, weight) in &o.io_device_weights {
            fs::write(&file, &format!("{major}:{minor} {weight}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> oci_spec::runtime::LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn read_from_the_spec_with_the_controllers_they_need() {
        let o = OtherLimits::from_oci(&resources(
            r#"{"blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":100}],
                "weightDevice":[{"major":8,"minor":0,"weight":500}]},
               "memory":{"swappiness":10,"disableOOMKiller":true},
               "hugepageLimits":[{"pageSize":"2MB","limit":-1}],
               "network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]},
               "rdma":{"mlx5_1":{"hcaHandles":3}},
               "unified":{"memory.high":"1G"}}"#,
        ));
        assert_eq!(
            o.io_throttles,
            vec![
                (8, 0, Throttle::ReadBps, 1_048_576),
                (8, 16, Throttle::WriteIops, 100)
            ]
        );
        assert_eq!(o.io_device_weights, vec![(8, 0, 500)]);
        assert_eq!((o.memory_swappiness, o.oom_kill_disabled), (Some(10), true));
        assert_eq!(o.hugepages, vec![("2MB".to_string(), UNLIMITED)]);
        assert_eq!(o.net_class_id, Some(1_048_577));
        assert_eq!(o.net_priorities, vec![("eth0".to_string(), 5)]);
        assert_eq!(o.rdma, vec![("mlx5_1".to_string(), Some(3), None)]);
        assert_eq!(o.unified, vec![("memory.high".into(), "1G".into())]);
        assert_eq!(
            o.controllers(),
            vec!["blkio", "hugetlb", "net_cls", "net_prio", "rdma"]
        );
        assert!(OtherLimits::from_oci(&resources("{}"))
            .controllers()
            .is_empty());
    }

    #[test]
    fn unified_keys_stay_in_the_cgroup() {
        for good in [
            "memory.high",
            "io.max",
            "cpu.weight.nice",
            "hugetlb.2MB.max",
        ] {
            check_unified_key(good).unwrap();
        }
        for bad in [
            "",
            "../memory.high",
            "memory/../../x",
            "cgroup.procs",
            "cgroup.subtree_control",
            "noDot",
            "memory..high",
        ] {
            assert!(check_unified_key(bad).is_err(), "{bad}");
        }
    }
}
