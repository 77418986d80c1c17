//! `update` and `events` through the binary, read back from the container's cgroup on
//! this host's v1 hierarchies.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::kit::Env;

fn cg(controller: &str, id: &str, file: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("vessel-runtime")
        .join(id)
        .join(file)
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn pid_of(env: &Env, id: &str) -> i32 {
    env.state(id)["pid"].as_i64().unwrap() as i32
}

#[test]
fn update_by_flags_and_by_file_reaches_the_cgroup() {
    let env = Env::new(&["sleep", "1000"]);
    let id = "ubf-c1";
    env.run(&["run", "--detach", id]).ok();
    env.run(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--memory-reservation",
        "16m",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "20000",
        "--pids-limit",
        "50",
        id,
    ])
    .ok();
    assert_eq!(read(cg("memory", id, "memory.limit_in_bytes")), "33554432");
    assert_eq!(
        read(cg("memory", id, "memory.memsw.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(
        read(cg("memory", id, "memory.soft_limit_in_bytes")),
        "16777216"
    );
    assert_eq!(read(cg("cpu", id, "cpu.shares")), "512");
    assert_eq!(read(cg("cpu", id, "cpu.cfs_period_us")), "50000");
    assert_eq!(read(cg("cpu", id, "cpu.cfs_quota_us")), "20000");
    assert_eq!(read(cg("pids", id, "pids.max")), "50");

    // A file in the runtime spec's shape (here on stdin), -1 lifting the limits.
    let file = env.bundle.path().join("resources.json");
    std::fs::write(
        &file,
        r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":-1},"pids":{"limit":-1}}"#,
    )
    .unwrap();
    let st = env
        .command(&["update", "-r", "-", id])
        .stdin(std::fs::File::open(&file).unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    let unlimited: u64 = read(cg("memory", id, "memory.limit_in_bytes"))
        .parse()
        .unwrap();
    assert!(unlimited > 1 << 60, "{unlimited}");
    assert_eq!(read(cg("cpu", id, "cpu.cfs_quota_us")), "-1");
    assert_eq!(read(cg("pids", id, "pids.max")), "max");

    // The limit holds: with 3 pids allowed, the third sleep cannot be forked.
    env.run(&["update", "--pids-limit", "3", id]).ok();
    let r = env.run(&["exec", id, "sh", "-c", "sleep 5 & sleep 5 & sleep 5 & wait"]);
    assert_ne!(r.code, Some(0), "{}", r.shown);

    // The state keeps what was applied, as runc's does.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.root.path().join(id).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["config"]["linux"]["resources"]["pids"]["limit"], 3);
    env.run(&["delete", "--force", id]).ok();
    env.assert_gone(id);
}

#[test]
fn update_of_cpuset_moves_the_container_into_a_cpuset_cgroup() {
    let env = Env::new(&["sleep", "1000"]);
    let id = "ucpuset-c1";
    env.run(&["run", "--detach", id]).ok();
    // Created without cpuset limits: not in a cpuset cgroup of its own.
    assert!(!cg("cpuset", id, "").exists());
    let pid = pid_of(&env, id);
    env.run(&["update", "--cpuset-cpus", "0", id]).ok();
    assert_eq!(read(cg("cpuset", id, "cpuset.cpus")), "0");
    let procs = read(cg("cpuset", id, "cgroup.procs"));
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Cpus_allowed_list:\t0\n"), "{status}");
    // exec'd processes join it too.
    let r = env
        .run(&["exec", id, "grep", "Cpus_allowed_list", "/proc/self/status"])
        .ok();
    assert_eq!(r.stdout.split_whitespace().nth(1), Some("0"), "{}", r.shown);
    env.run(&["delete", "--force", id]).ok();
    env.assert_gone(id);

    // Asked for at create, the cpuset cgroup is made with it.
    env.edit_config(|c| c["linux"]["resources"]["cpu"] = serde_json::json!({"cpus": "1"}));
    env.run(&["run", "--detach", "ucpuset-c2"]).ok();
    assert_eq!(read(cg("cpuset", "ucpuset-c2", "cpuset.cpus")), "1");
    env.run(&["delete", "--force", "ucpuset-c2"]).ok();
    env.assert_gone("ucpuset-c2");
}

#[test]
fn update_refuses_bad_values_and_states_clearly() {
    let env = Env::new(&["sleep", "1000"]);
    let id = "urefuse-c1";
    env.run(&["update", "--memory", "1m", id])
        .fails_with("container does not exist");
    env.run(&["run", "--detach", id]).ok();
    let before = read(cg("memory", id, "memory.limit_in_bytes"));
    env.run(&["update", "--memory", "lots", id])
        .fails_with("lots\\\" for flag --memory");
    let file = env.bundle.path().join("bad.json");
    std::fs::write(&file, "{not json").unwrap();
    env.run(&["update", "-r", file.to_str().unwrap(), id])
        .fails_with(&format!("resources {}", file.display()));
    env.run(&["update", "-r", "/nonexistent/r.json", id])
        .fails_with("/nonexistent/r.json");
    env.run(&["update", "--blkio-weight", "5", id])
        .fails_with("blkio weight 5: must be 10 to 1000");
    env.run(&["update", "--l3-cache-schema", "L3:0=f", id])
        .fails_with("not supported");
    // Nothing was changed by the refusals.
    assert_eq!(read(cg("memory", id, "memory.limit_in_bytes")), before);
    env.run(&["kill", id, "KILL"]).ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.status(id) != "stopped" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    env.run(&["update", "--memory", "1m", id])
        .fails_with("container not running");
}

#[test]
fn events_stats_once_in_runcs_shape() {
    let env = Env::new(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000",
    ]);
    env.edit_config(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 20});
    });
    let id = "evstats-c1";
    env.run(&["run", "--detach", id]).ok();
    std::thread::sleep(Duration::from_millis(300));
    let r = env.run(&["events", "--stats", id]).ok();
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.shown);
    let e: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], id);
    let d = &e["data"];
    assert_eq!(d["memory"]["usage"]["limit"], 64 << 20, "{d}");
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{d}");
    assert!(d["memory"]["raw"]["rss"].is_u64(), "{d}");
    assert_eq!(d["pids"]["current"], 1, "{d}");
    assert_eq!(d["pids"]["limit"], 20, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0, "{d}");
    assert!(d["cpu"]["usage"]["percpu"].is_array(), "{d}");
    env.run(&["events", "--stats", "nosuch"])
        .fails_with("container does not exist");
    env.run(&["events", "--interval", "soon", id])
        .fails_with("--interval");
}

