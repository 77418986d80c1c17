//! Root integration tests against this machine's real cgroup hierarchies.
//! Every test uses its own parent directory and pod uuid, and a guard
//! removes both (and kills what runs there) even when an assertion fails.

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use exec::cgroups::{
    join_with_fds, CgroupMounts, Cgroups, CpuQuota, DeviceRule, Layout, Limits, Version,
};

use crate::require_root;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Owns a test's parent cgroup and pod; removes them on drop.
struct TestPod {
    cgroups: Cgroups,
    parent: String,
    uuid: String,
}

impl TestPod {
    fn new() -> Self {
        Self::with_mounts(CgroupMounts::read().unwrap())
    }

    fn with_mounts(mounts: CgroupMounts) -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let parent = format!("vessel-test-{}-{n}", std::process::id());
        let cgroups = Cgroups::from_mounts(mounts)
            .unwrap()
            .with_parent(&parent)
            .unwrap();
        TestPod {
            cgroups,
            parent,
            uuid: format!("4a1c2f3e-0000-4000-8000-{:012}", n),
        }
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        let removed = self.cgroups.remove_pod(&self.uuid);
        let mounts = CgroupMounts::read().unwrap();
        let roots = mounts
            .v1
            .iter()
            .map(|m| m.mount_point.clone())
            .chain(mounts.unified.clone());
        for root in roots {
            let _ = fs::remove_dir(root.join(&self.parent));
        }
        if !std::thread::panicking() {
            removed.unwrap();
        }
    }
}

/// Kills the child on drop so a failed test leaves no process behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

/// Spawns `argv` in `cgroup` by joining through inherited fds after fork,
/// as the executor's children do.
fn spawn_in(fds: Vec<std::os::fd::OwnedFd>, argv: &[&str]) -> Reaped {
    let mut command = Command::new(argv[0]);
    command
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: join_with_fds is async-signal-safe (write(2) only).
    unsafe {
        command.pre_exec(move || join_with_fds(&fds).map_err(std::io::Error::from));
    }
    Reaped(command.spawn().unwrap())
}

fn proc_cgroups(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
}

#[test]
fn detects_this_hybrid_host() {
    let cgroups = Cgroups::detect().unwrap();
    // The expectation from the filesystems themselves (statfs), not from the mount table
    // the code reads: cgroup2 at the top is v2; a tmpfs of v1 controllers, with or without
    // a cgroup2 tree at `unified`, is hybrid or v1.
    let magic = |path: &str| {
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let c = std::ffi::CString::new(path).unwrap();
        // SAFETY: a valid path and out pointer.
        (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type)
    };
    let expected = if magic("/sys/fs/cgroup") == Some(libc::CGROUP2_SUPER_MAGIC) {
        Layout::V2
    } else if magic("/sys/fs/cgroup/unified") == Some(libc::CGROUP2_SUPER_MAGIC) {
        Layout::Hybrid
    } else {
        Layout::V1
    };
    assert_eq!(cgroups.layout(), expected);
    assert!(!cgroups.hierarchies().is_empty());
}

#[test]
fn create_limit_join_and_remove() {
    require_root();
    let test = TestPod::new();
    let cgroups = &test.cgroups;
    let pod_limits = Limits {
        memory_bytes: Some(256 << 20),
        cpu_quota: Some(CpuQuota::from_millicores(1500).unwrap()),
        cpu_shares: Some(2048),
        pids: Some(200),
        devices: Some(DeviceRule::container_defaults()),
        ..Limits::default()
    };
    let pod = cgroups.create_pod(&test.uuid, &pod_limits).unwrap();
    let app_limits = Limits {
        memory_bytes: Some(64 << 20),
        cpu_quota: Some(CpuQuota::from_millicores(500).unwrap()),
        cpu_shares: Some(512),
        pids: Some(50),
        devices: Some(DeviceRule::container_defaults()),
        ..Limits::default()
    };
    let app = cgroups.create_app(&test.uuid, "web", &app_limits).unwrap();

    // Read the limits back from the kernel.
    let find = |cgroup: &exec::cgroups::Cgroup, controller: &str| {
        cgroup
            .dirs()
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .unwrap()
            .path
            .clone()
    };
    if cgroups.layout() != Layout::V2 {
        let memory = find(&app, "memory");
        assert_eq!(read(memory.join("memory.limit_in_bytes")), "67108864");
        if memory.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(read(memory.join("memory.memsw.limit_in_bytes")), "67108864");
        }
        let cpu = find(&app, "cpu");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.shares")), "512");
        assert_eq!(read(find(&pod.pod, "cpu").join("cpu.shares")), "2048");
        assert_eq!(read(find(&app, "pids").join("pids.max")), "50");
        let devices = read(find(&app, "devices").join("devices.list"));
        let mut listed: Vec<&str> = devices.lines().collect();
        listed.sort_unstable();
        assert_eq!(
            listed,
            [
                "c 136:* rwm",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm"
            ]
        );
    }

    // Join a forked child through the inherited cgroup.procs fds.
    let fds = app.open_procs_fds().unwrap();
    assert_eq!(fds.len(), app.dirs().len());
    let child = spawn_in(fds, &["/bin/sleep", "60"]);
    let pid = child.0.id();
    let listed = proc_cgroups(pid);
    let relative = format!("/{}/{}/web", test.parent, test.uuid);
    for dir in app.dirs() {
        let procs = read(dir.path.join("cgroup.procs"));
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "{pid} not in {}",
            dir.path.display()
        );
    }
    assert!(
        listed.lines().filter(|l| l.ends_with(&relative)).count() >= app.dirs().len(),
        "{listed}"
    );
    assert_eq!(app.processes().unwrap(), [pid as i32]);
    assert_eq!(pod.pod.processes().unwrap(), [pid as i32]);
    assert!(!app.oom_killed().unwrap());

    // Removing the pod kills the child and every directory goes.
    cgroups.remove_pod(&test.uuid).unwrap();
    let mut child = child;
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for dir in pod.pod.dirs() {
        assert!(!dir.path.exists(), "{} left behind", dir.path.display());
    }
    assert!(cgroups.find_pod_leftovers(&test.uuid).unwrap().is_empty());
    // A second removal (gc after a crash) finds nothing and succeeds.
    cgroups.remove_pod(&test.uuid).unwrap();
}

