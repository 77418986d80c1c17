//! `vessel fetch` of local images: OCI layouts, oci-archive and docker-archive tarballs,
//! and ACIs, plain and compressed; layers, whiteouts, opaque directories and indexes.

use crate::common;

use common::compress::Compression;
use common::oci::{busybox_layout, raw_image_layout, Layer, RawLayout};
use common::tar::TarWriter;
use common::Vessel;

#[test]
fn fetch_without_insecure_option_is_refused_with_the_flag_to_pass() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "latest");
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip);
    for image in [layout.reference(), aci.path_str()] {
        v.run(&["fetch", &image])
            .failure()
            .stderr_names(&[&image, "--insecure-options=image"]);
    }
    v.assert_nothing_stored();
}

#[test]
fn missing_oci_layout_is_refused_naming_the_image_and_the_cause_once() {
    let v = Vessel::new();
    let reference = format!("oci:{}:latest", v.path("nowhere").display());
    let run = v
        .fetch_refused(&reference)
        .stderr_names(&[&reference, "No such file or directory"]);
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "the cause is repeated:\n{run}"
    );
    v.assert_nothing_stored();
}

#[test]
fn oci_layout_made_by_umoci_is_imported_under_its_config_digest() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "latest");
    let id = v.fetch(&layout.reference());
    assert_eq!(id, layout.image_id());
    let images = v.images();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["name"], "localhost/busybox:latest");
    assert_eq!(images[0]["format"], "oci");
    v.assert_verify_clean();
}

#[test]
fn oci_archive_made_by_skopeo_is_imported() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "v1");
    let archive = layout.to_oci_archive(&v.path("busybox-oci.tar"));
    let id = v.fetch(&archive);
    assert_eq!(
        id,
        layout.image_id(),
        "skopeo keeps the config, so the ID is the layout's"
    );
    let rootfs = v.render(&id);
    assert!(rootfs.join("bin/busybox").is_file());
    v.assert_verify_clean();
}

#[test]
fn docker_archive_made_by_skopeo_is_named_as_docker_names_it() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "latest");
    let archive = layout.to_docker_archive(&v.path("busybox-docker.tar"), "busybox:latest");
    let id = v.fetch(&archive);
    assert!(id.starts_with("sha256-"), "{id}");
    let images = v.images();
    assert_eq!(images[0]["name"], "docker.io/library/busybox:latest");
    // The short name and the full one both find it.
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
    ] {
        let manifest = v.run(&["image", "cat-manifest", name]).success().json();
        assert_eq!(manifest["schemaVersion"], 2, "{name}");
    }
    assert!(v
        .render("busybox")
        .join("bin/sh")
        .symlink_metadata()
        .is_ok());
    v.assert_verify_clean();
}

#[test]
fn aci_built_by_actool_is_imported_under_the_sha512_of_its_tar() {
    let v = Vessel::new();
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::None);
    assert_eq!(v.fetch(&aci.path_str()), aci.id);
    let images = v.images();
    assert_eq!(images[0]["name"], "example.com/busybox:1.0");
    assert_eq!(images[0]["format"], "aci");
    v.assert_verify_clean();
}

#[test]
fn aci_given_as_a_file_url_is_imported() {
    let v = Vessel::new();
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip);
    assert_eq!(v.fetch(&format!("file://{}", aci.path_str())), aci.id);
}

/// A compressed ACI has the ID of its uncompressed tar, and renders the same files.
fn assert_compressed_aci_imports(compression: Compression) {
    let v = Vessel::new();
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1.0", compression);
    assert_eq!(v.fetch(&aci.path_str()), aci.id, "{compression:?}");
    let rootfs = v.render(&aci.id);
    assert_eq!(
        std::fs::read(rootfs.join("bin/busybox")).unwrap(),
        std::fs::read(common::rootfs::BUSYBOX).unwrap()
    );
    v.assert_verify_clean();
}

#[test]
fn aci_compressed_with_gzip_is_imported() {
    assert_compressed_aci_imports(Compression::Gzip);
}

#[test]
fn aci_compressed_with_bzip2_is_imported() {
    assert_compressed_aci_imports(Compression::Bzip2);
}