#[test]
fn events_stream_stats_then_an_oom_kill_and_end_with_the_container() {
    // A container that grows past its memory limit after a while.
    let env = Env::new(&["sh", "-c", "sleep 1; exec tail /dev/zero"]);
    env.edit_config(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 16 << 20});
    });
    let id = "evoom-c1";
    env.run(&["run", "--detach", id]).ok();
    let mut child = env
        .command(&["events", "--interval", "200ms", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut kinds = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["id"], id, "{line}");
        kinds.push(e["type"].as_str().unwrap().to_string());
    }
    // The stream ended by itself once the container stopped.
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    let stats = kinds.iter().filter(|k| *k == "stats").count();
    assert!(stats >= 2, "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "oom"), "{kinds:?}");
    assert_eq!(env.status(id), "stopped");
}

/// The first block device's major:minor (the kernel takes throttles only for a real one).
fn a_block_device() -> String {
    let mut devs: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram")
        })
        .map(|e| read(e.path().join("dev")))
        .collect();
    devs.sort();
    devs.into_iter().next().expect("a block device")
}

/// The runtime spec's less common resources: written where this host has the
/// controller (per-device I/O limits, swappiness, the OOM killer switch: v1 here), at
/// create and by update; refused naming the controller or field where it has none
/// (net_cls, rdma, unified on v1), the container left as it was.
#[test]
fn other_resources_are_written_or_refused_by_name() {
    let dev = a_block_device();
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let env = Env::new(&["sleep", "1000"]);
    env.edit_config(|c| {
        c["linux"]["resources"] = serde_json::json!({
            "blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]},
            "memory": {"swappiness": 10, "disableOOMKiller": true},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
        });
    });
    let id = "orawor-1";
    env.run(&["run", "--detach", id]).ok();
    // Huge pages: v1's hierarchy where mounted, else (this hybrid kind of host) the
    // unified tree, where the container gets a v2 cgroup of its own for them.
    let hugetlb = if Path::new("/sys/fs/cgroup/hugetlb").is_dir() {
        cg("hugetlb", id, "hugetlb.2MB.limit_in_bytes")
    } else {
        cg("unified", id, "hugetlb.2MB.max")
    };
    assert_eq!(read(hugetlb.clone()), "4194304");
    assert_eq!(
        read(cg("blkio", id, "blkio.throttle.read_bps_device")),
        format!("{dev} 1048576")
    );
    assert_eq!(read(cg("memory", id, "memory.swappiness")), "10");
    assert!(read(cg("memory", id, "memory.oom_control")).contains("oom_kill_disable 1"));
    // update -r: a write limit in IOPS over the read limit.
    let file = env.bundle.path().join("io.json");
    std::fs::write(
        &file,
        format!(r#"{{"blockIO":{{"throttleWriteIOPSDevice":[{{"major":{major},"minor":{minor},"rate":200}}]}}}}"#),
    )
    .unwrap();
    env.run(&["update", "-r", file.to_str().unwrap(), id]).ok();
    assert_eq!(
        read(cg("blkio", id, "blkio.throttle.write_iops_device")),
        format!("{dev} 200")
    );
    // What this host has no controller or hierarchy for is refused, naming it.
    for (json, says) in [
        (
            r#"{"network":{"classID":1048577}}"#,
            "no net_cls controller",
        ),
        (
            r#"{"rdma":{"mlx5_1":{"hcaHandles":3}}}"#,
            "no rdma controller",
        ),
        (
            // (no v2 cgroup, or one with hugetlb only: memory.high is missing either way)
            r#"{"unified":{"memory.high":"1G"}}"#,
            "linux.resources.unified",
        ),
    ] {
        std::fs::write(&file, json).unwrap();
        env.run(&["update", "-r", file.to_str().unwrap(), id])
            .fails_with(says);
    }
    assert_eq!(env.status(id), "running");
    env.run(&["delete", "--force", id]).ok();
    env.assert_gone(id);
    assert!(!hugetlb.parent().unwrap().exists(), "{}", hugetlb.display());
}
