//! `--private-users`: the pod in a user namespace of its own, mapped to host ids no other
//! pod uses, with the image's files still shown as root's (idmapped layers, no copy).

use crate::podkit;

use std::os::unix::fs::MetadataExt;

use podkit::PodEnv;

const FIRST_ID: u64 = 1 << 31;

fn host_uid_of_app(p: &PodEnv, uuid: &str) -> u64 {
    let pid = p.status(uuid)["apps"][0]["pid"].as_i64().expect("app pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn root_in_the_pod_is_an_unused_high_id_on_the_host() {
    let p = PodEnv::new();
    let r = p.sh(
        &["--private-users"],
        "id -u; cat /proc/self/uid_map; stat -c '%u %g' /bin/busybox; touch /new && echo writable",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{r}");
    let map: Vec<u64> = lines[1]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(map[0], 0);
    assert!(map[1] >= FIRST_ID, "mapped high: {r}");
    assert_eq!(map[2], 65536);
    assert_eq!(lines[2], "0 0", "the image's files are root's inside:\n{r}");
    assert_eq!(lines[3], "writable", "{r}");
}

#[test]
fn a_file_made_by_the_pods_root_in_a_host_volume_belongs_to_the_mapped_id() {
    let p = PodEnv::new();
    let host = p.v.path("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let r = p.sh_app(
        &[
            "--private-users",
            &format!("--volume=v,kind=host,source={}", host.display()),
        ],
        &["--mount=volume=v,target=/v"],
        "touch /v/made-by-root; cat /proc/self/uid_map",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    let base: u64 = r.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    let meta = std::fs::metadata(host.join("made-by-root")).unwrap();
    assert_eq!(
        meta.uid() as u64,
        base,
        "owned by the mapped uid, not host root"
    );
    assert_eq!(meta.gid() as u64, base);
}

#[test]
fn two_pods_never_share_a_range_and_ranges_are_given_back() {
    let p = PodEnv::new();
    let a = p
        .run(&[
            "run",
            "--detach",
            "--private-users",
            &p.image,
            "--exec",
            "/bin/sleep",
            "--",
            "30",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let b = p
        .run(&[
            "run",
            "--detach",
            "--private-users",
            &p.image,
            "--exec",
            "/bin/sleep",
            "--",
            "30",
        ])
        .success()
        .stdout
        .trim()
        .to_string();
    let (ua, ub) = (host_uid_of_app(&p, &a), host_uid_of_app(&p, &b));
    assert!(ua >= FIRST_ID && ub >= FIRST_ID);
    assert!(ua.abs_diff(ub) >= 65536, "ranges overlap: {ua} {ub}");
    // enter works across the namespace, as the app's root.
    let r = p.run(&[
        "enter",
        &a,
        "/bin/sh",
        "-c",
        "id -u; grep CapEff /proc/self/status",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert!(
        r.stdout.starts_with("0\n") && r.stdout.contains("00000000a80425fb"),
        "{r}"
    );
    for u in [&a, &b] {
        p.run(&["stop", "--force", u]).success();
        p.run(&["rm", u]).success();
    }
    let left: Vec<_> = std::fs::read_dir(p.v.dir().join("userns"))
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "ranges given back: {left:?}");
}

#[test]
fn private_users_with_host_network_and_ipc() {
    let p = PodEnv::new();
    let r = p.sh(
        &["--private-users", "--net=host", "--ipc=parent"],
        "ls /sys/class >/dev/null && echo sys-ok; id -u",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "sys-ok\n0\n", "{r}");
}
