//! `vessel image list|rm|cat-manifest|extract|render|export|gc|verify` on real images.

use crate::common;

use std::path::Path;

use common::aci::{busybox_aci, AciLayout, BuiltAci};
use common::compress::Compression;
use common::oci::{busybox_layout, image_config, raw_image_layout, Layer, RawLayout, UmociLayout};
use common::rootfs::write_file;
use common::tar::TarWriter;
use common::Vessel;

/// Bytes of file data in a busybox root filesystem: what `size` should report.
fn busybox_rootfs_bytes(root: &Path) -> u64 {
    ["bin/busybox", "etc/passwd", "etc/group"]
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .sum()
}

fn fetched_busybox(v: &Vessel) -> (UmociLayout, String) {
    let layout = busybox_layout(&v.path("busybox"), "latest");
    let id = v.fetch(&layout.reference());
    (layout, id)
}

#[test]
fn list_table_shows_short_id_name_size_and_times() {
    let v = Vessel::new();
    let (_, id) = fetched_busybox(&v);
    let run = v.run(&["image", "list"]).success();
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), 2, "a header and one row:\n{run}");
    let header: Vec<&str> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"],
        "{run}"
    );
    let row: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        row[0],
        &id[..id.len().min("sha256-".len() + 12)],
        "short ID:\n{run}"
    );
    assert_eq!(row[1], "localhost/busybox:latest");
    assert!(row[2].ends_with("MiB"), "busybox is megabytes: {}", row[2]);
    assert!(row[3].ends_with("ago"), "import time: {}", row[3]);
    assert_eq!(row[4], "-", "never used");
}

#[test]
fn list_without_legend_has_no_header_and_full_has_full_ids() {
    let v = Vessel::new();
    let (_, id) = fetched_busybox(&v);
    let run = v.run(&["image", "list", "--no-legend"]).success();
    assert_eq!(run.stdout_lines().len(), 1, "{run}");
    assert!(!run.stdout.contains("IMPORT TIME"), "{run}");
    let full = v.run(&["image", "list", "--full", "--no-legend"]).success();
    assert!(
        full.stdout.starts_with(&format!("{id} ")),
        "--full prints the whole ID:\n{full}"
    );
}

#[test]
fn list_json_gives_every_field() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "latest");
    let id = v.fetch(&layout.reference());
    let images = v.images();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image["id"], id.as_str());
    assert_eq!(image["name"], "localhost/busybox:latest");
    assert_eq!(
        image["names"],
        serde_json::json!(["localhost/busybox:latest"])
    );
    assert_eq!(image["format"], "oci");
    assert_eq!(image["labels"]["os"], "linux");
    assert_eq!(image["labels"]["arch"], "amd64");
    assert_eq!(image["source"], layout.reference().as_str());
    // rkt's fields (nanoseconds; 0 for never used) beside Vessel's dates.
    assert!(image["last_used"].is_null(), "{image}");
    assert_eq!(image["last_used_time"], 0, "{image}");
    let nanos = image["import_time"].as_i64().unwrap();
    assert!(
        nanos > 1_700_000_000_000_000_000,
        "nanoseconds since the epoch: {image}"
    );
    let imported = image["imported"].as_str().unwrap();
    assert!(
        imported.contains('T') && imported.ends_with('Z'),
        "RFC 3339 UTC: {imported}"
    );
    let config_blob = layout.read_blob(layout.manifest()["config"]["digest"].as_str().unwrap());
    let config: serde_json::Value = serde_json::from_slice(&config_blob).unwrap();
    let key = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .replacen(':', "-", 1);
    assert_eq!(image["layers"], serde_json::json!([key]));
    let rendered = v.render(&id);
    assert_eq!(
        image["size"].as_u64(),
        Some(busybox_rootfs_bytes(&rendered)),
        "size is the file bytes"
    );
}

#[test]
fn list_json_pretty_is_the_same_data_on_several_lines() {
    let v = Vessel::new();
    fetched_busybox(&v);
    let compact = v.run(&["image", "list", "--format=json"]).success();
    let pretty = v.run(&["image", "list", "--format=json-pretty"]).success();
    assert_eq!(compact.stdout.trim().lines().count(), 1);
    assert!(pretty.stdout.lines().count() > 10);
    assert_eq!(compact.json(), pretty.json());
}

