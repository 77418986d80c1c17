//! Rootless mode (issue 14): a real user the test creates (useradd, with or without a
//! range in /etc/subuid and /etc/subgid) runs a copy of the built binary with its XDG
//! defaults. The test binary itself runs as root: it makes the user and the images, and
//! removes both at the end.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::common::aci::{busybox_aci, manifest_bytes, raw_aci, write_aci};
use crate::common::compress::Compression;
use crate::common::oci::busybox_layout;
use crate::common::{Run, Vessel, VESSEL};

/// A user of the host made for one test: name unique per process and test, removed (with
/// its home, its subordinate ranges and any process left) when dropped.
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
    /// A directory the user may read: the binary's copy and the test's images.
    shared: tempfile::TempDir,
    bin: PathBuf,
    pub(crate) subids: Option<(u32, u32)>,
}

impl User {
    pub(crate) fn new(subids: bool) -> User {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vrl{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = Command::new("useradd");
        c.args(["-m", "-s", "/bin/sh"]);
        if !subids {
            c.args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]);
        }
        let out = c.arg(&name).output().expect("useradd");
        assert!(out.status.success(), "useradd {name}: {out:?}");
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let range = std::fs::read_to_string("/etc/subuid")
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == name)
                    .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
            });
        assert_eq!(
            range.is_some(),
            subids,
            "{name}'s subordinate ids: {range:?}"
        );
        // The build's target directory may be closed to other users: a copy they can run.
        let shared = tempfile::Builder::new()
            .prefix("vessel-test-rootless-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = shared.path().join("vessel");
        std::fs::copy(VESSEL, &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        User {
            uid: id("-u"),
            gid: id("-g"),
            home: PathBuf::from(format!("/home/{name}")),
            name,
            shared,
            bin,
            subids: range,
        }
    }

    /// The user's `vessel` with a clean environment: HOME and PATH only, plus `env`.
    pub(crate) fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .current_dir("/")
            .stdin(Stdio::null())
            .uid(self.uid)
            .gid(self.gid);
        c
    }

    pub(crate) fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args, env).output().unwrap();
        Run {
            command: format!("(as {}) vessel {}", self.name, args.join(" ")),
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// A file the user may read, from one the test made.
    pub(crate) fn give(&self, path: &Path) -> String {
        let to = self.shared.path().join(path.file_name().unwrap());
        Command::new("cp")
            .arg("-a")
            .arg(path)
            .arg(&to)
            .status()
            .unwrap();
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(&to)
            .status()
            .unwrap();
        to.to_string_lossy().into_owned()
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.home.join(".local/share/vessel")
    }

    /// A busybox ACI (example.com/busybox:1) fetched by the user; its ID.
    pub(crate) fn fetch_busybox(&self, v: &Vessel) -> String {
        let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::Gzip);
        let path = self.give(&aci.path);
        let r = self
            .run(&["fetch", "--insecure-options=image", "--full", &path])
            .success();
        assert_eq!(r.stdout.trim(), aci.id, "{r}");
        aci.id
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Whatever a failed test left running of this user's (its own ids and its range).
        let mine =
            |uid: u32| uid == self.uid || self.subids.is_some_and(|(s, n)| uid >= s && uid < s + n);
        for _ in 0..3 {
            let mut left = 0;
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if std::fs::metadata(e.path()).is_ok_and(|m| mine(m.uid())) {
                    // SAFETY: a signal to a process of this test's own user.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    left += 1;
                }
            }
            if left == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("userdel")
            .args(["-r", "-f"])
            .arg(&self.name)
            .output();
        let _ = Command::new("rm").arg("-rf").arg(&self.home).status();
    }
}

fn info(u: &User, env: &[(&str, &str)]) -> Value {
    u.run_env(&["info", "--format=json"], env).success().json()
}

