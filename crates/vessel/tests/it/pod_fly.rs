//! The fly stage1 (issue 15): one app in the host's pid, network, ipc and uts namespaces,
//! in a mount namespace of its own whose root is the image; rkt's ways of naming it; what
//! it refuses; and that stopping and removing it leaves nothing on the host.

use std::time::Duration;

use crate::common::Run;
use crate::podkit::{self, cgroup_dirs, PodEnv};

/// `run --rm --stage1=fly [flags] IMAGE [app flags] --exec /bin/sh -- -c SCRIPT` (no
/// `--net`: a fly pod is on the host's network by default).
fn fly(p: &PodEnv, flags: &[&str], app_flags: &[&str], script: &str) -> Run {
    let mut args = vec!["run", "--rm", "--stage1=fly"];
    args.extend_from_slice(flags);
    args.push(&p.image);
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", script]);
    p.run(&args)
}

fn ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

/// Lines of the host's mount table that name `dir` (a pod's mounts must never be there).
fn host_mounts_under(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_fly_pod_shares_the_hosts_namespaces_but_its_root_is_the_image() {
    let p = PodEnv::new();
    let me = std::process::id();
    let script = format!(
        "for n in net pid ipc uts mnt; do echo \"$n=$(readlink /proc/self/ns/$n)\"; done; \
         echo host=$(hostname); test -d /proc/{me} && echo sees-test-process; \
         echo ifaces=$(ls /sys/class/net | sort | tr '\\n' ,); \
         test -e /etc/os-release && echo os-release || echo no-os-release; \
         test -x /bin/busybox && echo busybox"
    );
    let r = fly(&p, &[], &[], &script).success();
    for kind in ["net", "pid", "ipc", "uts"] {
        assert!(
            r.stdout.contains(&format!("{kind}={}", ns(kind))),
            "the app is not in the host's {kind} namespace:\n{r}"
        );
    }
    assert!(
        !r.stdout.contains(&format!("mnt={}", ns("mnt"))),
        "the app must have a mount namespace of its own:\n{r}"
    );
    assert!(
        r.stdout.contains(&format!("host={}", hostname())),
        "the hostname is the host's:\n{r}"
    );
    assert!(r.stdout.contains("sees-test-process"), "{r}");
    let mut host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host_ifaces.sort();
    assert!(
        r.stdout
            .contains(&format!("ifaces={},", host_ifaces.join(","))),
        "the app sees the host's interfaces {host_ifaces:?}:\n{r}"
    );
    // The host has /etc/os-release (Debian); the busybox image has none.
    assert!(std::path::Path::new("/etc/os-release").exists());
    assert!(r.stdout.contains("no-os-release"), "{r}");
    assert!(r.stdout.contains("busybox"), "{r}");
    assert!(p.list().is_empty(), "--rm left the pod");
}

#[test]
fn volumes_memory_limits_and_default_isolation_hold_in_a_fly_pod() {
    let p = PodEnv::new();
    let data = p.v.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host\n").unwrap();
    let volume = format!("data,kind=host,source={}", data.display());
    let r = fly(
        &p,
        &["--volume", &volume],
        &["--mount", "volume=data,target=/data", "--memory=64M"],
        "cat /data/hello; echo made > /data/back; \
         grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; \
         cat /proc/self/cgroup",
    )
    .success();
    assert!(r.stdout.contains("from the host"), "{r}");
    assert_eq!(
        std::fs::read_to_string(data.join("back")).unwrap(),
        "made\n"
    );
    // Docker's 14 capabilities, not root's full set; no_new_privs; a seccomp filter.
    assert!(r.stdout.contains("CapEff:\t00000000a80425fb"), "{r}");
    assert!(r.stdout.contains("CapBnd:\t00000000a80425fb"), "{r}");
    assert!(r.stdout.contains("NoNewPrivs:\t1"), "{r}");
    assert!(r.stdout.contains("Seccomp:\t2"), "{r}");

    // The limit, on the host's side of the app's cgroup, while it runs.
    let uuid = p
        .run(&[
            "run",
            "--detach",
            "--stage1=fly",
            &p.image,
            "--memory=64M",
            "--exec",
            "/bin/sleep",
            "--",
            "300",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let base = std::path::Path::new("/sys/fs/cgroup");
    if base.join("memory/memory.limit_in_bytes").exists() {
        let f = base.join(format!(
            "memory/vessel/{uuid}/busybox/memory.limit_in_bytes"
        ));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap().trim(),
            (64u64 * 1000 * 1000 / 4096 * 4096).to_string()
        );
    } else {
        let f = base.join(format!("vessel/{uuid}/busybox/memory.max"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap().trim(),
            (64u64 * 1000 * 1000 / 4096 * 4096).to_string()
        );
    }
    p.run(&["stop", "--force", &uuid]).success();
    assert!(cgroup_dirs(&uuid).is_empty(), "cgroups left behind");
}

#[test]
fn what_fly_cannot_honour_is_refused_before_any_pod_exists() {
    let p = PodEnv::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--stage1=fly", &p.image, "--exec=/bin/true", "---", &p.image, "--name=two", "--exec=/bin/true"],
            "the fly stage1 runs one app per pod; this pod has 2",
        ),
        (
            &["run", "--stage1=fly", "--private-users", &p.image, "--exec=/bin/true"],
            "--private-users: the fly stage1",
        ),
        (
            &["run", "--stage1=fly", "--net=default", &p.image, "--exec=/bin/true"],
            "--net=default: the fly stage1 uses the host's network",
        ),
        (
            &["prepare", "--stage1=fly", "--hostname=mine", &p.image, "--exec=/bin/true"],
            "--hostname=\"mine\": the fly stage1 shares the host's uts namespace",
        ),
        (
            &["run", "--stage1=fly", "--ipc=private", &p.image, "--exec=/bin/true"],
            "--ipc=private: the fly stage1",
        ),
        (
            &["prepare", "--stage1=kvm", "--net=host", &p.image, "--exec=/bin/true"],
            "--net=host: the kvm stage1 runs the pod in a virtual machine",
        ),
        (
            &["prepare", "--stage1-name=coreos.com/rkt/stage1-kvm:1.30.0", "--private-users", &p.image],
            "--private-users: the kvm stage1",
        ),
        (
            &["run", "--stage1-name=unknown", &p.image, "--exec=/bin/true"],
            "--stage1-name=\"unknown\": not a stage1 Vessel has (Vessel's stage1s are built in: default, fly, kvm",
        ),
        (
            &["run", "--stage1-path=/opt/my-stage1.aci", &p.image],
            "--stage1-path=\"/opt/my-stage1.aci\": Vessel runs no stage1 image",
        ),
        (
            &["run", "--stage1-url=https://example.com/stage1-fly.aci", &p.image],
            "--stage1-url=\"https://example.com/stage1-fly.aci\": Vessel fetches no stage1 image",
        ),
        (
            &["run", "--stage1-hash=sha512-0000", &p.image],
            "--stage1-hash=\"sha512-0000\": Vessel fetches no stage1 image",
        ),
        (
            &["run", "--stage1-from-dir=stage1-fly.aci", &p.image],
            "--stage1-from-dir=\"stage1-fly.aci\": Vessel fetches no stage1 image",
        ),
        (
            &["run", "--stage1=lxc", &p.image],
            "--stage1=\"lxc\": no such stage1",
        ),
    ];
    for (args, msg) in cases {
        let r = p.run(args);
        assert_eq!(r.code(), Some(2), "{args:?}:\n{r}");
        assert!(r.stderr.contains(msg), "{args:?}: expected {msg:?}:\n{r}");
        assert!(p.list().is_empty(), "{args:?} made a pod");
    }
    // A prepared fly pod keeps to the host's network when it runs.
    let uuid = p.prepare(&["--quiet", "--stage1=fly", &p.image, "--exec=/bin/true"]);
    let r = p.run(&["run-prepared", "--net=default", &uuid]);
    assert_eq!(r.code(), Some(2), "{r}");
    assert!(r.stderr.contains("runs under the fly stage1"), "{r}");
    assert_eq!(p.status(&uuid)["state"], "prepared");
}

#[test]
fn rkt_names_choose_fly_and_a_prepared_pod_keeps_its_flavour() {
    let p = PodEnv::new();
    let host_pid_ns = ns("pid");
    let r = p
        .run(&[
            "run",
            "--rm",
            "--stage1-name=coreos.com/rkt/stage1-fly:1.30.0",
            &p.image,
            "--exec=/bin/readlink",
            "--",
            "/proc/self/ns/pid",
        ])
        .success();
    assert_eq!(r.stdout.trim(), host_pid_ns, "{r}");
    let r = p
        .run(&[
            "run",
            "--rm",
            "--stage1-path=/usr/lib/rkt/stage1-images/stage1-fly.aci",
            &p.image,
            "--exec=/bin/readlink",
            "--",
            "/proc/self/ns/pid",
        ])
        .success();
    assert_eq!(r.stdout.trim(), host_pid_ns, "{r}");
    // rkt's default stage1 by name is Vessel's default: a pid namespace of its own.
    let r = p
        .run(&[
            "run",
            "--rm",
            "--net=none",
            "--stage1-name=coreos.com/rkt/stage1-coreos:1.30.0",
            &p.image,
            "--exec=/bin/readlink",
            "--",
            "/proc/self/ns/pid",
        ])
        .success();
    assert_ne!(r.stdout.trim(), host_pid_ns, "{r}");

    let uuid = p.prepare(&["--quiet", "--stage1=fly", &p.image, "--exec=/bin/true"]);
    assert_eq!(p.status(&uuid)["stage1"], "fly");
    let st = p.run(&["status", &uuid]).success();
    assert!(st.stdout.lines().any(|l| l == "stage1=fly"), "{st}");
    p.run(&["run-prepared", &uuid]).success();
    let st = p.status(&uuid);
    assert_eq!(st["stage1"], "fly");
    assert_eq!(st["state"], "exited");
    assert_eq!(st["apps"][0]["exit_code"], 0);
    assert_eq!(st["net"], "host");
    // A default pod beside it.
    p.run(&["run", "--net=none", &p.image, "--exec=/bin/true"])
        .success();
    let list = p.run(&["list", "--full"]).success();
    let header = list.stdout.lines().next().unwrap();
    assert!(header.trim_end().ends_with("STAGE1"), "{list}");
    let row = list.stdout.lines().find(|l| l.starts_with(&uuid)).unwrap();
    assert!(row.trim_end().ends_with("fly"), "{list}");
    assert!(
        list.stdout
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with(&uuid))
            .any(|l| l.trim_end().ends_with("default")),
        "{list}"
    );
    let flavours: Vec<String> = p
        .list()
        .iter()
        .map(|x| x["stage1"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(flavours.len(), 2);
    assert!(flavours.contains(&"fly".into()) && flavours.contains(&"default".into()));
}

#[test]
fn the_stage1_configuration_chooses_the_default_flavour() {
    let p = PodEnv::new();
    let local = p.v.path("local-config");
    std::fs::create_dir_all(local.join("stage1.d")).unwrap();
    std::fs::write(
        local.join("stage1.d/fly.json"),
        r#"{"rktKind":"stage1","rktVersion":"v1","name":"coreos.com/rkt/stage1-fly","version":"1.30.0","location":"/usr/lib/rkt/stage1-images/stage1-fly.aci"}"#,
    )
    .unwrap();
    let local_flag = format!("--local-config={}", local.display());
    let cfg = p.run(&[&local_flag, "config"]).success().json();
    let entry = cfg["stage0"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["rktKind"] == "stage1")
        .unwrap()
        .clone();
    assert_eq!(entry["name"], "coreos.com/rkt/stage1-fly");
    assert_eq!(entry["flavour"], "fly", "{cfg}");
    let readlink = |flags: &[&str]| {
        let mut args = vec![local_flag.as_str(), "run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&p.image, "--exec=/bin/readlink", "--", "/proc/self/ns/pid"]);
        p.run(&args).success().stdout.trim().to_string()
    };
    assert_eq!(readlink(&[]), ns("pid"), "the configuration chose fly");
    // The flag wins over the configuration.
    assert_ne!(readlink(&["--stage1=default", "--net=none"]), ns("pid"));
    // A configured stage1 Vessel does not have is named with its file.
    std::fs::write(
        local.join("stage1.d/fly.json"),
        r#"{"rktKind":"stage1","rktVersion":"v1","name":"example.com/my-stage1","version":"1"}"#,
    )
    .unwrap();
    let r = p.run(&[&local_flag, "run", "--rm", &p.image, "--exec=/bin/true"]);
    assert_eq!(r.code(), Some(2), "{r}");
    assert!(
        r.stderr
            .contains("fly.json: stage1 name \"example.com/my-stage1\""),
        "{r}"
    );
    assert!(p.list().is_empty());
}

#[test]
fn stopping_entering_and_removing_a_fly_pod_leave_nothing_behind() {
    let p = PodEnv::new();
    let marker = format!("vesselfly{}", std::process::id());
    // A pod whose app has children of its own, which a fly init must not leave running.
    let script = format!("sh -c 'exec -a {marker} sleep 300' & exec sleep 300");
    let uuid = p.detached(&["--stage1=fly"], &["/bin/sh", "-c", &script]);
    podkit::wait_for("the app's child", Duration::from_secs(10), || {
        !podkit::host_processes(&marker).is_empty()
    });
    let st = p.run(&["status", &uuid]).success();
    assert!(st.stdout.lines().any(|l| l == "stage1=fly"), "{st}");
    assert!(!cgroup_dirs(&uuid).is_empty());
    // enter: the app's mount namespace (its root), the host's pid namespace.
    let r = p
        .run(&[
            "enter",
            &uuid,
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/pid; test -e /etc/os-release && echo os-release || echo image-root",
        ])
        .success();
    assert!(r.stdout.contains(&ns("pid")), "{r}");
    assert!(r.stdout.contains("image-root"), "{r}");
    // The pod's mounts live in its own mount namespace, never the host's.
    assert!(host_mounts_under(p.v.dir()).is_empty());

    p.run(&["stop", &uuid]).success();
    let st = p.status(&uuid);
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["apps"][0]["exit_code"], 128 + 15, "{st}");
    podkit::wait_for(
        "the app's child to be killed",
        Duration::from_secs(10),
        || podkit::host_processes(&marker).is_empty(),
    );
    p.run(&["rm", &uuid]).success();
    assert!(p.list().is_empty());
    assert!(cgroup_dirs(&uuid).is_empty(), "cgroups left behind");
    assert!(host_mounts_under(p.v.dir()).is_empty());

    // stop --force (SIGKILL: a fly init takes no app along by dying), then gc.
    let uuid = p.detached(&["--stage1=fly"], &["/bin/sh", "-c", &script]);
    podkit::wait_for("the app's child", Duration::from_secs(10), || {
        !podkit::host_processes(&marker).is_empty()
    });
    p.run(&["stop", "--force", &uuid]).success();
    podkit::wait_for(
        "every process of the pod to go",
        Duration::from_secs(10),
        || podkit::host_processes(&marker).is_empty(),
    );
    p.run(&["gc", "--grace-period=0s"]).success();
    assert!(p.list().is_empty(), "gc left the pod");
    assert!(cgroup_dirs(&uuid).is_empty(), "cgroups left behind");
    assert!(host_mounts_under(p.v.dir()).is_empty());
}

#[test]
fn orphans_of_a_fly_app_are_killed_with_the_pod() {
    let p = PodEnv::new();
    let marker = format!("vesselflyorphan{}", std::process::id());
    let script = format!("for i in 1 2 3; do sh -c 'exec -a {marker} sleep 300' & done; exit 0");
    let r = fly(&p, &[], &[], &script);
    assert_eq!(r.code(), Some(0), "{r}");
    podkit::wait_for(
        "orphans to be killed with the pod",
        Duration::from_secs(10),
        || podkit::host_processes(&marker).is_empty(),
    );
}

/// `--interactive` works in a fly pod: the app's terminal is a pty of its own devpts.
#[test]
fn a_fly_pod_runs_an_interactive_app() {
    let p = PodEnv::new();
    let mut c = p.v.command(&[
        "run",
        "--rm",
        "--stage1=fly",
        "--interactive",
        &p.image,
        "--exec=/bin/sh",
    ]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"tty; exit 7\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(7), "{stdout}");
    assert!(stdout.contains("/dev/pts/"), "{stdout}");
}