#[test]
fn aci_compressed_with_xz_is_imported() {
    assert_compressed_aci_imports(Compression::Xz);
}

#[test]
fn aci_compressed_with_zstd_is_imported() {
    assert_compressed_aci_imports(Compression::Zstd);
}

#[test]
fn fetching_an_oci_image_twice_gives_the_same_id_and_one_copy() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "latest");
    let first = v.fetch(&layout.reference());
    let (layers, blobs) = (v.layer_dirs(), v.blobs());
    let second = v.fetch(&layout.reference());
    assert_eq!(first, second);
    assert_eq!(v.layer_dirs(), layers, "the second fetch added layers");
    assert_eq!(v.blobs(), blobs, "the second fetch added blobs");
    assert_eq!(v.image_ids(), vec![first]);
}

#[test]
fn fetching_an_aci_twice_gives_the_same_id_and_one_copy() {
    let v = Vessel::new();
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Xz);
    let first = v.fetch(&aci.path_str());
    let (layers, blobs) = (v.layer_dirs(), v.blobs());
    assert_eq!(v.fetch(&aci.path_str()), first);
    assert_eq!(v.layer_dirs(), layers);
    assert_eq!(v.blobs(), blobs);
    assert_eq!(v.image_ids(), vec![first]);
}

#[test]
fn layers_uncompressed_gzip_and_zstd_all_import() {
    let v = Vessel::new();
    let layers: Vec<Layer> = [Compression::None, Compression::Gzip, Compression::Zstd]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Layer::new(
                &TarWriter::new()
                    .dir("data")
                    .file(&format!("data/{c:?}"), format!("layer {i}").as_bytes())
                    .finish(),
                *c,
            )
        })
        .collect();
    let (reference, id) = raw_image_layout(&v.path("layout"), &layers);
    assert_eq!(v.fetch(&reference), id);
    let rootfs = v.render(&id);
    for (i, c) in ["None", "Gzip", "Zstd"].iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(rootfs.join("data").join(c)).unwrap(),
            format!("layer {i}")
        );
    }
    assert_eq!(v.layer_dirs().len(), 3);
    v.assert_verify_clean();
}

#[test]
fn file_deleted_by_an_upper_umoci_layer_is_absent_after_render() {
    let v = Vessel::new();
    let layout = busybox_layout(&v.path("busybox"), "latest");
    layout.add_layer(|root| {
        common::rootfs::write_file(root, "etc/doomed", b"deleted by the next layer");
        common::rootfs::write_file(root, "etc/kept", b"stays");
        std::fs::create_dir_all(root.join("var/doomed-dir/sub")).unwrap();
        common::rootfs::write_file(root, "var/doomed-dir/sub/f", b"x");
    });
    layout.add_layer(|root| {
        std::fs::remove_file(root.join("etc/doomed")).unwrap();
        std::fs::remove_dir_all(root.join("var/doomed-dir")).unwrap();
    });
    let id = v.fetch(&layout.reference());
    assert_eq!(v.layer_dirs().len(), 3);
    let rootfs = v.render(&id);
    assert!(
        !rootfs.join("etc/doomed").exists(),
        "the whiteout did not hide etc/doomed"
    );
    assert!(
        !rootfs.join("var/doomed-dir").exists(),
        "the whiteout did not hide var/doomed-dir"
    );
    assert_eq!(std::fs::read(rootfs.join("etc/kept")).unwrap(), b"stays");
    assert!(rootfs.join("bin/busybox").is_file());
    // No whiteout marker leaks into the rendered tree.
    let leaked = walk_names(&rootfs).into_iter().find(|n| n.contains(".wh."));
    assert_eq!(leaked, None);
    v.assert_verify_clean();
}