#[test]
fn info_says_rootless_and_the_xdg_directories() {
    let u = User::new(true);
    let i = info(&u, &[]);
    assert_eq!(i["rootless"], true, "{i}");
    assert_eq!(i["dataDir"], u.data_dir().to_str().unwrap(), "{i}");
    assert_eq!(
        i["configDirs"]["user"],
        u.home.join(".config/vessel").to_str().unwrap()
    );
    // System trust is still read from /etc/vessel.
    assert_eq!(i["configDirs"]["local"], "/etc/vessel");
    assert_eq!(i["runtimeDir"], format!("/tmp/vessel-{}", u.uid));
    assert!(
        i["runtimeDirNote"]
            .as_str()
            .unwrap()
            .contains("XDG_RUNTIME_DIR"),
        "{i}"
    );
    assert_eq!(i["userNamespace"]["mappedIds"], 65537, "{i}");
    assert_eq!(i["enforced"]["cgroupLimits"], false);
    assert!(
        i["enforced"]["cgroupLimitsNote"]
            .as_str()
            .unwrap()
            .contains("v1"),
        "{i}"
    );
    let i = info(
        &u,
        &[
            ("XDG_DATA_HOME", "/srv/d"),
            ("XDG_RUNTIME_DIR", "/run/user/77"),
        ],
    );
    assert_eq!(i["dataDir"], "/srv/d/vessel");
    assert_eq!(i["runtimeDir"], "/run/user/77/vessel");
    assert!(i["runtimeDirNote"].is_null());
    // Root is not rootless, and its limits hold.
    let v = Vessel::new();
    let r = v.run(&["info", "--format=json"]).success().json();
    assert_eq!(r["rootless"], false);
    assert_eq!(r["enforced"]["cgroupLimits"], true);
}

