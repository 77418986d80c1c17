//! Hostile images at run time: an image whose /proc, /dev or /etc points out of it.

use crate::common;

use common::aci::AciLayout;
use common::compress::Compression;
use common::host::Sentinel;
use common::rootfs::busybox_rootfs;
use common::Vessel;

/// A busybox ACI where `entry` is replaced by a symlink to `target`.
fn image_with_symlink(v: &Vessel, name: &str, entry: &str, target: &str) -> String {
    let layout = AciLayout::create(
        &v.path(&format!("{name}.layout")),
        &format!("example.com/{name}"),
        "1",
    );
    busybox_rootfs(&layout.rootfs());
    let p = layout.rootfs().join(entry);
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(target, &p).unwrap();
    let aci = layout.build(&v.path(&format!("{name}.aci")), Compression::None);
    v.fetch(&aci.path_str());
    format!("example.com/{name}:1")
}

#[test]
fn proc_as_a_symlink_to_the_root_is_refused_clearly() {
    let v = Vessel::new();
    let image = image_with_symlink(&v, "procroot", "proc", "/");
    let r = v.run(&["run", "--rm", &image, "--exec", "/bin/true"]);
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(
        r.stderr.contains("/proc") && r.stderr.contains("root"),
        "{r}"
    );
    assert!(v
        .run(&["list", "--format=json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn etc_pointing_outside_never_reaches_the_host() {
    let v = Vessel::new();
    let sentinel = Sentinel::new("etc");
    let image = image_with_symlink(&v, "etcout", "etc", &sentinel.absolute());
    let r = v.run(&[
        "run",
        "--rm",
        &image,
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /etc/hostname",
    ]);
    sentinel.assert_absent();
    // The pod runs; its /etc (a dangling symlink in the image) gets no pod files, and
    // nothing is created on the host.
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(r.stderr.contains("/etc/hostname"), "{r}");
}

#[test]
fn dev_pointing_at_the_host_dev_never_reaches_it() {
    let v = Vessel::new();
    let image = image_with_symlink(&v, "devout", "dev", "/dev");
    let before: Vec<_> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let r = v.run(&["run", "--rm", &image, "--exec", "/bin/true"]);
    let after: Vec<_> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "host /dev changed:\n{r}");
    // Either refused with a message naming /dev, or run with the pod's own /dev.
    if r.code() != Some(0) {
        assert!(r.stderr.contains("/dev"), "{r}");
    }
}

#[test]
fn a_passwd_line_named_like_a_uid_never_makes_user_root() {
    let v = Vessel::new();
    let layout = AciLayout::create(&v.path("numname.layout"), "example.com/numname", "1");
    busybox_rootfs(&layout.rootfs());
    // The image names a root entry "1000", before the real uid 1000.
    std::fs::write(
        layout.rootfs().join("etc/passwd"),
        "1000:x:0:0::/root:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    let aci = layout.build(&v.path("numname.aci"), Compression::None);
    v.fetch(&aci.path_str());
    let r = v.run(&[
        "run",
        "--rm",
        "example.com/numname:1",
        "--user=1000",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "id -u; grep CapEff /proc/self/status",
    ]);
    assert_eq!(r.code(), Some(0), "{r}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{r}");
    assert!(lines[1].ends_with("0000000000000000"), "{r}");
}
