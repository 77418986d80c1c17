//! Security regressions: what an app can reach of the host.

use crate::common;
use crate::podkit;

use std::time::Duration;

use podkit::PodEnv;

fn sha256_of(path: &str) -> String {
    common::digest::sha256_file(std::path::Path::new(path))
}

#[test]
fn an_app_with_every_capability_cannot_write_the_vessel_binary() {
    let p = PodEnv::new();
    let before = sha256_of(common::VESSEL);
    let script = r#"
        for target in /proc/1/exe /proc/1/map_files/*; do
            if echo pwned >> "$target" 2>/dev/null; then echo "WROTE $target"; fi
        done
        ls /proc/1/root/ 2>&1 | tr '\n' ' '; echo
        readlink /proc/1/exe 2>&1
    "#;
    let r = p.sh(&["--insecure-options=all-run"], script);
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(!r.stdout.contains("WROTE"), "{r}");
    // pid 1's root is the pod's stage1 tmpfs, not the host's.
    assert!(r.stdout.contains("apps"), "{r}");
    assert!(
        !r.stdout.contains("work") && !r.stdout.contains("root "),
        "{r}"
    );
    assert_eq!(sha256_of(common::VESSEL), before, "the binary changed");
}

#[test]
fn the_init_binary_is_on_a_read_only_mount_even_after_the_pod_ends() {
    // The attack of CVE-2019-5736: hold pid 1's executable, wait until nothing runs it,
    // then open it for writing. Done here from the host, which can see pid 1's exe.
    let p = PodEnv::new();
    let uuid = p.detached(&[], &["/bin/sleep", "30"]);
    let pid = p.status(&uuid)["pid"].as_i64().unwrap();
    let held = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    use std::os::fd::AsRawFd;
    let fd = held.as_raw_fd();
    p.run(&["stop", "--force", &uuid]).success();
    podkit::wait_for("init to exit", Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    // The mount the file sits on is read-only (what the kernel checks after "is anyone
    // executing it?": ETXTBSY comes first while any vessel runs, as other tests' do).
    let st = rustix::fs::fstatvfs(&held).unwrap();
    assert!(
        st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
        "{:?}",
        st.f_flag
    );
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/self/fd/{fd}"))
        .unwrap_err();
    assert!(
        matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
        "{err}"
    );
}

#[test]
fn no_host_descriptor_and_the_working_directory_inside_the_root() {
    // Inspected from the host: the app process itself, exec'd directly (no shell).
    let p = PodEnv::new();
    let uuid = p.detached(&[], &["/bin/sleep", "30"]);
    let pid = p.status(&uuid)["apps"][0]["pid"]
        .as_i64()
        .expect("app pid in status");
    let mut fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_link(e.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .collect();
    fds.sort();
    assert_eq!(fds.len(), 3, "only stdio is open: {fds:?}");
    assert_eq!(fds[0].1, "/dev/null");
    assert!(
        fds[1].1.starts_with("pipe:") && fds[2].1.starts_with("pipe:"),
        "{fds:?}"
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(cwd, root, "the working directory is the app's root");
    assert!(
        root.to_string_lossy().ends_with("/rootfs") || root == std::path::Path::new("/"),
        "{root:?}"
    );
    p.run(&["stop", "--force", &uuid]).success();
}

#[test]
fn an_app_sees_neither_host_mounts_nor_host_processes() {
    let p = PodEnv::new();
    let r = p.sh(
        &[],
        "cut -d' ' -f5 /proc/self/mountinfo; echo ---; ps -o pid,comm",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    let (mounts, procs) = r.stdout.split_once("---\n").unwrap();
    let allowed = [
        "/",
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/etc/hostname",
        "/etc/hosts",
    ];
    for m in mounts.lines() {
        let ok = allowed.contains(&m) || m.starts_with("/proc/") || m.starts_with("/sys/");
        assert!(ok, "unexpected mount point {m}:\n{r}");
    }
    let pids: Vec<u32> = procs
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        pids.len() <= 4 && pids.iter().all(|&p| p < 50),
        "host processes visible:\n{r}"
    );
}

#[test]
fn secure_defaults_capabilities_seccomp_no_new_privs_masked_paths() {
    let p = PodEnv::new();
    let r = p.sh(&[], "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; wc -c < /proc/timer_list; wc -c < /proc/keys");
    assert_eq!(r.code(), Some(0), "{r}");
    // Docker's 14 capabilities.
    assert!(r.stdout.contains("CapEff:\t00000000a80425fb"), "{r}");
    assert!(r.stdout.contains("CapBnd:\t00000000a80425fb"), "{r}");
    assert!(r.stdout.contains("NoNewPrivs:\t1"), "{r}");
    assert!(r.stdout.contains("Seccomp:\t2"), "{r}");
    let sizes: Vec<&str> = r.stdout.lines().rev().take(2).collect();
    assert_eq!(sizes, vec!["0", "0"], "masked paths read empty:\n{r}");
}

#[test]
fn an_app_can_open_only_the_standard_devices_even_after_mknod() {
    let p = PodEnv::new();
    // /dev/net/tun and /dev/fuse exist on the host; CAP_MKNOD is in the default set.
    let r = p.sh(&[], "mknod /dev/t c 10 200 2>/dev/null && echo tun-made; [ -c /dev/t ] && (exec 3</dev/t) 2>/dev/null && echo tun-opened; (exec 3<>/dev/null) && echo null-opened; true");
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(
        !r.stdout.contains("tun-made") && !r.stdout.contains("tun-opened"),
        "{r}"
    );
    assert!(r.stdout.contains("null-opened"), "{r}");
    // A node that already exists (made with every capability and no device rules is not
    // possible either way): opening fuse through a fresh node is refused too.
    let r = p.sh(&["--insecure-options=capabilities"], "mknod /dev/f c 10 229 2>/dev/null && echo fuse-made; [ -c /dev/f ] && (exec 3</dev/f) 2>/dev/null && echo fuse-opened; true");
    assert!(!r.stdout.contains("fuse-opened"), "{r}");
}

#[test]
fn an_app_cannot_load_modules_or_write_proc_sys_or_sys() {
    let p = PodEnv::new();
    let r = p.sh(
        &[],
        "insmod /dev/null 2>&1; echo insmod=$?; (echo 1 > /proc/sys/kernel/sysrq) 2>&1; echo procsys=$?; (echo x > /sys/kernel/uevent_helper) 2>&1; echo sys=$?; unshare -m true 2>&1; echo unshare=$?; mount -t tmpfs none /mnt 2>&1; echo mount=$?",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    for probe in ["insmod", "procsys", "sys", "unshare", "mount"] {
        assert!(
            !r.stdout.contains(&format!("{probe}=0")),
            "{probe} succeeded:\n{r}"
        );
    }
}

#[test]
fn insecure_options_relax_the_defaults_by_name() {
    let p = PodEnv::new();
    let r = p.sh(
        &["--insecure-options=capabilities,seccomp,paths"],
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; cut -d' ' -f5 /proc/self/mountinfo",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(!r.stdout.contains("CapEff:\t00000000a80425fb"), "{r}");
    assert!(r.stdout.contains("Seccomp:\t0"), "{r}");
    assert!(
        !r.stdout.contains("/proc/timer_list") && !r.stdout.contains("/proc/sys\n"),
        "no masked or read-only paths:\n{r}"
    );
    let r = p.sh(&[], "cut -d' ' -f5 /proc/self/mountinfo");
    assert!(
        r.stdout.contains("/proc/timer_list") && r.stdout.contains("/proc/sys\n"),
        "{r}"
    );
}

/// The directory of the test helper crates/vessel/examples/compat_syscall.rs.
fn compat_syscall_dir() -> std::path::PathBuf {
    common::example("compat_syscall")
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_default_filter_kills_calls_through_the_32_bit_entry() {
    let p = PodEnv::new();
    let vol = format!(
        "--volume=ex,kind=host,source={},readOnly=true",
        compat_syscall_dir().display()
    );
    let mount = ["--mount=volume=ex,target=/ex"];
    let r = p.sh_app(&[&vol], &mount, "/ex/compat_syscall; echo status $?");
    assert!(r.stdout.contains("status 159"), "killed by SIGSYS: {r}");
    assert!(!r.stdout.contains("compat getpid"), "{r}");
    // Without the filter the same call works: the test does reach the 32-bit entry.
    let r = p.sh_app(
        &[&vol, "--insecure-options=seccomp"],
        &mount,
        "/ex/compat_syscall; echo status $?",
    );
    assert!(
        r.stdout.contains("compat getpid: ") && r.stdout.contains("status 0"),
        "{r}"
    );
}
