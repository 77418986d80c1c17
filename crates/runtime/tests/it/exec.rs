//! `exec`: a process joining a running container, as containerd, podman (conmon) and a
//! user at a shell drive it.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use crate::kit::Env;

/// What the container's first process sees, for comparison with an exec'd one.
fn view_of(pid: i32) -> (String, Vec<String>) {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let ns = ["mnt", "pid", "net", "ipc", "uts"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    (cgroup, ns)
}

#[test]
fn exec_joins_the_container() {
    let env = Env::new(&["sleep", "1000"]);
    env.edit_config(|c| c["hostname"] = "inside".into());
    env.run(&["run", "--detach", "ejtc-e1"]).ok();
    let init = env.state("ejtc-e1")["pid"].as_i64().unwrap() as i32;
    // In the foreground: its output, its status, the flags honoured.
    let r = env.run(&[
        "exec",
        "--env",
        "GREETING=hi",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "ejtc-e1",
        "sh",
        "-c",
        "echo $GREETING; id -u; pwd; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 5",
    ]);
    assert_eq!(r.code, Some(5), "{}", r.shown);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        ["hi", "1000", "/tmp", "inside", "sleep 1000 "],
        "{}",
        r.shown
    );
    // Detached, with a pid file, from a process file: in the container's cgroup and
    // namespaces, as its first process is.
    let pid_file = env.bundle.path().join("exec.pid");
    let process = env.bundle.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({"args": ["sleep", "999"], "cwd": "/", "env": ["PATH=/bin"],
                           "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .unwrap();
    env.run(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--process",
        process.to_str().unwrap(),
        "ejtc-e1",
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap(),
        "sleep\0999\0"
    );
    assert_eq!(view_of(pid), view_of(init));
    // ps lists both; kill --all ends both.
    let ps = env.run(&["ps", "--format", "json", "ejtc-e1"]).ok();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&init), "{pids:?}");
    env.run(&["kill", "--all", "ejtc-e1", "KILL"]).ok();
    env.run(&["delete", "--force", "ejtc-e1"]).ok();
    env.assert_gone("ejtc-e1");
}

#[test]
fn exec_refusals() {
    let env = Env::new(&["sleep", "1000"]);
    env.run(&["run", "--detach", "er-e1"]).ok();
    // A program that is not there: runc's words, no process left behind.
    env.run(&["exec", "er-e1", "no-such-program"])
        .fails_with("executable file not found in $PATH");
    let ps = env.run(&["ps", "--format", "json", "er-e1"]).ok();
    assert_eq!(
        serde_json::from_str::<Vec<i32>>(&ps.stdout).unwrap().len(),
        1
    );
    // A detached process's terminal needs somewhere to go.
    env.run(&["exec", "-t", "--detach", "er-e1", "true"])
        .fails_with("pass --console-socket (only a foreground run or exec relays");
    // Paused: refused unless --ignore-paused.
    env.run(&["pause", "er-e1"]).ok();
    env.run(&["exec", "er-e1", "true"])
        .fails_with("cannot exec in a paused container");
    env.run(&["resume", "er-e1"]).ok();
    // Stopped: refused.
    env.run(&["kill", "er-e1", "KILL"]).ok();
    for _ in 0..200 {
        if env.status("er-e1") == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    env.run(&["exec", "er-e1", "true"])
        .fails_with("cannot exec in a stopped container");
    env.run(&["exec", "nonexistent", "true"])
        .fails_with("container does not exist");
}

/// A console socket as containerd's shim and conmon hold one: the runtime connects and
/// sends the terminal's master.
struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> ConsoleSocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    fn master(&self) -> OwnedFd {
        let (conn, _) = self.listener.accept().unwrap();
        recv_fd(std::os::fd::AsFd::as_fd(&conn)).expect("the runtime sent a terminal")
    }
}

/// One descriptor sent with SCM_RIGHTS.
fn recv_fd(sock: std::os::fd::BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 64];
    rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    control.drain().find_map(|m| match m {
        rustix::net::RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    })
}

fn read_all(master: OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    // EIO once the slave's last holder is gone.
    let _ = f.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn terminals_for_create_and_exec() {
    let env = Env::new(&["sh", "-c", "tty; sleep 1000"]);
    env.edit_config(|c| c["process"]["terminal"] = true.into());
    let console = ConsoleSocket::new();
    let sock = console.path.to_str().unwrap();
    env.run(&["create", "--console-socket", sock, "tfcae-t1"])
        .ok();
    let first = console.master();
    env.run(&["start", "tfcae-t1"]).ok();
    let exec_console = ConsoleSocket::new();
    let r = env.run(&[
        "exec",
        "-t",
        "--console-socket",
        exec_console.path.to_str().unwrap(),
        "tfcae-t1",
        "sh",
        "-c",
        "tty; echo exec-in-tty; exit 4",
    ]);
    assert_eq!(r.code, Some(4), "{}", r.shown);
    let text = read_all(exec_console.master());
    assert!(text.contains("/dev/pts/1"), "{text:?}");
    assert!(text.contains("exec-in-tty"), "{text:?}");
    env.run(&["delete", "--force", "tfcae-t1"]).ok();
    assert!(read_all(first).contains("/dev/pts/0"));
}

/// runc's first experience: `spec` (terminal: true) then `run` at a shell, no console
/// socket. The runtime relays the container's terminal to its own, for `run` and for a
/// foreground `exec -t`; from a pipe too (input passed on, its end an end-of-file).
#[test]
fn foreground_run_and_exec_relay_the_terminal() {
    let env = Env::new(&["sh", "-c", "tty; read line; echo got:$line; exit 3"]);
    env.edit_config(|c| c["process"]["terminal"] = true.into());
    let quote = |p: &std::path::Path| format!("'{}'", p.display());
    let line = format!(
        "cd {} && printf 'hello\\n' | timeout --foreground 60 {} --root {} run frae-t1",
        quote(env.bundle.path()),
        crate::kit::RUNTIME,
        quote(env.root.path()),
    );
    let r = crate::kit::output(crate::kit::in_terminal(&line), &["script", "run"]);
    assert_eq!(r.code, Some(3), "{}", r.shown);
    assert!(r.stdout.contains("/dev/pts/0"), "{}", r.shown);
    assert!(r.stdout.contains("got:hello"), "{}", r.shown);
    env.assert_gone("frae-t1");

    // On a real terminal: exec -t into a running container, no console socket.
    env.edit_config(|c| c["process"]["terminal"] = false.into());
    env.edit_config(|c| c["process"]["args"] = serde_json::json!(["sleep", "1000"]));
    env.run(&["run", "--detach", "frae-t2"]).ok();
    let line = format!(
        "timeout --foreground 60 {} --root {} exec -t frae-t2 sh -c 'tty; stty size; exit 5'",
        crate::kit::RUNTIME,
        quote(env.root.path()),
    );
    let r = crate::kit::output(
        crate::kit::in_terminal(&format!("stty rows 33 cols 101; {line}")),
        &["script", "exec -t"],
    );
    assert_eq!(r.code, Some(5), "{}", r.shown);
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.shown);
    // Our window size reached the container's terminal.
    assert!(r.stdout.contains("33 101"), "{}", r.shown);
    env.run(&["delete", "--force", "frae-t2"]).ok();
}