#[test]
fn list_of_an_empty_store_is_empty() {
    let v = Vessel::new();
    assert_eq!(v.images(), Vec::<serde_json::Value>::new());
    let run = v.run(&["image", "list", "--no-legend"]).success();
    assert_eq!(run.stdout, "");
}

#[test]
fn rm_by_id_prefix_removes_only_that_image() {
    let v = Vessel::new();
    let (_, oci) = fetched_busybox(&v);
    let aci =
        v.fetch(&busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip).path_str());
    let prefix = &oci[..14];
    let run = v.run(&["image", "rm", prefix]).success();
    assert_eq!(run.stdout.trim(), oci, "rm prints the removed ID");
    assert_eq!(v.image_ids(), vec![aci]);
    v.assert_verify_clean();
}

#[test]
fn rm_by_name_works_for_tags_and_aci_names() {
    let v = Vessel::new();
    fetched_busybox(&v);
    v.fetch(&busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip).path_str());
    v.run(&[
        "image",
        "rm",
        "localhost/busybox:latest",
        "example.com/busybox:1.0",
    ])
    .success();
    assert_eq!(v.image_ids(), Vec::<String>::new());
    // Its tag went with it: the name no longer resolves.
    v.run(&["image", "cat-manifest", "localhost/busybox:latest"])
        .failure();
}

#[test]
fn rm_of_an_unknown_image_fails_naming_it_and_keeps_the_others() {
    let v = Vessel::new();
    let (_, id) = fetched_busybox(&v);
    v.run(&["image", "rm", "example.com/nothing:1"])
        .failure()
        .stderr_names(&["example.com/nothing:1"]);
    assert_eq!(v.image_ids(), vec![id]);
}

/// Imports small images until two IDs share their first hex digit; returns that prefix
/// and the two IDs.
fn two_images_sharing_a_prefix(v: &Vessel) -> (String, String, String) {
    let layer = Layer::new(
        &TarWriter::new().file("f", b"shared").finish(),
        Compression::Gzip,
    );
    let mut seen: Vec<String> = Vec::new();
    for i in 0..17 {
        let mut config = image_config("amd64", std::slice::from_ref(&layer));
        config["config"]["Env"] = serde_json::json!([format!("N={i}")]);
        let mut layout = RawLayout::create(&v.path(&format!("img{i}")));
        let image = layout.add_image_with(std::slice::from_ref(&layer), &config);
        let id = v.fetch(&layout.tag(&image.descriptor, "latest"));
        let prefix = id[..8].to_string(); // "sha256-" and one hex digit
        if let Some(other) = seen.iter().find(|s| s.starts_with(&prefix)) {
            return (prefix, other.clone(), id);
        }
        seen.push(id);
    }
    unreachable!("17 IDs and 16 hex digits: two must share the first")
}

#[test]
fn ambiguous_id_prefix_is_refused_listing_the_candidates() {
    let v = Vessel::new();
    let (prefix, a, b) = two_images_sharing_a_prefix(&v);
    let before = v.image_ids();
    for cmd in ["rm", "cat-manifest"] {
        v.run(&["image", cmd, &prefix])
            .failure()
            .stderr_names(&[&prefix, "ambiguous", &a, &b]);
    }
    assert_eq!(v.image_ids(), before, "nothing was removed");
}

#[test]
fn cat_manifest_prints_the_oci_manifest_as_stored() {
    let v = Vessel::new();
    let (layout, id) = fetched_busybox(&v);
    let run = v.run(&["image", "cat-manifest", &id]).success();
    assert_eq!(run.json(), layout.manifest());
    let compact = v
        .run(&["image", "cat-manifest", "--compact", &id])
        .success();
    assert_eq!(compact.stdout.trim().lines().count(), 1);
    assert_eq!(compact.json(), layout.manifest());
}

#[test]
fn cat_manifest_prints_the_aci_manifest() {
    let v = Vessel::new();
    let aci = busybox_aci(v.work(), "example.com/busybox", "2.5", Compression::None);
    v.fetch(&aci.path_str());
    let manifest = v
        .run(&["image", "cat-manifest", "example.com/busybox:2.5"])
        .success()
        .json();
    assert_eq!(manifest["acKind"], "ImageManifest");
    assert_eq!(manifest["name"], "example.com/busybox");
    assert_eq!(manifest["app"]["exec"], serde_json::json!(["/bin/sh"]));
}

