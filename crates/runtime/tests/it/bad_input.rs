//! Bad input and faults: each refused with a message naming what and where, exit status
//! 1, and nothing left behind (no state, no cgroup, other containers untouched).

use crate::kit::{busybox_rootfs, Env};

#[test]
fn bundles_that_cannot_run() {
    let env = Env::new(&["true"]);
    let good = std::fs::read(env.config_path()).unwrap();
    // No config.json.
    std::fs::remove_file(env.config_path()).unwrap();
    env.run(&["create", "btcr-b1"])
        .fails_with("JSON specification file config.json not found in bundle");
    // Not JSON.
    std::fs::write(env.config_path(), b"{\"ociVersion\": ").unwrap();
    env.run(&["create", "btcr-b1"])
        .fails_with("config.json: not a valid JSON runtime spec");
    // Another version.
    std::fs::write(env.config_path(), &good).unwrap();
    env.edit_config(|c| c["ociVersion"] = "2.0.0".into());
    env.run(&["create", "btcr-b1"])
        .fails_with("2.0.0\\\" is not supported (vessel-runtime reads 1.0.0 to 1.2.x)");
    // A rootfs that is missing, or a symlink leading out of the bundle.
    std::fs::write(env.config_path(), &good).unwrap();
    env.edit_config(|c| c["root"]["path"] = "nope".into());
    env.run(&["create", "btcr-b1"]).fails_with("rootfs");
    let outside = tempfile::tempdir().unwrap();
    busybox_rootfs(outside.path());
    std::os::unix::fs::symlink(outside.path(), env.bundle.path().join("escape")).unwrap();
    env.edit_config(|c| c["root"]["path"] = "escape".into());
    env.run(&["create", "btcr-b1"])
        .fails_with("leads out of the bundle");
    // An empty command.
    std::fs::write(env.config_path(), &good).unwrap();
    env.edit_config(|c| c["process"]["args"] = serde_json::json!([]));
    env.run(&["create", "btcr-b1"])
        .fails_with("process.args: empty");
    // A program the root does not have: refused at create, as runc does.
    std::fs::write(env.config_path(), &good).unwrap();
    env.edit_config(|c| c["process"]["args"] = serde_json::json!(["no-such-program"]));
    env.run(&["create", "btcr-b1"])
        .fails_with("executable file not found in $PATH");
    env.assert_gone("btcr-b1");
}

#[test]
fn ids_that_cannot_be() {
    let env = Env::new(&["sleep", "1000"]);
    env.run(&["create", ""]).fails_with("invalid id format");
    env.run(&["create", "a/b"])
        .fails_with("invalid id format: a/b");
    env.run(&["create", ".."]).fails_with("invalid id format");
    env.run(&["create", "itcb-c1"]).ok();
    env.run(&["create", "itcb-c1"])
        .fails_with("container with id exists: itcb-c1");
    // The first is untouched.
    assert_eq!(env.status("itcb-c1"), "created");
    env.run(&["delete", "itcb-c1"]).ok();
    env.assert_gone("itcb-c1");
}

#[test]
fn commands_the_state_does_not_allow() {
    let env = Env::new(&["sleep", "1000"]);
    env.run(&["create", "ctsdna-c1"]).ok();
    env.run(&["start", "ctsdna-c1"]).ok();
    env.run(&["start", "ctsdna-c1"])
        .fails_with("cannot start an already running container");
    env.run(&["delete", "ctsdna-c1"])
        .fails_with("cannot delete container ctsdna-c1 that is not stopped: running");
    assert_eq!(env.status("ctsdna-c1"), "running");
    env.run(&["resume", "ctsdna-c1"])
        .fails_with("container not paused");
    env.run(&["kill", "ctsdna-c1", "NOPE"])
        .fails_with("invalid signal \\\"NOPE\\\"");
    env.run(&["kill", "ctsdna-c1", "9"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    env.run(&["kill", "ctsdna-c1", "TERM"])
        .fails_with("container not running");
    env.run(&["start", "ctsdna-c1"])
        .fails_with("cannot start a container that has stopped");
    env.run(&["delete", "ctsdna-c1"]).ok();
    env.run(&["delete", "ctsdna-c1"])
        .fails_with("container does not exist");
    env.run(&["delete", "--force", "ctsdna-c1"]).ok();
    env.assert_gone("ctsdna-c1");
    env.run(&["checkpoint", "ctsdna-c1"])
        .fails_with("checkpoint is not supported");
    // The flag is taken on every command, as runc takes it (containerd passes it along).
    env.run(&["--systemd-cgroup", "state", "ctsdna-c1"])
        .fails_with("container does not exist");
}

#[test]
fn a_process_killed_between_create_and_start() {
    let env = Env::new(&["sleep", "1000"]);
    env.run(&["create", "apkbca-c1"]).ok();
    let pid = env.state("apkbca-c1")["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the container's process, as an OOM kill or an operator would.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(env.status("apkbca-c1"), "stopped");
    env.run(&["start", "apkbca-c1"])
        .fails_with("cannot start a container that has stopped");
    env.run(&["delete", "apkbca-c1"]).ok();
    env.assert_gone("apkbca-c1");
}

#[test]
fn a_create_that_died_midway_leaves_nothing_in_the_way() {
    let env = Env::new(&["sleep", "1000"]);
    // What a create killed before it finished leaves: its staging directory, unlocked.
    let staging = env.root.path().join(".actdml-c1.creating");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("lock"), b"").unwrap();
    env.run(&["list", "-q"]).ok();
    assert_eq!(env.run(&["list", "-q"]).stdout, "");
    env.run(&["create", "actdml-c1"]).ok();
    assert_eq!(env.status("actdml-c1"), "created");
    env.run(&["delete", "actdml-c1"]).ok();
    env.assert_gone("actdml-c1");
}

#[test]
fn a_console_socket_that_is_not_a_socket() {
    let env = Env::new(&["sh"]);
    env.edit_config(|c| c["process"]["terminal"] = true.into());
    let not_socket = env.bundle.path().join("console");
    std::fs::write(&not_socket, b"").unwrap();
    env.run(&[
        "create",
        "--console-socket",
        not_socket.to_str().unwrap(),
        "acstin-t1",
    ])
    .fails_with("not a unix socket");
    env.run(&["create", "acstin-t1"])
        .fails_with("process.terminal is true: pass --console-socket");
    env.assert_gone("acstin-t1");
}
