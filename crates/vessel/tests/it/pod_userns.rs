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
    let a = p.detached(&["--private-users"], &["/bin/sleep", "30"]);
    let b = p.detached(&["--private-users"], &["/bin/sleep", "30"]);
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
    let left = registrations_of(&p);
    assert!(left.is_empty(), "ranges given back: {left:?}");
}

/// The host's registry of `--private-users` ranges, shared by every data dir.
const REGISTRY: &str = "/var/lib/vessel-userns";

/// The registrations naming `p`'s data dir: (slot, pod UUID).
fn registrations_of(p: &PodEnv) -> Vec<(u64, String)> {
    let dir = std::fs::canonicalize(p.v.dir()).unwrap();
    let mut out = Vec::new();
    for ent in std::fs::read_dir(REGISTRY).into_iter().flatten().flatten() {
        let Ok(slot) = ent.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(data) = std::fs::read(ent.path()) else {
            continue;
        };
        let Ok(r) = serde_json::from_slice::<serde_json::Value>(&data) else {
            continue;
        };
        if r["dir"].as_str() == Some(dir.to_str().unwrap()) {
            out.push((slot, r["uuid"].as_str().unwrap_or("").to_string()));
        }
    }
    out.sort();
    out
}

fn detached_private(p: &PodEnv) -> String {
    p.run(&[
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
    .to_string()
}

/// Hardening finding 15: two data dirs on one host take their ranges from one registry,
/// so their pods never share host ids; a registration whose pod is gone (its data dir
/// deleted by hand) is reclaimed by any store's gc.
#[test]
fn ranges_are_unique_across_data_dirs_and_stale_ones_are_reclaimed() {
    let (p1, p2, p3) = (PodEnv::new(), PodEnv::new(), PodEnv::new());
    let a = detached_private(&p1);
    let b = detached_private(&p2);
    let (ua, ub) = (host_uid_of_app(&p1, &a), host_uid_of_app(&p2, &b));
    assert!(ua.abs_diff(ub) >= 65536, "ranges overlap: {ua} {ub}");
    // Each pod's range is the host registry's slot naming it.
    for (p, uuid, uid) in [(&p1, &a, ua), (&p2, &b, ub)] {
        let regs = registrations_of(p);
        assert_eq!(regs.len(), 1, "{regs:?}");
        assert_eq!(&regs[0].1, uuid);
        assert_eq!(FIRST_ID + regs[0].0 * 65536, uid, "{regs:?}");
    }
    // A prepared pod whose data dir loses it by hand: its registration is stale.
    let c = p3
        .run(&["prepare", "--private-users", &p3.image])
        .success()
        .stdout
        .trim()
        .to_string();
    let held = registrations_of(&p3);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].1, c);
    std::fs::remove_dir_all(p3.v.dir().join("pods/prepared").join(&c)).unwrap();
    p1.run(&["gc"]).success();
    assert!(
        registrations_of(&p3).is_empty(),
        "a stale registration is reclaimed by another store's gc"
    );
    assert_eq!(registrations_of(&p1).len(), 1, "a live pod keeps its range");
    assert_eq!(registrations_of(&p2).len(), 1, "a live pod keeps its range");
    for (p, u) in [(&p1, &a), (&p2, &b)] {
        p.run(&["stop", "--force", u]).success();
        p.run(&["rm", u]).success();
        assert!(registrations_of(p).is_empty(), "rm gives the range back");
    }
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
