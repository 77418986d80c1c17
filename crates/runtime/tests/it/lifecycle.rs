//! A container's life through the runtime's commands, as containerd drives it.

use crate::kit::Env;

#[test]
fn create_start_kill_delete() {
    let env = Env::new(&["sleep", "1000"]);
    let pid_file = env.bundle.path().join("init.pid");
    env.run(&[
        "create",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "cskd-c1",
    ])
    .ok();
    let state = env.state("cskd-c1");
    assert_eq!(state["status"], "created");
    assert_eq!(state["bundle"], env.bundle.path().to_str().unwrap());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(state["pid"], pid);
    // The process waits as the sealed binary, not yet the program.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(!comm.starts_with("sleep"), "{comm}");
    env.run(&["start", "cskd-c1"]).ok();
    assert_eq!(env.status("cskd-c1"), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    let listed = env.run(&["list", "--format", "json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(list[0]["id"], "cskd-c1");
    assert_eq!(list[0]["status"], "running");
    let ps = env.run(&["ps", "--format", "json", "cskd-c1"]).ok();
    assert_eq!(ps.stdout.trim(), format!("[{pid}]"));
    env.run(&["pause", "cskd-c1"]).ok();
    assert_eq!(env.status("cskd-c1"), "paused");
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(st.contains("State:\tS") || st.contains("State:\tD"), "{st}");
    env.run(&["resume", "cskd-c1"]).ok();
    assert_eq!(env.status("cskd-c1"), "running");
    env.run(&["kill", "cskd-c1", "KILL"]).ok();
    for _ in 0..200 {
        if env.status("cskd-c1") == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(env.status("cskd-c1"), "stopped");
    assert_eq!(env.state("cskd-c1")["pid"], 0);
    env.run(&["delete", "cskd-c1"]).ok();
    env.run(&["state", "cskd-c1"])
        .fails_with("container does not exist");
    env.assert_gone("cskd-c1");
}

#[test]
fn run_gives_the_containers_status_and_output() {
    let env = Env::new(&["sh", "-c", "echo out; echo err >&2; hostname; exit 3"]);
    let r = env.run(&["run", "rgtcsa-r1"]);
    assert_eq!(r.code, Some(3), "{}", r.shown);
    assert_eq!(r.stdout, "out\nvessel\n");
    assert_eq!(r.stderr, "err\n");
    env.assert_gone("rgtcsa-r1");
    // --keep leaves it stopped; --detach returns while it runs.
    env.run(&["run", "--keep", "rgtcsa-r2"]);
    assert_eq!(env.status("rgtcsa-r2"), "stopped");
    env.run(&["delete", "rgtcsa-r2"]).ok();
    env.edit_config(|c| c["process"]["args"] = serde_json::json!(["sleep", "1000"]));
    env.run(&["run", "--detach", "rgtcsa-r3"]).ok();
    assert_eq!(env.status("rgtcsa-r3"), "running");
    env.run(&["delete", "--force", "rgtcsa-r3"]).ok();
    env.assert_gone("rgtcsa-r3");
}

#[test]
fn the_spec_is_honoured() {
    let env = Env::new(&["sh", "-c", "id -u; id -g; id -G; ulimit -n; cat /proc/self/status | grep CapEff; umask; pwd; echo $HOME; cat /proc/sys/net/ipv4/ip_forward; awk '$2==\"/\"{split($4,o,\",\");print o[1]}' /proc/mounts"]);
    env.edit_config(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 7], "umask": 63});
        c["process"]["cwd"] = "/tmp".into();
        c["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        c["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
        c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
    });
    let r = env.run(&["run", "tsih-s1"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    assert_eq!(lines[2], "1000 5 7");
    assert_eq!(lines[3], "256");
    // A non-root uid keeps no effective capability.
    assert_eq!(lines[4], "CapEff:\t0000000000000000");
    assert_eq!(lines[5], "0077");
    assert_eq!(lines[6], "/tmp");
    assert_eq!(lines[7], "/home/app");
    assert_eq!(lines[8], "1");
    assert_eq!(lines[9], "ro", "the root is read-only: {}", r.shown);
}

/// `process.scheduler` and `process.ioPriority`: the container's process runs with them.
#[test]
fn scheduler_and_io_priority_are_applied() {
    // Fields 19 (nice) and 41 (policy) of /proc/PID/stat, counted after the command name:
    // the container's process (pid 1), then a child of it (cut reading its own).
    let script = "for p in 1 self; do cut -d')' -f2 /proc/$p/stat | awk '{print $17, $39}'; done";
    let env = Env::new(&["sh", "-c", script]);
    env.edit_config(|c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] =
            serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let r = env.run(&["run", "saipa-1"]).ok();
    // SCHED_BATCH is policy 3; children inherit it.
    assert_eq!(r.stdout, "7 3\n7 3\n", "{}", r.shown);
    // A real-time policy and reset-on-fork, in the spec's spelling: children run
    // SCHED_OTHER. A real-time task needs real-time time in its cgroup (v1 here), which
    // a cgroup takes from its parent's: one directly under the root, which has it.
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = "/vessel-test-saipa-2".into();
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
        c["linux"]["resources"]["cpu"] = serde_json::json!({"realtimeRuntime": 10000, "realtimePeriod": 1000000});
    });
    let r = env.run(&["run", "saipa-2"]).ok();
    assert_eq!(r.stdout, "0 1\n0 0\n", "{}", r.shown);
    // What the policy does not take is refused before the process runs, naming it.
    env.edit_config(|c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_FIFO"});
    });
    env.run(&["run", "saipa-3"])
        .fails_with("SchedFifo needs a priority in 1..99");
    env.assert_gone("saipa-3");
}

#[test]
fn hooks_run_with_the_state() {
    let env = Env::new(&["true"]);
    let log = env.bundle.path().join("hooks.log");
    let hook = |name: &str| serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} $(cat) >> {}", log.display())]}]);
    env.edit_config(|c| {
        c["hooks"] = serde_json::json!({
            "prestart": hook("prestart"),
            "createRuntime": hook("createRuntime"),
            "poststart": hook("poststart"),
            "poststop": hook("poststop"),
        });
    });
    env.run(&["run", "hrwts-h1"]).ok();
    let text = std::fs::read_to_string(&log).unwrap();
    let kinds: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        kinds,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    assert!(text.contains("\"id\":\"hrwts-h1\""), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"status\":\"creating\""),
        "{text}"
    );
    // A failing createRuntime hook fails the create and leaves nothing behind.
    env.edit_config(|c| {
        c["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/false"}]})
    });
    env.run(&["create", "hrwts-h2"])
        .fails_with("createRuntime hook /bin/false failed");
    env.assert_gone("hrwts-h2");
}

#[test]
fn logs_in_runcs_formats() {
    let env = Env::new(&["true"]);
    let log = env.bundle.path().join("log.json");
    let r = env.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert_eq!(r.code, Some(1));
    // With --log, stderr has the plain message and the file a JSON line.
    assert_eq!(r.stderr, "container does not exist\n");
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container does not exist");
    let r = env.run(&["state", "nope"]);
    assert!(
        r.stderr.starts_with("time=\"")
            && r.stderr
                .ends_with(" level=error msg=\"container does not exist\"\n"),
        "{}",
        r.shown
    );
}