#[test]
fn oom_kill_in_an_app_is_detected() {
    require_root();
    let test = TestPod::new();
    let cgroups = &test.cgroups;
    cgroups.create_pod(&test.uuid, &Limits::default()).unwrap();
    let app = cgroups
        .create_app(
            &test.uuid,
            "hog",
            &Limits {
                memory_bytes: Some(16 << 20),
                ..Limits::default()
            },
        )
        .unwrap();
    let quiet = cgroups
        .create_app(&test.uuid, "quiet", &Limits::default())
        .unwrap();
    // tail buffers a file without newlines whole: it grows until killed.
    let mut hog = spawn_in(
        app.open_procs_fds().unwrap(),
        &["/usr/bin/tail", "/dev/zero"],
    );
    let status = hog.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(app.oom_killed().unwrap());
    assert!(app.oom_kills().unwrap() >= 1);
    assert!(!quiet.oom_killed().unwrap());
}

#[test]
fn enter_moves_a_running_process_into_an_app() {
    require_root();
    let test = TestPod::new();
    let cgroups = &test.cgroups;
    cgroups.create_pod(&test.uuid, &Limits::default()).unwrap();
    cgroups
        .create_app(&test.uuid, "web", &Limits::default())
        .unwrap();
    let child = Reaped(Command::new("/bin/sleep").arg("60").spawn().unwrap());
    let pid = child.0.id();
    let app = cgroups.app(&test.uuid, "web").unwrap();
    app.add_process(pid as i32).unwrap();
    assert_eq!(app.processes().unwrap(), [pid as i32]);
    let relative = format!("/{}/{}/web", test.parent, test.uuid);
    assert!(proc_cgroups(pid).contains(&relative));
    app.remove().unwrap();
    assert!(app.dirs().iter().all(|d| !d.path.exists()));
}

