//! Volumes: host and empty volumes, image mount points, sharing between apps, and the
//! checks of ace.md's "Volume Setup".

use crate::common;
use crate::podkit;

use common::aci::AciLayout;
use common::compress::Compression;
use common::host::Sentinel;
use common::rootfs::busybox_rootfs;
use podkit::PodEnv;

#[test]
fn host_volume_read_write_and_read_only() {
    let p = PodEnv::new();
    let host = p.v.path("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello\n").unwrap();
    let vol = format!("data,kind=host,source={}", host.display());
    let r = p.sh_app(
        &[&format!("--volume={vol}")],
        &["--mount=volume=data,target=/data"],
        "cat /data/from-host; echo made > /data/from-pod",
    );
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "hello\n");
    assert_eq!(
        std::fs::read_to_string(host.join("from-pod")).unwrap(),
        "made\n"
    );
    let ro = format!(
        "--volume=data,kind=host,source={},readOnly=true",
        host.display()
    );
    let r = p.sh_app(
        &[&ro],
        &["--mount=volume=data,target=/data"],
        "echo x > /data/nope 2>/dev/null && echo wrote || echo refused",
    );
    assert_eq!(r.stdout, "refused\n", "{r}");
    assert!(!host.join("nope").exists());
}

#[test]
fn an_empty_volume_is_shared_by_the_apps_that_mount_it() {
    let p = PodEnv::new();
    let r = p.run(&[
        "run", "--rm", "--volume=shared,kind=empty,mode=0777", &p.image, "--name=writer", "--mount=volume=shared,target=/out", "--exec", "/bin/sh", "--", "-c",
        "echo from-writer > /out/file", "---", &p.image, "--name=reader", "--mount=volume=shared,target=/in", "--exec", "/bin/sh", "--", "-c",
        "for i in $(seq 50); do [ -s /in/file ] && break; sleep 0.05; done; cat /in/file; stat -c %a /in",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "from-writer\n777\n", "{r}");
}

#[test]
fn image_mount_points_bind_to_pod_volumes_by_name_or_get_an_empty_one() {
    let p = PodEnv::new();
    let layout = AciLayout::create(&p.v.path("mp.layout"), "example.com/mp", "1");
    busybox_rootfs(&layout.rootfs());
    let mut layout = layout;
    layout.manifest["app"]["mountPoints"] =
        serde_json::json!([{"name": "data", "path": "/data"}, {"name": "cache", "path": "/cache"}]);
    let aci = layout.build(&p.v.path("mp.aci"), Compression::None);
    p.v.fetch(&aci.path_str());
    let host = p.v.path("hostdata");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("x"), "x\n").unwrap();
    let r = p.run(&[
        "run",
        "--rm",
        &format!("--volume=data,kind=host,source={}", host.display()),
        "example.com/mp:1",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /data/x; touch /cache/ok && echo cache-writable",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "x\ncache-writable\n", "{r}");
}

#[test]
fn bad_volume_input_is_refused_and_leaves_no_pod() {
    let p = PodEnv::new();
    let host = p.v.path("src");
    std::fs::create_dir(&host).unwrap();
    let link = p.v.path("src-link");
    std::os::unix::fs::symlink(&host, &link).unwrap();
    let cases: Vec<(Vec<String>, Vec<&str>, &str)> = vec![
        (
            vec![format!("--volume=v,kind=host,source={}", host.display())],
            vec![],
            "not mounted by any app",
        ),
        (
            vec![],
            vec!["--mount=volume=missing,target=/x"],
            "no --volume defines",
        ),
        (
            vec![format!("--volume=v,kind=host,source={}", link.display())],
            vec!["--mount=volume=v,target=/x"],
            "symlink",
        ),
        (
            vec![format!(
                "--volume=v,kind=host,source={}/nope",
                host.display()
            )],
            vec!["--mount=volume=v,target=/x"],
            "does not exist",
        ),
        (
            vec![
                "--volume=a,kind=empty".into(),
                "--volume=b,kind=empty".into(),
            ],
            vec![
                "--mount=volume=a,target=/data",
                "--mount=volume=b,target=/data/inner",
            ],
            "overlap",
        ),
        (vec!["--volume=v,kind=bogus".into()], vec![], "kind"),
    ];
    for (pod_flags, app_flags, needle) in cases {
        let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
        args.extend(pod_flags.clone());
        args.push(p.image.clone());
        args.extend(app_flags.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = p.run(&refs);
        assert_eq!(r.code(), Some(1), "{pod_flags:?} {app_flags:?}:\n{r}");
        assert!(r.stderr.contains(needle), "expected {needle:?}:\n{r}");
        assert!(
            p.list().is_empty(),
            "a refused pod leaves nothing: {:?}",
            p.list()
        );
    }
}

#[test]
fn a_target_that_is_a_symlink_out_lands_inside_the_root() {
    let p = PodEnv::new();
    let layout = AciLayout::create(&p.v.path("ln.layout"), "example.com/ln", "1");
    busybox_rootfs(&layout.rootfs());
    // /data -> /srv: resolved inside the app's root, where the image has /srv.
    std::fs::create_dir(layout.rootfs().join("srv")).unwrap();
    std::os::unix::fs::symlink("/srv", layout.rootfs().join("data")).unwrap();
    // /missing -> a host path the image lacks: refused, never created on the host.
    let sentinel = Sentinel::new("voltarget");
    std::os::unix::fs::symlink(sentinel.absolute(), layout.rootfs().join("missing")).unwrap();
    let aci = layout.build(&p.v.path("ln.aci"), Compression::None);
    p.v.fetch(&aci.path_str());
    let host_srv: Vec<_> = std::fs::read_dir("/srv")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let r = p.run(&[
        "run",
        "--rm",
        "--volume=v,kind=empty",
        "example.com/ln:1",
        "--mount=volume=v,target=/data",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "echo inside > /data/f; cat /srv/f",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    assert_eq!(r.stdout, "inside\n");
    let after: Vec<_> = std::fs::read_dir("/srv")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(host_srv, after, "the host's /srv is untouched");
    let r = p.run(&[
        "run",
        "--rm",
        "--volume=v,kind=empty",
        "example.com/ln:1",
        "--mount=volume=v,target=/missing",
        "--exec",
        "/bin/true",
    ]);
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(r.stderr.contains("/missing is a symlink"), "{r}");
    sentinel.assert_absent();
}

#[test]
fn a_volume_over_files_of_the_image_warns() {
    let p = PodEnv::new();
    let r = p.sh_app(
        &["--volume=v,kind=empty"],
        &["--mount=volume=v,target=/bin"],
        "true",
    );
    // /bin is hidden by the empty volume: sh is gone, so the app cannot start; the warning says why.
    assert!(r.stderr.contains("hides files the image has there"), "{r}");
}