/// Fetch an ACI and an OCI image, run a pod of two apps sharing an empty volume, then
/// detach, list, status, logs, enter, stop, rm, gc: all as the user, all in their home.
#[test]
fn a_user_fetches_runs_and_manages_pods() {
    let v = Vessel::new();
    let u = User::new(true);
    let (start, _) = u.subids.unwrap();
    let id = u.fetch_busybox(&v);
    // The image's owners are the user's subordinate ids on the host: /home/app is 1000's.
    let layer = u.data_dir().join("store/layers").join(&id).join("rootfs");
    assert_eq!(
        std::fs::metadata(layer.join("home/app")).unwrap().uid(),
        start + 999
    );
    assert_eq!(
        std::fs::metadata(layer.join("bin/busybox")).unwrap().uid(),
        u.uid
    );
    busybox_layout(&v.path("oci"), "v1");
    let oci_ref = format!("oci:{}:v1", u.give(&v.path("oci")));
    u.run(&["fetch", "--insecure-options=image", &oci_ref])
        .success();
    let r = u
        .run(&[
            "run",
            "--rm",
            "--insecure-options=image",
            &oci_ref,
            "--user=1000",
            "--exec=/bin/sh",
            "--",
            "-c",
            "id -u; echo x > /tmp/f && stat -c %u /tmp/f",
        ])
        .success();
    assert_eq!(r.stdout_lines(), ["1000", "1000"], "{r}");
    let r = u
        .run(&[
            "run",
            "--volume=v,kind=empty,mode=0777",
            "example.com/busybox:1",
            "--name=writer",
            "--mount=volume=v,target=/v",
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo shared > /v/f",
            "---",
            "example.com/busybox:1",
            "--name=reader",
            "--mount=volume=v,target=/v",
            "--exec=/bin/sh",
            "--",
            "-c",
            "while [ ! -s /v/f ]; do sleep 0.05; done; cat /v/f",
        ])
        .success();
    assert!(r.stdout.contains("shared"), "{r}");

    let uuid = u
        .run(&[
            "run",
            "--detach",
            "example.com/busybox:1",
            "--exec=/bin/sh",
            "--",
            "-c",
            "echo hello; exec sleep 600",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let list = u.run(&["list", "--format=json"]).success().json();
    let pods = list.as_array().unwrap();
    assert!(
        pods.iter()
            .any(|p| p["name"] == uuid.as_str() && p["state"] == "running"),
        "{list}"
    );
    let status = u.run(&["status", "--format=json", &uuid]).success().json();
    assert_eq!(status["state"], "running", "{status}");
    let mut logs = String::new();
    for _ in 0..50 {
        logs = u.run(&["logs", &uuid]).success().stdout;
        if logs.contains("hello") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(logs.contains("hello"), "{logs}");
    let r = u
        .run(&[
            "enter",
            &uuid,
            "/bin/sh",
            "-c",
            "id -u; cat /proc/1/cmdline | tr '\\0' ' '",
        ])
        .success();
    assert!(r.stdout.starts_with("0\n"), "{r}");
    u.run(&["stop", &uuid]).success();
    let mut state = Value::Null;
    for _ in 0..50 {
        state = u.run(&["status", "--format=json", &uuid]).success().json();
        if state["state"] == "exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(state["state"], "exited", "{state}");
    u.run(&["rm", &uuid]).success();
    u.run(&["gc", "--grace-period=0s"]).success();
    let list = u.run(&["list", "--format=json"]).success().json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    // What the user made stays out of other users' reach.
    let mode = std::fs::metadata(u.data_dir().join("store"))
        .unwrap()
        .mode();
    assert_eq!(mode & 0o077, 0, "store mode {mode:o}");
}

#[test]
fn what_a_rootless_pod_cannot_have_is_refused_saying_why() {
    let v = Vessel::new();
    let u = User::new(true);
    u.fetch_busybox(&v);
    u.run(&["run", "example.com/busybox:1", "--memory=10M"])
        .failure()
        .stderr_names(&["--memory", "cgroup", "v1"]);
    u.run(&["run", "example.com/busybox:1", "--cpu=100m"])
        .failure()
        .stderr_names(&["cgroup"]);
    u.run(&["run", "--net=default", "example.com/busybox:1"])
        .failure()
        .stderr_names(&["CNI", "--net=slirp4netns", "--net=none"]);
    for flavour in ["fly", "kvm"] {
        u.run(&[
            "run",
            &format!("--stage1={flavour}"),
            "example.com/busybox:1",
        ])
        .failure()
        .stderr_names(&[&format!("--stage1={flavour}"), "rootless", "need root"]);
    }
    // The host's network works; the default is a namespace of the pod's own with slirp4netns's
    // tap0 (installed by scripts/deps), and --net=none has loopback only.
    let host = u
        .run(&[
            "run",
            "--rm",
            "--net=host",
            "example.com/busybox:1",
            "--exec=/bin/ls",
            "--",
            "/sys/class/net",
        ])
        .success();
    let own = u
        .run(&[
            "run",
            "--rm",
            "example.com/busybox:1",
            "--exec=/bin/ls",
            "--",
            "/sys/class/net",
        ])
        .success();
    assert_eq!(own.stdout_lines(), ["lo", "tap0"], "{own}");
    let none = u
        .run(&[
            "run",
            "--rm",
            "--net=none",
            "example.com/busybox:1",
            "--exec=/bin/ls",
            "--",
            "/sys/class/net",
        ])
        .success();
    assert_eq!(none.stdout.trim(), "lo", "{none}");
    assert!(host.stdout.lines().count() > 1, "{host}");
}

/// Another user's pods and root's are out of reach: their data directories are refused
/// before anything is read, with a message naming the owner.
#[test]
fn another_users_or_roots_pods_are_refused() {
    let v = Vessel::new();
    let (a, b) = (User::new(true), User::new(true));
    a.fetch_busybox(&v);
    let uuid = a
        .run(&["prepare", "example.com/busybox:1"])
        .success()
        .stdout
        .trim()
        .to_string();
    let a_dir = a.data_dir();
    std::fs::set_permissions(&a.home, std::fs::Permissions::from_mode(0o755)).unwrap();
    // b may pass through a's home (0755 on Debian) but the data dir is a's.
    for args in [
        vec!["list"],
        vec!["status", &uuid],
        vec!["rm", &uuid],
        vec!["gc"],
    ] {
        let mut full = vec!["--dir", a_dir.to_str().unwrap()];
        full.extend(args.iter().copied());
        b.run(&full)
            .failure()
            .stderr_names(&["owned by uid", &a.uid.to_string()]);
    }
    // Root's store.
    v.run(&["list"]).success();
    b.run(&["--dir", v.dir().to_str().unwrap(), "list"])
        .failure()
        .stderr_names(&[v.dir().to_str().unwrap()]);
    // a's pod is still there.
    let list = a.run(&["list", "--format=json"]).success().json();
    assert_eq!(list[0]["name"], uuid.as_str(), "{list}");
}

/// Without subordinate ids: one id mapped, a note saying what that limits, the image's
/// files all the user's, and root of the pod works.
#[test]
fn without_subordinate_ids_a_single_id_is_mapped_with_a_note() {
    let v = Vessel::new();
    let u = User::new(false);
    assert_eq!(info(&u, &[])["userNamespace"]["mappedIds"], 1);
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
    let path = u.give(&aci.path);
    let r = u
        .run(&["fetch", "--insecure-options=image", &path])
        .success();
    assert!(
        r.stderr.contains("no subordinate ids") && r.stderr.contains("usermod"),
        "{r}"
    );
    let layer = u
        .data_dir()
        .join("store/layers")
        .join(&aci.id)
        .join("rootfs");
    assert_eq!(
        std::fs::metadata(layer.join("home/app")).unwrap().uid(),
        u.uid
    );
    let r = u
        .run(&[
            "run",
            "--rm",
            "example.com/busybox:1",
            "--exec=/bin/id",
            "--",
            "-u",
        ])
        .success();
    assert_eq!(r.stdout.trim(), "0", "{r}");
    // Another user in the image cannot be had.
    let r = u.run(&[
        "run",
        "--rm",
        "example.com/busybox:1",
        "--user=1000",
        "--exec=/bin/true",
    ]);
    assert_ne!(r.code(), Some(0), "{r}");
}

#[test]
fn newuidmap_missing_or_not_setuid_is_named() {
    let u = User::new(true);
    let copy = u.shared.path().join("newuidmap");
    std::fs::copy("/usr/bin/newuidmap", &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = copy.to_str().unwrap();
    u.run_env(&["list"], &[("VESSEL_NEWUIDMAP", copy)])
        .failure()
        .stderr_names(&[copy, "not a setuid-root"]);
    let missing = u.shared.path().join("nowhere");
    u.run_env(
        &["list"],
        &[("VESSEL_NEWGIDMAP", missing.to_str().unwrap())],
    )
    .failure()
    .stderr_names(&[missing.to_str().unwrap(), "uidmap"]);
    // Nothing was made.
    assert!(!u.data_dir().join("pods").exists());
}

/// An image with a setuid-root program and device nodes: the nodes are skipped (no mknod
/// in a user namespace, and the policy as root), and the program gives an app nothing.
#[test]
fn setuid_programs_and_device_nodes_give_no_privilege() {
    let v = Vessel::new();
    let u = User::new(true);
    // actool refuses device nodes: a tar written by hand. busybox runs the applet its
    // argv[0] names, so the setuid copy is .../busybox too.
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let tar = raw_aci(&manifest_bytes("example.com/suid"), |t| {
        for d in [
            "rootfs/bin",
            "rootfs/bin/suid",
            "rootfs/etc",
            "rootfs/dev",
            "rootfs/tmp",
        ] {
            t.dir(d);
        }
        t.file_with_mode("rootfs/bin/busybox", &busybox, 0o755);
        t.file_with_mode("rootfs/bin/suid/busybox", &busybox, 0o4755);
        for applet in ["sh", "ls", "id"] {
            t.symlink(&format!("rootfs/bin/{applet}"), "busybox");
        }
        t.file(
            "rootfs/etc/passwd",
            b"root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        );
        t.file("rootfs/etc/group", b"root:x:0:\napp:x:1000:\n");
        t.char_device("rootfs/dev/mem", 1, 1);
    });
    let aci = write_aci(&v.path("suid.aci"), &tar, Compression::None);
    let path = u.give(&aci.path);
    u.run(&["fetch", "--insecure-options=image", &path])
        .success();
    let layer = u
        .data_dir()
        .join("store/layers")
        .join(&aci.id)
        .join("rootfs");
    assert!(!layer.join("dev/mem").exists(), "a device node was made");
    // The setuid bit is kept for the image's sake, on a file only the user can reach.
    let m = std::fs::metadata(layer.join("bin/suid/busybox")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o4000), (u.uid, 0o4000));
    let r = u
        .run(&[
            "run",
            "--rm",
            "example.com/suid:1.0",
            "--user=1000",
            "--exec=/bin/suid/busybox",
            "--",
            "id",
            "-u",
        ])
        .success();
    assert_eq!(r.stdout.trim(), "1000", "{r}");
    let r = u
        .run(&[
            "run",
            "--rm",
            "example.com/suid:1.0",
            "--exec=/bin/ls",
            "--",
            "/dev",
        ])
        .success();
    assert!(!r.stdout.split_whitespace().any(|d| d == "mem"), "{r}");
}