#[test]
fn cat_manifest_of_an_unknown_image_fails() {
    let v = Vessel::new();
    v.run(&["image", "cat-manifest", "sha512-0123"])
        .failure()
        .stderr_names(&["sha512-0123"]);
}

/// A busybox ACI and an app ACI that depends on it, both fetched; returns the app.
fn app_with_dependency(v: &Vessel) -> BuiltAci {
    v.fetch(&busybox_aci(v.work(), "example.com/base", "1.0", Compression::Gzip).path_str());
    let mut app = AciLayout::create(&v.path("app.layout"), "example.com/app", "1.0");
    app.depend_on("example.com/base", "1.0");
    write_file(&app.rootfs(), "app/hello", b"hello from the app");
    let built = app.build(&v.path("app.aci"), Compression::Gzip);
    assert_eq!(v.fetch(&built.path_str()), built.id);
    built
}

#[test]
fn extract_writes_only_the_images_own_files_and_its_manifest() {
    let v = Vessel::new();
    let app = app_with_dependency(&v);
    let out = v.path("extracted");
    v.run(&["image", "extract", &app.id, out.to_str().unwrap()])
        .success();
    assert_eq!(
        std::fs::read(out.join("rootfs/app/hello")).unwrap(),
        b"hello from the app"
    );
    assert!(
        !out.join("rootfs/bin/busybox").exists(),
        "extract must leave dependencies out"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "example.com/app");
}

#[test]
fn render_writes_dependencies_and_the_image_together() {
    let v = Vessel::new();
    let app = app_with_dependency(&v);
    let out = v.path("rendered");
    v.run(&["image", "render", &app.id, out.to_str().unwrap()])
        .success();
    assert!(out.join("rootfs/bin/busybox").is_file());
    assert_eq!(
        std::fs::read(out.join("rootfs/app/hello")).unwrap(),
        b"hello from the app"
    );
    assert!(out.join("manifest").is_file());
}

#[test]
fn extract_rootfs_only_writes_the_tree_itself_and_respects_overwrite() {
    let v = Vessel::new();
    let (_, id) = fetched_busybox(&v);
    let out = v.path("x");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale"), b"old").unwrap();
    v.run(&[
        "image",
        "extract",
        "--rootfs-only",
        &id,
        out.to_str().unwrap(),
    ])
    .failure()
    .stderr_names(&[out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(out.join("stale")).unwrap(),
        b"old",
        "a refused extract changed DIR"
    );
    v.run(&[
        "image",
        "extract",
        "--rootfs-only",
        "--overwrite",
        &id,
        out.to_str().unwrap(),
    ])
    .success();
    assert!(!out.join("stale").exists());
    assert!(!out.join("manifest").exists() && !out.join("rootfs").exists());
    assert_eq!(
        std::fs::read(out.join("bin/busybox")).unwrap(),
        std::fs::read(common::rootfs::BUSYBOX).unwrap()
    );
    let passwd = std::fs::read_to_string(out.join("etc/passwd")).unwrap();
    assert!(passwd.contains(":1000:1000:"), "{passwd}");
}

#[test]
fn render_keeps_modes_owners_and_symlinks() {
    let v = Vessel::new();
    let tar = TarWriter::new()
        .dir("bin")
        .file_with_mode("bin/tool", b"#!/bin/sh\n", 0o750)
        .symlink("bin/alias", "tool")
        .entry(
            {
                let mut h = common::tar::Header::new(b'0', "owned");
                h.uid = 1000;
                h.gid = 1000;
                h
            },
            b"mine",
        )
        .finish();
    let (reference, id) =
        raw_image_layout(&v.path("layout"), &[Layer::new(&tar, Compression::Gzip)]);
    v.fetch(&reference);
    let rootfs = v.render(&id);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/tool")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    let owned = std::fs::metadata(rootfs.join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
}

#[test]
fn exported_aci_is_byte_identical_and_reimports_under_the_same_id() {
    let v = Vessel::new();
    let aci = busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Zstd);
    let id = v.fetch(&aci.path_str());
    let out = v.path("exported.aci");
    v.run(&["image", "export", &id, out.to_str().unwrap()])
        .success();
    assert_eq!(
        common::digest::aci_id(&std::fs::read(&out).unwrap()),
        id,
        "the export is the uncompressed ACI"
    );
    let fresh = Vessel::new();
    assert_eq!(fresh.fetch(out.to_str().unwrap()), id);
    fresh.assert_verify_clean();
}