#[test]
fn opaque_directory_hides_everything_below_it() {
    let v = Vessel::new();
    let lower = TarWriter::new()
        .dir("etc")
        .dir("etc/conf.d")
        .file("etc/conf.d/old-a", b"a")
        .file("etc/conf.d/old-b", b"b")
        .dir("etc/conf.d/old-dir")
        .file("etc/conf.d/old-dir/f", b"f")
        .file("etc/sibling", b"untouched")
        .finish();
    let upper = TarWriter::new()
        .dir("etc/conf.d")
        .file("etc/conf.d/.wh..wh..opq", b"")
        .file("etc/conf.d/new", b"new")
        .finish();
    let layers = [
        Layer::new(&lower, Compression::Gzip),
        Layer::new(&upper, Compression::Gzip),
    ];
    let (reference, id) = raw_image_layout(&v.path("layout"), &layers);
    assert_eq!(v.fetch(&reference), id);
    let rootfs = v.render(&id);
    assert_eq!(
        walk_names(&rootfs.join("etc/conf.d")),
        vec!["new".to_string()]
    );
    assert_eq!(
        std::fs::read(rootfs.join("etc/sibling")).unwrap(),
        b"untouched"
    );
    v.assert_verify_clean();
}

#[test]
fn whiteout_of_a_directory_removes_its_whole_tree() {
    let v = Vessel::new();
    let lower = TarWriter::new()
        .dir("opt")
        .dir("opt/app")
        .dir("opt/app/lib")
        .file("opt/app/lib/x.so", b"x")
        .file("opt/keep", b"k")
        .finish();
    let upper = TarWriter::new()
        .dir("opt")
        .file("opt/.wh.app", b"")
        .finish();
    let layers = [
        Layer::new(&lower, Compression::None),
        Layer::new(&upper, Compression::None),
    ];
    let (reference, id) = raw_image_layout(&v.path("layout"), &layers);
    v.fetch(&reference);
    let rootfs = v.render(&id);
    assert_eq!(walk_names(&rootfs.join("opt")), vec!["keep".to_string()]);
}

#[test]
fn oci_layer_without_directory_entries_gets_its_parents_created() {
    // Not every producer writes an entry for each directory; tar creates missing parents.
    let v = Vessel::new();
    let tar = TarWriter::new()
        .file("usr/local/bin/tool", b"deep")
        .file("a/b/c/d/e", b"deeper")
        .finish();
    let (reference, id) =
        raw_image_layout(&v.path("layout"), &[Layer::new(&tar, Compression::Gzip)]);
    assert_eq!(v.fetch(&reference), id);
    let rootfs = v.render(&id);
    assert_eq!(
        std::fs::read(rootfs.join("usr/local/bin/tool")).unwrap(),
        b"deep"
    );
    assert_eq!(std::fs::read(rootfs.join("a/b/c/d/e")).unwrap(), b"deeper");
}

#[test]
fn aci_without_directory_entries_gets_its_parents_created() {
    let v = Vessel::new();
    let tar = common::aci::raw_aci(&common::aci::manifest_bytes("example.com/nodirs"), |t| {
        t.file("rootfs/usr/local/bin/tool", b"deep");
    });
    let aci = common::aci::write_aci(&v.path("nodirs.aci"), &tar, Compression::None);
    assert_eq!(v.fetch(&aci.path_str()), aci.id);
    assert_eq!(
        std::fs::read(v.render(&aci.id).join("usr/local/bin/tool")).unwrap(),
        b"deep"
    );
}

#[test]
fn image_index_is_resolved_to_linux_amd64() {
    let v = Vessel::new();
    let mut layout = RawLayout::create(&v.path("multi"));
    let arm = layout.add_image_with(
        &[Layer::new(
            &TarWriter::new().file("arch", b"arm64").finish(),
            Compression::Gzip,
        )],
        &common::oci::image_config(
            "arm64",
            &[Layer::new(
                &TarWriter::new().file("arch", b"arm64").finish(),
                Compression::Gzip,
            )],
        ),
    );
    let amd_layers = [Layer::new(
        &TarWriter::new().file("arch", b"amd64").finish(),
        Compression::Gzip,
    )];
    let amd = layout.add_image(&amd_layers);
    let index = layout.add_index(&[
        (&arm.descriptor, "linux", "arm64"),
        (&amd.descriptor, "linux", "amd64"),
    ]);
    let reference = layout.tag(&index, "multi");
    assert_eq!(v.fetch(&reference), amd.id);
    assert_eq!(
        std::fs::read(v.render(&amd.id).join("arch")).unwrap(),
        b"amd64"
    );
}

