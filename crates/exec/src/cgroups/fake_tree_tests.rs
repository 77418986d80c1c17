//! The file-writing logic against fake cgroup trees in a temporary directory.
//! The kernel creates control files in every new cgroup; here the tests
//! create them up front and creation of existing directories is a no-op.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.controllers",
    "cgroup.subtree_control",
    "memory.max",
    "memory.swap.max",
    "memory.events",
    "cpu.max",
    "cpu.weight",
    "pids.max",
];

fn fake_cgroup(dir: &Path, files: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for file in files {
        fs::write(dir.join(file), "").unwrap();
    }
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn limits() -> Limits {
    Limits {
        memory_bytes: Some(256 << 20),
        cpu_quota: Some(CpuQuota::from_millicores(1500).unwrap()),
        cpu_shares: Some(512),
        pids: Some(64),
        ..Limits::default()
    }
}

struct FakeV2 {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn fake_v2(app: &str) -> FakeV2 {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("unified");
    for dir in [
        root.clone(),
        root.join("vessel"),
        root.join("vessel/pod1"),
        root.join("vessel/pod1/_init"),
        root.join("vessel/pod1").join(app),
    ] {
        fake_cgroup(&dir, V2_FILES);
    }
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    FakeV2 { _tmp: tmp, root }
}

fn v2_cgroups(root: &Path) -> Cgroups {
    Cgroups::from_mounts(CgroupMounts {
        v1: vec![],
        unified: Some(root.to_path_buf()),
    })
    .unwrap()
}

#[test]
fn v2_pod_enables_controllers_down_to_the_pod_and_writes_limits() {
    let fake = fake_v2("web");
    let root = &fake.root;
    let cgroups = v2_cgroups(root);
    assert_eq!(cgroups.layout(), Layout::V2);
    assert_eq!(
        cgroups.hierarchies()[0].controllers,
        ["cpu", "memory", "pids"]
    );

    let pod = cgroups.create_pod("pod1", &limits()).unwrap();
    for level in ["", "vessel", "vessel/pod1"] {
        assert_eq!(
            read(root.join(level).join("cgroup.subtree_control")),
            "+cpu +memory +pids",
            "{level}"
        );
    }
    // Leaves get no controllers for children.
    assert_eq!(
        read(root.join("vessel/pod1/_init/cgroup.subtree_control")),
        ""
    );
    let pod_dir = root.join("vessel/pod1");
    assert_eq!(read(pod_dir.join("memory.max")), "268435456");
    assert_eq!(read(pod_dir.join("memory.swap.max")), "0");
    assert_eq!(read(pod_dir.join("cpu.max")), "150000 100000");
    assert_eq!(
        read(pod_dir.join("cpu.weight")),
        shares_to_weight(512).to_string()
    );
    assert_eq!(read(pod_dir.join("pids.max")), "64");
    assert_eq!(pod.init.dirs()[0].path, pod_dir.join("_init"));

    let app = cgroups
        .create_app(
            "pod1",
            "web",
            &Limits {
                pids: Some(10),
                ..Limits::default()
            },
        )
        .unwrap();
    assert_eq!(app.relative_path(), Path::new("vessel/pod1/web"));
    assert_eq!(read(pod_dir.join("web/pids.max")), "10");
    assert_eq!(read(pod_dir.join("web/memory.max")), "");
}

#[test]
fn v2_controllers_already_enabled_are_not_written_again() {
    let fake = fake_v2("web");
    let root = &fake.root;
    fs::write(root.join("cgroup.subtree_control"), "cpu io memory pids\n").unwrap();
    fs::write(root.join("vessel/cgroup.subtree_control"), "memory\n").unwrap();
    v2_cgroups(root)
        .create_pod("pod1", &Limits::default())
        .unwrap();
    assert_eq!(
        read(root.join("cgroup.subtree_control")),
        "cpu io memory pids\n"
    );
    assert_eq!(
        read(root.join("vessel/cgroup.subtree_control")),
        "+cpu +pids"
    );
}

#[test]
fn v2_only_offered_controllers_are_used() {
    let fake = fake_v2("web");
    fs::write(fake.root.join("cgroup.controllers"), "memory\n").unwrap();
    let cgroups = v2_cgroups(&fake.root);
    assert_eq!(cgroups.hierarchies()[0].controllers, ["memory"]);
    let err = cgroups
        .create_pod(
            "pod1",
            &Limits {
                pids: Some(5),
                ..Limits::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::ControllerUnavailable {
                controller: "pids",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn v2_oom_kills_from_memory_events() {
    let fake = fake_v2("web");
    let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
    fs::write(fake.root.join("vessel/pod1/web/memory.events"), events).unwrap();
    let app = v2_cgroups(&fake.root).app("pod1", "web").unwrap();
    assert_eq!(app.oom_kills().unwrap(), 1);
    assert!(app.oom_killed().unwrap());
    let init = v2_cgroups(&fake.root).app("pod1", "_init").unwrap();
    fs::write(init.dirs()[0].path.join("memory.events"), "oom_kill 0\n").unwrap();
    assert!(!init.oom_killed().unwrap());
}

#[test]
fn v2_device_rules_need_a_real_cgroup_for_the_bpf_filter() {
    let fake = fake_v2("web");
    let app = v2_cgroups(&fake.root).app("pod1", "web").unwrap();
    let err = app
        .set_limits(&Limits {
            devices: Some(DeviceRule::container_defaults()),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(matches!(err, CgroupError::Bpf { .. }), "{err}");
}

struct FakeV1 {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    mounts: CgroupMounts,
}

/// memory, cpu+cpuacct co-mounted, pids, devices, freezer, a named systemd
/// hierarchy and cpuset (which Vessel leaves alone).
fn fake_v1() -> FakeV1 {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let hierarchies: &[(&str, &[&str], &[&str])] = &[
        (
            "memory",
            &["memory"],
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.oom_control",
            ],
        ),
        (
            "cpu,cpuacct",
            &["cpu", "cpuacct"],
            &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"],
        ),
        ("pids", &["pids"], &["pids.max"]),
        ("devices", &["devices"], &["devices.allow", "devices.deny"]),
        ("freezer", &["freezer"], &["freezer.state"]),
        ("cpuset", &["cpuset"], &[]),
    ];
    let mut mounts = CgroupMounts::default();
    for (dir, controllers, files) in hierarchies {
        let mount_point = base.join(dir);
        for cgroup in [
            "",
            "vessel",
            "vessel/pod1",
            "vessel/pod1/_init",
            "vessel/pod1/db",
        ] {
            fake_cgroup(
                &mount_point.join(cgroup),
                &[&["cgroup.procs"], *files].concat(),
            );
        }
        mounts.v1.push(V1Mount {
            mount_point,
            root: PathBuf::from("/"),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            name: None,
        });
    }
    mounts.v1.push(V1Mount {
        mount_point: base.join("systemd"),
        root: PathBuf::from("/"),
        controllers: vec![],
        name: Some("systemd".to_string()),
    });
    FakeV1 {
        _tmp: tmp,
        base,
        mounts,
    }
}

#[test]
fn v1_pod_gets_limits_in_each_controllers_hierarchy() {
    let fake = fake_v1();
    let cgroups = Cgroups::from_mounts(fake.mounts.clone()).unwrap();
    assert_eq!(cgroups.layout(), Layout::V1);
    // cpuset, freezer and the named hierarchy are not used.
    assert_eq!(cgroups.hierarchies().len(), 4);

    let limits = Limits {
        devices: Some(DeviceRule::container_defaults()),
        ..limits()
    };
    let pod = cgroups.create_pod("pod1", &limits).unwrap();
    assert_eq!(pod.pod.dirs().len(), 4);
    let dir = |h: &str, file: &str| fake.base.join(h).join("vessel/pod1").join(file);
    assert_eq!(read(dir("memory", "memory.limit_in_bytes")), "268435456");
    assert_eq!(
        read(dir("memory", "memory.memsw.limit_in_bytes")),
        "268435456"
    );
    assert_eq!(read(dir("cpu,cpuacct", "cpu.cfs_period_us")), "100000");
    assert_eq!(read(dir("cpu,cpuacct", "cpu.cfs_quota_us")), "150000");
    assert_eq!(read(dir("cpu,cpuacct", "cpu.shares")), "512");
    assert_eq!(read(dir("pids", "pids.max")), "64");
    assert_eq!(read(dir("devices", "devices.deny")), "a");
    // Each rule is one write; the fake file keeps the last one.
    assert_eq!(read(dir("devices", "devices.allow")), "c 136:* rwm");

    let app = cgroups
        .create_app("pod1", "db", &Limits::default())
        .unwrap();
    assert_eq!(app.dirs()[0].path, fake.base.join("memory/vessel/pod1/db"));
    assert!(matches!(
        cgroups.create_app("pod1", POD_INIT_CGROUP, &Limits::default()),
        Err(CgroupError::InvalidName { .. })
    ));
}

#[test]
fn v1_oom_kills_from_oom_control() {
    let fake = fake_v1();
    let cgroups = Cgroups::from_mounts(fake.mounts.clone()).unwrap();
    let app = cgroups.app("pod1", "db").unwrap();
    let control = fake.base.join("memory/vessel/pod1/db/memory.oom_control");
    fs::write(&control, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
    assert_eq!(app.oom_kills().unwrap(), 3);
    // Kernels before 4.13 have no counter; under_oom is all there is.
    fs::write(&control, "oom_kill_disable 0\nunder_oom 1\n").unwrap();
    assert!(app.oom_killed().unwrap());
    fs::write(&control, "garbage").unwrap();
    assert!(matches!(app.oom_kills(), Err(CgroupError::Parse { .. })));
}

#[test]
fn missing_controller_is_an_error_naming_it() {
    let mut fake = fake_v1();
    fake.mounts.v1.retain(|m| m.controllers != ["pids"]);
    let cgroups = Cgroups::from_mounts(fake.mounts.clone()).unwrap();
    let err = cgroups
        .app("pod1", "db")
        .unwrap()
        .set_limits(&Limits {
            pids: Some(1),
            ..Limits::default()
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no pids controller is available for cgroup vessel/pod1/db"
    );
}

#[test]
fn hybrid_uses_the_v1_hierarchies_only() {
    let fake = fake_v1();
    let unified = fake.base.join("unified");
    fake_cgroup(&unified, V2_FILES);
    fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
    let mut mounts = fake.mounts.clone();
    mounts.unified = Some(unified.clone());
    let cgroups = Cgroups::from_mounts(mounts).unwrap();
    assert_eq!(cgroups.layout(), Layout::Hybrid);
    assert!(cgroups
        .hierarchies()
        .iter()
        .all(|h| h.version == Version::V1));

    let pod = cgroups.create_pod("pod1", &limits()).unwrap();
    assert_eq!(pod.pod.dirs().len(), 4);
    // Nothing created in the unified tree.
    assert!(!unified.join("vessel").exists());
    assert_eq!(
        read(fake.base.join("memory/vessel/pod1/memory.limit_in_bytes")),
        "268435456"
    );
}

/// This machine's layout: hugetlb only in the unified tree. An OCI container asking for
/// huge page limits gets a v2 cgroup beside its v1 ones, with hugetlb enabled down to it.
#[test]
fn hybrid_takes_hugetlb_from_the_unified_tree_when_asked() {
    let fake = fake_v1();
    let unified = fake.base.join("unified");
    for dir in ["", "vessel-runtime", "vessel-runtime/c1"] {
        fake_cgroup(
            &unified.join(dir),
            &[V2_FILES, &["hugetlb.2MB.max"]].concat(),
        );
    }
    fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
    let mut mounts = fake.mounts.clone();
    mounts.unified = Some(unified.clone());
    let plain = Cgroups::from_mounts(mounts).unwrap();
    let cgroups = plain.clone().with_controller("hugetlb");
    let v2: Vec<_> = cgroups
        .hierarchies()
        .iter()
        .filter(|h| h.version == Version::V2)
        .collect();
    assert_eq!(v2.len(), 1);
    assert_eq!(v2[0].controllers, ["hugetlb"]);
    // Not asked, not used: no v2 cgroup per container for nothing.
    assert!(plain.hierarchies().iter().all(|h| h.version == Version::V1));

    let limits = Limits {
        other: OtherLimits {
            hugepages: vec![("2MB".into(), 4 << 20)],
            ..OtherLimits::default()
        },
        ..Limits::default()
    };
    let c = cgroups
        .create_at(Path::new("/vessel-runtime/c1"), &limits)
        .unwrap();
    assert_eq!(
        read(unified.join("vessel-runtime/c1/hugetlb.2MB.max")),
        (4u64 << 20).to_string()
    );
    for level in ["", "vessel-runtime"] {
        assert_eq!(
            read(unified.join(level).join("cgroup.subtree_control")),
            "+hugetlb",
            "{level}"
        );
    }
    // The container's own processes live in its cgroup: v2 would refuse them (EBUSY) there
    // with controllers enabled below it.
    assert_eq!(
        read(unified.join("vessel-runtime/c1/cgroup.subtree_control")),
        ""
    );
    assert!(fake.base.join("memory/vessel-runtime/c1").is_dir());
    assert_eq!(
        c.dir_of("hugetlb"),
        Some(unified.join("vessel-runtime/c1").as_path())
    );
}

#[test]
fn removal_is_children_first_everywhere_and_repeatable() {
    // Real cgroupfs lets rmdir remove a cgroup despite its control files;
    // here the tree is bare directories.
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let mut mounts = CgroupMounts::default();
    for (dir, controllers) in [("memory", vec!["memory"]), ("cpuset", vec!["cpuset"])] {
        fs::create_dir_all(base.join(dir).join("vessel/pod1/app/nested")).unwrap();
        fs::create_dir_all(base.join(dir).join("vessel/pod2")).unwrap();
        mounts.v1.push(V1Mount {
            mount_point: base.join(dir),
            root: PathBuf::from("/"),
            controllers: controllers.into_iter().map(String::from).collect(),
            name: None,
        });
    }
    let cgroups = Cgroups::from_mounts(mounts).unwrap();
    assert_eq!(cgroups.pods_with_cgroups().unwrap(), ["pod1", "pod2"]);
    // Leftovers are searched in every hierarchy, used by Vessel or not.
    let leftovers = cgroups.find_pod_leftovers("pod1").unwrap();
    assert_eq!(leftovers.len(), 2);

    cgroups.remove_pod("pod1").unwrap();
    for dir in ["memory", "cpuset"] {
        assert!(!base.join(dir).join("vessel/pod1").exists());
        assert!(base.join(dir).join("vessel/pod2").exists());
    }
    assert!(cgroups.find_pod_leftovers("pod1").unwrap().is_empty());
    cgroups.remove_pod("pod1").unwrap();
    assert_eq!(cgroups.pods_with_cgroups().unwrap(), ["pod2"]);
    cgroups.app("pod2", "gone").unwrap().remove().unwrap();
}

#[test]
fn names_and_parent_are_checked() {
    let fake = fake_v1();
    let cgroups = Cgroups::from_mounts(fake.mounts.clone()).unwrap();
    for bad in ["", ".", "..", "a/b", "x\0y"] {
        assert!(cgroups.pod(bad).is_err(), "{bad:?}");
        assert!(cgroups.app("pod1", bad).is_err(), "{bad:?}");
    }
    assert!(cgroups.clone().with_parent("/abs").is_err());
    assert!(cgroups.clone().with_parent("a/../b").is_err());
    assert!(cgroups.clone().with_parent("").is_err());
    let nested = cgroups.with_parent("machine.slice/vessel").unwrap();
    assert_eq!(
        nested.pod("u").unwrap().dirs()[0].path,
        fake.base.join("memory/machine.slice/vessel/u")
    );
}

#[test]
fn no_cgroup_fs_is_an_error() {
    assert!(matches!(
        Cgroups::from_mounts(CgroupMounts::default()),
        Err(CgroupError::NoCgroupFs)
    ));
}

/// The path an open descriptor refers to.
fn fd_path(fd: &std::os::fd::OwnedFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
}

#[test]
fn v2_join_fds_are_the_directory_to_clone_into_or_cgroup_procs() {
    let fake = fake_v2("web");
    let cgroups = v2_cgroups(&fake.root);
    let pod = cgroups.create_pod("pod1", &Limits::default()).unwrap();
    let init = fake.root.join("vessel/pod1/_init");
    let join = pod.init.open_join_fds(true).unwrap();
    assert!(join.tasks.is_empty() && join.v2_procs.is_none());
    assert_eq!(fd_path(join.v2_dir.as_ref().unwrap()), init);
    let join = pod.init.open_join_fds(false).unwrap();
    assert!(join.tasks.is_empty() && join.v2_dir.is_none());
    assert_eq!(
        fd_path(join.v2_procs.as_ref().unwrap()),
        init.join("cgroup.procs")
    );
}

#[test]
fn v1_join_fds_are_each_hierarchys_tasks() {
    let fake = fake_v1();
    for mount in &fake.mounts.v1 {
        let init = mount.mount_point.join("vessel/pod1/_init");
        if init.is_dir() {
            fs::write(init.join("tasks"), "").unwrap();
        }
    }
    let cgroups = Cgroups::from_mounts(fake.mounts.clone()).unwrap();
    let pod = cgroups.create_pod("pod1", &Limits::default()).unwrap();
    let join = pod.init.open_join_fds(true).unwrap();
    assert!(join.v2_dir.is_none() && join.v2_procs.is_none());
    let mut paths: Vec<PathBuf> = join.tasks.iter().map(fd_path).collect();
    paths.sort();
    let mut expected: Vec<PathBuf> = ["cpu,cpuacct", "devices", "memory", "pids"]
        .iter()
        .map(|h| fake.base.join(h).join("vessel/pod1/_init/tasks"))
        .collect();
    expected.sort();
    assert_eq!(paths, expected);
}
