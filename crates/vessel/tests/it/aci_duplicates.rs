//! An ACI that names one path twice is ambiguous: rkt and actool use the first `manifest`,
//! tar semantics the last. Vessel refuses any duplicate (the manifest, or any path under
//! rootfs/, however it is spelt), naming the image and the entry, and stores nothing.

use crate::common;

use common::aci::{busybox_aci, manifest_bytes, raw_aci, write_aci};
use common::compress::Compression;
use common::tar::TarWriter;
use common::Vessel;

fn refused(v: &Vessel, tar: &[u8], needles: &[&str]) {
    let aci = write_aci(
        &v.path(&format!("{}.aci", common::host::unique_name("dup"))),
        tar,
        Compression::Gzip,
    );
    let run = v
        .fetch_refused(&aci.path_str())
        .stderr_names(needles)
        .stderr_names(&[&aci.path_str()]);
    eprintln!("refused as it should be: {}", run.stderr.trim());
    v.assert_nothing_stored();
}

#[test]
fn aci_with_two_manifests_is_refused() {
    let v = Vessel::new();
    // The second manifest names another image: which one an importer used would decide
    // what the image is trusted as.
    let mut t = TarWriter::new();
    t.file("manifest", &manifest_bytes("example.com/first"))
        .file("manifest", &manifest_bytes("example.com/second"))
        .dir("rootfs")
        .file("rootfs/f", b"f");
    refused(&v, &t.finish(), &["manifest", "more than one manifest"]);
    // The same, spelt differently and after the root filesystem.
    let mut t = TarWriter::new();
    t.file("manifest", &manifest_bytes("example.com/first"))
        .dir("rootfs")
        .file("rootfs/f", b"f")
        .file("./manifest", &manifest_bytes("example.com/second"));
    refused(&v, &t.finish(), &["more than one manifest"]);
}

#[test]
fn aci_naming_a_file_twice_is_refused() {
    let v = Vessel::new();
    let tar = raw_aci(&manifest_bytes("example.com/dup"), |t| {
        t.dir("rootfs/etc")
            .file("rootfs/etc/passwd", b"root:x:0:0::/:/bin/sh\n")
            .file("rootfs/etc/passwd", b"root::0:0::/:/bin/sh\n");
    });
    refused(&v, &tar, &["rootfs/etc/passwd", "twice"]);
}

#[test]
fn aci_naming_a_path_twice_in_different_spellings_is_refused() {
    let v = Vessel::new();
    for (first, second) in [
        ("rootfs/bin", "rootfs/./bin"),
        ("rootfs/bin", "./rootfs//bin/"),
        ("rootfs/bin", "/rootfs/bin"),
    ] {
        let tar = raw_aci(&manifest_bytes("example.com/spelt"), |t| {
            t.dir(first).symlink(second, "/tmp");
        });
        refused(&v, &tar, &["rootfs/bin", "twice"]);
    }
}

#[test]
fn aci_naming_its_root_twice_is_refused() {
    let v = Vessel::new();
    let tar = raw_aci(&manifest_bytes("example.com/root"), |t| {
        t.dir("rootfs/");
    });
    refused(&v, &tar, &["twice"]);
}

#[test]
fn aci_with_distinct_paths_is_accepted() {
    // The check must not refuse a well-formed image: actool's own build of busybox, and a
    // raw ACI whose names differ only in case and by a trailing component.
    let v = Vessel::new();
    let built = busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip);
    v.fetch(&built.path_str());
    let tar = raw_aci(&manifest_bytes("example.com/distinct"), |t| {
        t.dir("rootfs/a")
            .file("rootfs/A", b"upper")
            .file("rootfs/a/a", b"lower");
    });
    let aci = write_aci(&v.path("distinct.aci"), &tar, Compression::Gzip);
    v.fetch(&aci.path_str());
    v.assert_verify_clean();
}