#[test]
fn gc_kills_processes_left_in_v1_only_with_the_freezer() {
    require_root();
    let test = TestPod::new();
    let cgroups = &test.cgroups;
    cgroups.create_pod(&test.uuid, &Limits::default()).unwrap();
    let app = cgroups
        .create_app(&test.uuid, "forker", &Limits::default())
        .unwrap();
    // Join the v1 hierarchies only, so cgroup.kill cannot reach them.
    let fds: Vec<_> = app
        .open_procs_fds()
        .unwrap()
        .into_iter()
        .zip(app.dirs())
        .filter(|(_, d)| d.version == Version::V1)
        .map(|(fd, _)| fd)
        .collect();
    if fds.is_empty() {
        eprintln!("skipped: no v1 hierarchies");
        return;
    }
    let mut shell = spawn_in(
        fds,
        &["/bin/sh", "-c", "sleep 60 & sleep 60 & sleep 60 & wait"],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.processes().unwrap().len() < 4 {
        assert!(Instant::now() < deadline, "children did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // As `gc` would, with only the uuid to go on.
    let fresh = Cgroups::detect()
        .unwrap()
        .with_parent(&test.parent)
        .unwrap();
    assert_eq!(
        fresh.pods_with_cgroups().unwrap(),
        std::slice::from_ref(&test.uuid)
    );
    fresh.remove_pod(&test.uuid).unwrap();
    assert_eq!(shell.0.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(fresh.find_pod_leftovers(&test.uuid).unwrap().is_empty());
}

/// The v2 device filter, attached for real: on a hybrid host the unified
/// tree accepts cgroup BPF programs even without controllers, so a Cgroups
/// that sees only that tree exercises the v2-only code path.
#[test]
fn v2_device_filter_allows_only_whitelisted_devices() {
    require_root();
    let mounts = CgroupMounts::read().unwrap();
    let Some(unified) = mounts.unified.clone() else {
        eprintln!("skipped: no cgroup2 tree");
        return;
    };
    let test = TestPod::with_mounts(CgroupMounts {
        v1: vec![],
        unified: Some(unified),
    });
    let cgroups = &test.cgroups;
    assert_eq!(cgroups.layout(), Layout::V2);
    let devices_only = Limits {
        devices: Some(DeviceRule::container_defaults()),
        ..Limits::default()
    };
    let pod = cgroups.create_pod(&test.uuid, &devices_only).unwrap();
    let app = cgroups
        .create_app(&test.uuid, "dev", &devices_only)
        .unwrap();
    // Setting the rules again replaces the filter rather than stacking one.
    app.set_limits(&devices_only).unwrap();
    assert_eq!(
        exec::cgroups::bpf::attached_device_filters(&app.dirs()[0].path).unwrap(),
        1
    );
    assert_eq!(
        exec::cgroups::bpf::attached_device_filters(&pod.pod.dirs()[0].path).unwrap(),
        1
    );

    let scratch = tempfile::tempdir().unwrap();
    let script = format!(
        "cd {dir}; \
         head -c 1 /dev/zero >/dev/null && echo zero-ok; \
         head -c 1 /dev/kmsg >/dev/null 2>&1 || echo kmsg-denied; \
         mknod null c 1 3 && echo mknod-null-ok; \
         mknod mem c 1 1 2>/dev/null || echo mknod-mem-denied; \
         mknod loop b 7 0 2>/dev/null || echo mknod-block-denied",
        dir = scratch.path().display()
    );
    let child = spawn_in(app.open_procs_fds().unwrap(), &["/bin/sh", "-c", &script]);
    let output = {
        let mut child = child;
        let stdout = std::mem::take(&mut child.0.stdout);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout.unwrap(), &mut out).unwrap();
        assert!(child.0.wait().unwrap().success());
        out
    };
    assert_eq!(
        output.lines().collect::<Vec<_>>(),
        [
            "zero-ok",
            "kmsg-denied",
            "mknod-null-ok",
            "mknod-mem-denied",
            "mknod-block-denied"
        ]
    );
}

/// Apps join without the global lock a `cgroup.procs` write takes (see `cgroups::join`):
/// a single-threaded process writes itself to v1 `tasks`, and a child is born in its v2
/// cgroup by clone3(CLONE_INTO_CGROUP).
#[test]
fn apps_join_v1_through_tasks_and_are_born_in_their_v2_cgroup() {
    require_root();
    let test = TestPod::new();
    test.cgroups
        .create_pod(&test.uuid, &Limits::default())
        .unwrap();
    let app = test
        .cgroups
        .create_app(&test.uuid, "web", &Limits::default())
        .unwrap();
    let join = app.open_join_fds(true).unwrap();
    assert_eq!(join.tasks.len(), test.cgroups.hierarchies().len());
    let mut child = spawn_in(join.tasks, &["/bin/sleep", "5"]);
    let seen = proc_cgroups(child.0.id());
    let memory = seen.lines().find(|l| l.contains(":memory:")).unwrap();
    assert!(
        memory.ends_with(&format!("/{}/{}/web", test.parent, test.uuid)),
        "{seen}"
    );
    let _ = child.0.kill();

    let mounts = CgroupMounts::read().unwrap();
    let Some(unified) = mounts.unified.clone() else {
        eprintln!("v2 part skipped: no cgroup2 tree");
        return;
    };
    let v2 = TestPod::with_mounts(CgroupMounts {
        v1: vec![],
        unified: Some(unified),
    });
    v2.cgroups.create_pod(&v2.uuid, &Limits::default()).unwrap();
    let app = v2
        .cgroups
        .create_app(&v2.uuid, "web", &Limits::default())
        .unwrap();
    let join = app.open_join_fds(true).unwrap();
    let dir = std::os::fd::AsRawFd::as_raw_fd(join.v2_dir.as_ref().unwrap());
    let (r, w) = rustix::pipe::pipe().unwrap();
    let cat = c"/bin/cat";
    let file = c"/proc/self/cgroup";
    let argv = [cat.as_ptr(), file.as_ptr(), std::ptr::null()];
    // SAFETY: the child only calls dup2, execv and _exit (async-signal-safe).
    let pid = unsafe { exec::cgroups::fork_into(Some(dir)) }.unwrap();
    if pid == 0 {
        unsafe {
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&w), 1);
            libc::execv(cat.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    drop(w);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut fs::File::from(r), &mut out).unwrap();
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        out.lines()
            .any(|l| l == format!("0::/{}/{}/web", v2.parent, v2.uuid)),
        "{out}"
    );
}
