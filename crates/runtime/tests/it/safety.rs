//! The safety properties of the runtime face: the host's binary never reachable from the
//! container (CVE-2019-5736), no host descriptor or working directory inside
//! (CVE-2024-21626).

use crate::kit::Env;

#[test]
fn the_waiting_process_is_a_read_only_binary() {
    let env = Env::new(&["sleep", "1000"]);
    env.run(&["create", "twpiar-c1"]).ok();
    let pid = env.state("twpiar-c1")["pid"].as_i64().unwrap();
    // What a process sharing its pid namespace would try: write the binary through
    // /proc/PID/exe.
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
        .unwrap_err();
    assert!(
        matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
        "writing /proc/{pid}/exe: {e}"
    );
    // Its binary is a detached mount, not the host's file.
    let mounted = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(mounted, std::path::PathBuf::from(crate::kit::RUNTIME));
    env.run(&["delete", "--force", "twpiar-c1"]).ok();
}

#[test]
fn no_host_descriptor_or_directory_inside() {
    let env = Env::new(&[
        "sh",
        "-c",
        "ls /proc/self/fd; readlink /proc/self/cwd; readlink /proc/1/cwd",
    ]);
    // Descriptors the caller leaves open (not close-on-exec) must not reach the
    // container: fd 7 here, a directory of the host.
    let mut cmd = env.command(&["run", "nhdodi-f1"]);
    let host_dir = std::fs::File::open("/").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&host_dir);
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 and fcntl in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::dup2(raw, 7);
            libc::fcntl(7, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let r = crate::kit::output(cmd, &["run", "nhdodi-f1"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // ls itself holds one descriptor for the directory it reads (3).
    assert_eq!(&lines[..4], ["0", "1", "2", "3"], "{}", r.shown);
    assert_eq!(lines[4], "/", "{}", r.shown);
    assert_eq!(lines[5], "/", "{}", r.shown);
}
