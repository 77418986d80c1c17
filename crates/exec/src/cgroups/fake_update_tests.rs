//! `update`'s and `events`' v2 paths against a fake unified tree (this host's unified
//! tree holds no controllers, so only here do they run).

use std::fs;
use std::path::{Path, PathBuf};

use super::stats::parse_list;
use super::*;

const FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.controllers",
    "cgroup.subtree_control",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.current",
    "memory.events",
    "memory.stat",
    "cpu.max",
    "cpu.weight",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.mems",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "pids.max",
    "pids.current",
];

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path).unwrap()
}

/// A unified tree offering cpuset, cpu, io, memory and pids, with a container cgroup at
/// `default/c1` (control files made up front, as the kernel would).
fn fake() -> (tempfile::TempDir, PathBuf, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("unified");
    for dir in ["", "default", "default/c1"] {
        let d = root.join(dir);
        fs::create_dir_all(&d).unwrap();
        for f in FILES {
            fs::write(d.join(f), "").unwrap();
        }
    }
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    let cgroups = Cgroups::from_mounts(CgroupMounts {
        v1: vec![],
        unified: Some(root.clone()),
    })
    .unwrap();
    (tmp, root, cgroups)
}

#[test]
fn v2_memory_swap_is_split_and_minus_one_is_max() {
    let (_t, root, cgroups) = fake();
    let c = cgroups.at(Path::new("default/c1")).unwrap();
    let dir = root.join("default/c1");
    c.set_limits(&Limits {
        memory_bytes: Some(32 << 20),
        memory_swap: Some(48 << 20),
        memory_reservation: Some(8 << 20),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(read(dir.join("memory.max")), (32u64 << 20).to_string());
    // v2's swap file holds swap alone: memory+swap less memory.
    assert_eq!(read(dir.join("memory.swap.max")), (16u64 << 20).to_string());
    assert_eq!(read(dir.join("memory.low")), (8u64 << 20).to_string());
    // Swap alone: the difference with the memory limit in force. (Fake files are not
    // truncated by a write, as the kernel's need not be: empty them first.)
    fs::write(dir.join("memory.swap.max"), "").unwrap();
    c.set_limits(&Limits {
        memory_swap: Some(40 << 20),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(read(dir.join("memory.swap.max")), (8u64 << 20).to_string());
    let e = c
        .set_limits(&Limits {
            memory_swap: Some(1 << 20),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("below the memory limit"), "{e}");
    for f in ["memory.max", "memory.swap.max"] {
        fs::write(dir.join(f), "").unwrap();
    }
    c.set_limits(&Limits {
        memory_bytes: Some(UNLIMITED),
        memory_swap: Some(UNLIMITED),
        pids: Some(UNLIMITED),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(read(dir.join("memory.max")), "max");
    assert_eq!(read(dir.join("memory.swap.max")), "max");
    assert_eq!(read(dir.join("pids.max")), "max");
}

#[test]
fn v2_cpu_period_alone_keeps_the_quota_and_rt_is_refused() {
    let (_t, root, cgroups) = fake();
    let c = cgroups.at(Path::new("default/c1")).unwrap();
    let dir = root.join("default/c1");
    fs::write(dir.join("cpu.max"), "20000 10000\n").unwrap();
    c.set_limits(&Limits {
        cpu_period: Some(50_000),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(read(dir.join("cpu.max")).trim(), "20000 50000");
    fs::write(dir.join("cpu.max"), "").unwrap();
    c.set_limits(&Limits {
        cpu_quota: Some(CpuQuota {
            quota_us: UNLIMITED,
            period_us: 100_000,
        }),
        ..Limits::default()
    })
    .unwrap();
    assert_eq!(read(dir.join("cpu.max")), "max 100000");
    let e = c
        .set_limits(&Limits {
            cpu_rt_runtime: Some(1000),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("need cgroup v1"), "{e}");
}

#[test]
fn v2_cpuset_and_io_are_enabled_down_to_the_container_when_asked() {
    let (_t, root, cgroups) = fake();
    // Without the controller in the handle, a cpuset limit names what is missing.
    let plain = cgroups.at(Path::new("default/c1")).unwrap();
    let e = plain
        .set_limits(&Limits {
            cpuset_cpus: Some("0".into()),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("no cpuset controller"), "{e}");
    let c = cgroups
        .with_controller("cpuset")
        .with_controller("blkio")
        .at(Path::new("default/c1"))
        .unwrap();
    c.ensure_controller("cpuset").unwrap();
    for level in ["", "default"] {
        let file = root.join(level).join("cgroup.subtree_control");
        assert_eq!(read(&file), "+cpuset", "{level}");
        fs::write(file, "").unwrap();
    }
    c.ensure_controller("io").unwrap();
    for level in ["", "default"] {
        assert_eq!(read(root.join(level).join("cgroup.subtree_control")), "+io");
    }
    // The container's own cgroup enables nothing for children.
    assert_eq!(read(root.join("default/c1/cgroup.subtree_control")), "");
    c.set_limits(&Limits {
        cpuset_cpus: Some("0-1".into()),
        cpuset_mems: Some("0".into()),
        blkio_weight: Some(500),
        ..Limits::default()
    })
    .unwrap();
    let dir = root.join("default/c1");
    assert_eq!(read(dir.join("cpuset.cpus")), "0-1");
    assert_eq!(read(dir.join("cpuset.mems")), "0");
    // blkio's 10..=1000 mapped onto io.weight's 1..=10000.
    assert_eq!(read(dir.join("io.weight")), "default 4950");
}

#[test]
fn v2_stats_in_runcs_units() {
    let (_t, root, cgroups) = fake();
    let dir = root.join("default/c1");
    fs::write(
        dir.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
    )
    .unwrap();
    fs::write(dir.join("memory.current"), "4096\n").unwrap();
    fs::write(dir.join("memory.max"), "max\n").unwrap();
    fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    fs::write(dir.join("memory.stat"), "anon 1024\nfile 2048\n").unwrap();
    fs::write(dir.join("pids.current"), "2\n").unwrap();
    fs::write(dir.join("pids.max"), "max\n").unwrap();
    fs::write(dir.join("memory.swap.max"), "max\n").unwrap();
    let s = cgroups
        .at(Path::new("default/c1"))
        .unwrap()
        .stats()
        .unwrap();
    assert_eq!(s.cpu.usage.total, 1_500_000);
    assert_eq!(s.cpu.usage.user, 1_000_000);
    assert_eq!(s.cpu.usage.kernel, 500_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.cpu.throttling.throttled_time, 30_000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 3);
    assert_eq!(s.memory.cache, 2048);
    assert_eq!(s.memory.raw["anon"], 1024);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 0);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["cpu"]["throttling"]["throttledPeriods"], 2);
    assert!(json["memory"]["kernelTCP"].is_object());
    assert!(json["network_interfaces"].is_null());
}

#[test]
fn cpuset_lists_expand() {
    assert_eq!(parse_list("0-2,5\n"), [0, 1, 2, 5]);
    assert_eq!(parse_list(""), Vec::<u16>::new());
    assert_eq!(parse_list("3"), [3]);
}

#[test]
fn v2_other_limits_io_max_hugetlb_and_unified() {
    let (_t, root, cgroups) = fake();
    let cgroups = cgroups.with_controller("blkio").with_controller("hugetlb");
    let c = cgroups.at(Path::new("default/c1")).unwrap();
    let dir = root.join("default/c1");
    let limits = |other: OtherLimits| Limits {
        other,
        ..Limits::default()
    };
    c.set_limits(&limits(OtherLimits {
        io_throttles: vec![(8, 0, Throttle::WriteIops, 300)],
        hugepages: vec![("2MB".into(), 4 << 20)],
        unified: vec![("memory.low".into(), "1234".into())],
        ..OtherLimits::default()
    }))
    .unwrap();
    assert_eq!(read(dir.join("io.max")), "8:0 wiops=300");
    assert_eq!(read(dir.join("hugetlb.2MB.max")), (4u64 << 20).to_string());
    assert_eq!(read(dir.join("memory.low")), "1234");
    // v1-only knobs, a file the cgroup lacks, a key that would leave it: refused.
    for (other, says) in [
        (
            OtherLimits {
                memory_swappiness: Some(5),
                ..OtherLimits::default()
            },
            "need cgroup v1",
        ),
        (
            OtherLimits {
                unified: vec![("memory.high".into(), "1".into())],
                ..OtherLimits::default()
            },
            "no memory.high",
        ),
        (
            OtherLimits {
                unified: vec![("../../x.y".into(), "1".into())],
                ..OtherLimits::default()
            },
            "not a controller's interface file",
        ),
        (
            OtherLimits {
                hugepages: vec![("1GB".into(), 1)],
                ..OtherLimits::default()
            },
            "no 1GB huge pages",
        ),
    ] {
        let e = c.set_limits(&limits(other)).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
}

/// A container's processes live in its own cgroup: its controllers are enabled in the
/// levels above it, never in it (v2 refuses processes, EBUSY, in a cgroup whose
/// subtree_control is not empty).
#[test]
fn v2_a_container_gets_its_controllers_from_the_levels_above_it() {
    let (_t, root, cgroups) = fake();
    let dir = root.join("default/c2");
    fs::create_dir_all(&dir).unwrap();
    for f in FILES {
        fs::write(dir.join(f), "").unwrap();
    }
    let limits = Limits {
        memory_bytes: Some(1 << 20),
        ..Limits::default()
    };
    cgroups.create_at(Path::new("default/c2"), &limits).unwrap();
    assert_eq!(read(dir.join("memory.max")), (1u64 << 20).to_string());
    for level in ["", "default"] {
        let enabled = read(root.join(level).join("cgroup.subtree_control"));
        assert!(enabled.contains("+memory"), "{level}: {enabled}");
    }
    assert_eq!(read(dir.join("cgroup.subtree_control")), "");
}