/// An OCI image exports as one flat ACI (as rkt exported a Docker image): the layers
/// merged (a whiteout hides what a lower layer had), under the converted manifest; the
/// ACI imports into a fresh store with the same tree.
#[test]
fn an_oci_image_exports_as_one_flat_aci() {
    let v = Vessel::new();
    let base = Layer::new(
        &TarWriter::new()
            .file("keep", b"kept")
            .file("gone", b"hidden above")
            .finish(),
        Compression::Gzip,
    );
    let top = Layer::new(
        &TarWriter::new()
            .file(".wh.gone", b"")
            .file("added", b"new")
            .finish(),
        Compression::Gzip,
    );
    let (reference, id) = raw_image_layout(&v.path("layout"), &[base, top]);
    v.fetch(&reference);
    let out = v.path("flat.aci");
    v.run(&["image", "export", &id, out.to_str().unwrap()])
        .success();
    assert!(!v.path("flat.aci.part").exists());
    let fresh = Vessel::new();
    let aci_id = fresh.fetch(out.to_str().unwrap());
    assert_ne!(aci_id, id, "a new image: an ACI of the same tree");
    let root = fresh.render(&aci_id);
    assert_eq!(std::fs::read(root.join("keep")).unwrap(), b"kept");
    assert_eq!(std::fs::read(root.join("added")).unwrap(), b"new");
    assert!(!root.join("gone").exists(), "the whiteout was not applied");
    assert!(!root.join(".wh.gone").exists());
    let manifest = fresh.run(&["image", "cat-manifest", &aci_id]).success();
    assert!(
        manifest.stdout.contains("\"acKind\": \"ImageManifest\""),
        "{manifest}"
    );
    fresh.assert_verify_clean();
}

#[test]
fn export_does_not_replace_a_file_without_overwrite() {
    let v = Vessel::new();
    let id =
        v.fetch(&busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip).path_str());
    let out = v.path("exists.aci");
    std::fs::write(&out, b"keep me").unwrap();
    v.run(&["image", "export", &id, out.to_str().unwrap()])
        .failure()
        .stderr_names(&["--overwrite"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    v.run(&["image", "export", "--overwrite", &id, out.to_str().unwrap()])
        .success();
    assert_eq!(common::digest::aci_id(&std::fs::read(&out).unwrap()), id);
}

/// Two images sharing a base layer, each with a layer of its own.
fn two_images_sharing_a_base(v: &Vessel) -> [(String, String); 3] {
    let base = Layer::new(
        &TarWriter::new().file("base", b"base").finish(),
        Compression::Gzip,
    );
    let one = Layer::new(
        &TarWriter::new().file("one", b"1").finish(),
        Compression::Gzip,
    );
    let two = Layer::new(
        &TarWriter::new().file("two", b"2").finish(),
        Compression::Gzip,
    );
    let keys = [&base, &one, &two].map(|l| l.diff_id.replacen(':', "-", 1));
    let (ref_one, id_one) = raw_image_layout(&v.path("one"), &[base.clone(), one]);
    let (ref_two, id_two) = raw_image_layout(&v.path("two"), &[base, two]);
    v.fetch(&ref_one);
    v.fetch(&ref_two);
    [
        (id_one, keys[1].clone()),
        (id_two, keys[2].clone()),
        (String::new(), keys[0].clone()),
    ]
}

#[test]
fn gc_keeps_what_images_use_and_removes_layers_after_their_images() {
    let v = Vessel::new();
    let [(id_one, key_one), (id_two, key_two), (_, key_base)] = two_images_sharing_a_base(&v);
    let everything = v.layer_dirs();
    assert_eq!(everything.len(), 3);

    let run = v.run(&["image", "gc"]).success();
    assert_eq!(run.stdout, "", "gc removed something images use:\n{run}");
    assert_eq!(v.layer_dirs(), everything);

    v.run(&["image", "rm", &id_one]).success();
    assert_eq!(v.layer_dirs(), everything, "rm alone removes no layer");
    let run = v.run(&["image", "gc"]).success();
    assert!(
        run.stdout.contains(&key_one),
        "gc should remove the removed image's own layer:\n{run}"
    );
    let mut left = vec![key_base.clone(), key_two.clone()];
    left.sort();
    assert_eq!(v.layer_dirs(), left, "the shared base layer must stay");
    assert_eq!(
        std::fs::read(v.render(&id_two).join("base")).unwrap(),
        b"base"
    );

    v.run(&["image", "rm", &id_two]).success();
    v.run(&["image", "gc"]).success();
    assert_eq!(v.layer_dirs(), Vec::<String>::new());
    assert_eq!(
        v.blobs(),
        Vec::<String>::new(),
        "manifests and configs of removed images stay behind"
    );
    v.assert_verify_clean();
}

/// rkt's --grace-period is about images: those used (or imported) within it stay, with
/// their layers; a removed image's layers go at once.
#[test]
fn gc_grace_period_keeps_recently_used_images() {
    let v = Vessel::new();
    let [(id_one, key_one), _, _] = two_images_sharing_a_base(&v);
    let before = v.layer_dirs();
    let run = v.run(&["image", "gc", "--grace-period=1h"]).success();
    assert_eq!(run.stdout, "", "{run}");
    assert_eq!(v.layer_dirs(), before);
    v.run(&["image", "rm", &id_one]).success();
    let run = v.run(&["image", "gc", "--grace-period=1h"]).success();
    assert!(run.stdout.contains(&key_one), "{run}");
}

#[test]
fn verify_passes_on_a_clean_store() {
    let v = Vessel::new();
    fetched_busybox(&v);
    v.fetch(&busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip).path_str());
    let run = v.run(&["image", "verify"]).success();
    assert_eq!(run.stdout, "");
    let json = v
        .run(&["image", "verify", "--format=json"])
        .success()
        .json();
    assert_eq!(json["problems"], serde_json::json!([]));
    assert_eq!(json["images"], 2);
    assert_eq!(json["layers"], 2);
}