#[test]
fn image_index_without_linux_amd64_is_refused_naming_what_it_has() {
    let v = Vessel::new();
    let mut layout = RawLayout::create(&v.path("armonly"));
    let layers = [Layer::new(
        &TarWriter::new().file("arch", b"arm64").finish(),
        Compression::Gzip,
    )];
    let arm = layout.add_image_with(&layers, &common::oci::image_config("arm64", &layers));
    let index = layout.add_index(&[(&arm.descriptor, "linux", "arm64")]);
    let reference = layout.tag(&index, "arm");
    v.fetch_refused(&reference)
        .stderr_names(&[&reference, "linux/amd64", "linux/arm64"]);
    v.assert_nothing_stored();
}

#[test]
fn a_layer_shared_by_two_images_is_stored_once() {
    let v = Vessel::new();
    let base = Layer::new(
        &TarWriter::new()
            .dir("base")
            .file("base/shared", b"shared")
            .finish(),
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
    let (ref_one, id_one) = raw_image_layout(&v.path("one"), &[base.clone(), one]);
    let (ref_two, id_two) = raw_image_layout(&v.path("two"), &[base, two]);
    assert_eq!(v.fetch(&ref_one), id_one);
    assert_eq!(v.fetch(&ref_two), id_two);
    assert_eq!(
        v.layer_dirs().len(),
        3,
        "the shared base layer was stored twice: {:?}",
        v.layer_dirs()
    );
    assert!(v.render(&id_two).join("base/shared").is_file());
}

/// Names in a directory, sorted; recursive names use `/`.
fn walk_names(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            out.extend(
                walk_names(&e.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        }
        out.push(name);
    }
    out.sort();
    out
}

#[test]
fn docker_archive_of_several_images_is_imported_by_the_tag_named() {
    let v = Vessel::new();
    let mut archive = common::oci::DockerArchiveBuilder::new();
    archive.add_image(
        "example.org/one:1",
        &[TarWriter::new().file("which", b"one").finish()],
    );
    let two = archive.add_image(
        "example.org/two:2",
        &[TarWriter::new().file("which", b"two").finish()],
    );
    let file = v.path("two-images.tar");
    std::fs::write(&file, archive.finish()).unwrap();
    let unnamed = format!("docker-archive:{}", file.display());
    v.fetch_refused(&unnamed).stderr_names(&[&unnamed]);
    v.assert_nothing_stored();
    assert_eq!(v.fetch(&format!("{unnamed}:example.org/two:2")), two);
    assert_eq!(v.images()[0]["name"], "example.org/two:2");
    assert_eq!(std::fs::read(v.render(&two).join("which")).unwrap(), b"two");
}

#[test]
fn oci_archive_and_layout_of_several_tags_are_imported_by_the_tag_named() {
    let v = Vessel::new();
    let mut layout = RawLayout::create(&v.path("tags"));
    let mut ids = Vec::new();
    for tag in ["a", "b"] {
        let image = layout.add_image(&[Layer::new(
            &TarWriter::new().file("which", tag.as_bytes()).finish(),
            Compression::Gzip,
        )]);
        layout.tag(&image.descriptor, tag);
        ids.push(image.id);
    }
    let file = v.path("tags.tar");
    common::oci::tar_layout(layout.dir(), &file);
    let archive = format!("oci-archive:{}", file.display());
    for unnamed_or_unknown in [
        archive.clone(),
        format!("{archive}:nope"),
        layout.reference("nope"),
    ] {
        v.fetch_refused(&unnamed_or_unknown)
            .stderr_names(&[&unnamed_or_unknown]);
    }
    v.assert_nothing_stored();
    assert_eq!(v.fetch(&format!("{archive}:b")), ids[1]);
    assert_eq!(v.fetch(&layout.reference("a")), ids[0]);
    assert_eq!(
        std::fs::read(v.render(&ids[1]).join("which")).unwrap(),
        b"b"
    );
    assert_eq!(
        std::fs::read(v.render(&ids[0]).join("which")).unwrap(),
        b"a"
    );
}