#[test]
fn verify_names_the_layer_and_file_after_a_file_changes() {
    let v = Vessel::new();
    fetched_busybox(&v);
    let key = v.layer_dirs().pop().unwrap();
    let passwd = v.layer_rootfs(&key).join("etc/passwd");
    let mut content = std::fs::read(&passwd).unwrap();
    content[0] ^= 0x20; // same size, different bytes
    std::fs::write(&passwd, content).unwrap();
    let run = v.run(&["image", "verify"]);
    assert_eq!(run.code(), Some(1), "{run}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("etc/passwd"))
        .unwrap_or_else(|| panic!("no line names etc/passwd:\n{run}"));
    assert!(
        line.contains(&key),
        "the line should name layer {key}: {line}"
    );
    let json = v.run(&["image", "verify", "--format=json"]).json();
    assert_eq!(json["problems"].as_array().unwrap().len(), 1, "{json}");
}

#[test]
fn verify_reports_a_file_removed_from_a_layer() {
    let v = Vessel::new();
    fetched_busybox(&v);
    let key = v.layer_dirs().pop().unwrap();
    std::fs::remove_file(v.layer_rootfs(&key).join("etc/group")).unwrap();
    let run = v.run(&["image", "verify"]);
    assert_eq!(run.code(), Some(1), "{run}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains(&key) && l.contains("etc/group")),
        "{run}"
    );
}

#[test]
fn verify_names_a_corrupt_blob() {
    let v = Vessel::new();
    let (layout, id) = fetched_busybox(&v);
    let manifest = layout.manifest_digest();
    let hex = manifest.trim_start_matches("sha256:");
    let blob = v.store().join("blobs/sha256").join(hex);
    let mut data = std::fs::read(&blob).unwrap();
    data.push(b' ');
    std::fs::write(&blob, data).unwrap();
    let run = v.run(&["image", "verify"]);
    assert_eq!(run.code(), Some(1), "{run}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(hex))
        .unwrap_or_else(|| panic!("verify should name blob {hex}:\n{run}"));
    assert!(line.contains("blob"), "{line}");
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "only the blob is corrupt, image {id} is otherwise sound:\n{run}"
    );
}

#[test]
fn verify_reports_an_image_whose_layer_is_gone() {
    let v = Vessel::new();
    let (_, id) = fetched_busybox(&v);
    let key = v.layer_dirs().pop().unwrap();
    std::fs::remove_dir_all(v.store().join("layers").join(&key)).unwrap();
    let run = v.run(&["image", "verify"]);
    assert_eq!(run.code(), Some(1), "{run}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains(&id) && l.contains(&key)),
        "{run}"
    );
}
