//! appc specifics: dependencies resolved from the store and rendered in order, the
//! pathWhitelist, names with versions and labels.

use crate::common;

use common::aci::{busybox_aci, AciLayout, BuiltAci};
use common::compress::Compression;
use common::rootfs::write_file;
use common::Vessel;

/// An ACI named `name` at 1.0 holding `files`, depending on the `deps` (name, version).
fn aci_with_files(
    v: &Vessel,
    name: &str,
    deps: &[(&str, &str)],
    files: &[(&str, &str)],
) -> BuiltAci {
    let tag = name.rsplit('/').next().unwrap();
    let mut layout = AciLayout::create(&v.path(&format!("{tag}.layout")), name, "1.0");
    for (dep, version) in deps {
        layout.depend_on(dep, version);
    }
    for (path, content) in files {
        write_file(&layout.rootfs(), path, content.as_bytes());
    }
    layout.build(&v.path(&format!("{tag}.aci")), Compression::Gzip)
}

#[test]
fn the_image_renders_over_its_dependencies() {
    let v = Vessel::new();
    v.fetch(
        &aci_with_files(
            &v,
            "example.com/base",
            &[],
            &[("etc/motd", "base"), ("etc/base-only", "b")],
        )
        .path_str(),
    );
    let app = aci_with_files(
        &v,
        "example.com/app",
        &[("example.com/base", "1.0")],
        &[("etc/motd", "app")],
    );
    assert_eq!(v.fetch(&app.path_str()), app.id);
    let rootfs = v.render(&app.id);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "app",
        "the image itself comes last"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/base-only")).unwrap(),
        "b"
    );
}

#[test]
fn dependencies_of_dependencies_are_rendered_too() {
    let v = Vessel::new();
    v.fetch(
        &aci_with_files(
            &v,
            "example.com/bottom",
            &[],
            &[("bottom", "1"), ("layered", "bottom")],
        )
        .path_str(),
    );
    v.fetch(
        &aci_with_files(
            &v,
            "example.com/middle",
            &[("example.com/bottom", "1.0")],
            &[("middle", "2"), ("layered", "middle")],
        )
        .path_str(),
    );
    let top = aci_with_files(
        &v,
        "example.com/top",
        &[("example.com/middle", "1.0")],
        &[("top", "3")],
    );
    v.fetch(&top.path_str());
    let rootfs = v.render(&top.id);
    for (f, content) in [
        ("bottom", "1"),
        ("middle", "2"),
        ("top", "3"),
        ("layered", "middle"),
    ] {
        assert_eq!(
            std::fs::read_to_string(rootfs.join(f)).unwrap(),
            content,
            "{f}"
        );
    }
}

#[test]
fn a_dependency_named_by_image_id_is_found() {
    let v = Vessel::new();
    let dep = aci_with_files(&v, "example.com/dep", &[], &[("dep-file", "from the dep")]);
    v.fetch(&dep.path_str());
    let mut layout = AciLayout::create(&v.path("byid.layout"), "example.com/byid", "1.0");
    layout.manifest["dependencies"] =
        serde_json::json!([{"imageName": "example.com/dep", "imageID": dep.id}]);
    let app = layout.build(&v.path("byid.aci"), Compression::Gzip);
    assert_eq!(v.fetch(&app.path_str()), app.id);
    assert_eq!(
        std::fs::read_to_string(v.render(&app.id).join("dep-file")).unwrap(),
        "from the dep"
    );
}

#[test]
fn a_missing_dependency_is_refused_naming_it() {
    let v = Vessel::new();
    let app = aci_with_files(
        &v,
        "example.com/orphan",
        &[("example.com/absent", "9.9")],
        &[("f", "f")],
    );
    v.fetch_refused(&app.path_str())
        .stderr_names(&[&app.path_str(), "example.com/absent"]);
    v.assert_nothing_stored();
}

#[test]
fn path_whitelist_keeps_only_the_listed_paths_in_the_rendered_tree() {
    let v = Vessel::new();
    v.fetch(&busybox_aci(v.work(), "example.com/base", "1.0", Compression::Gzip).path_str());
    let mut layout = AciLayout::create(&v.path("slim.layout"), "example.com/slim", "1.0");
    layout.depend_on("example.com/base", "1.0");
    write_file(&layout.rootfs(), "app/hello", b"hello");
    write_file(&layout.rootfs(), "app/unlisted", b"dropped");
    layout.manifest["pathWhitelist"] = serde_json::json!(["/bin/busybox", "/app/hello"]);
    let slim = layout.build(&v.path("slim.aci"), Compression::Gzip);
    v.fetch(&slim.path_str());
    let rootfs = v.render(&slim.id);
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(rootfs.join("app/hello").is_file());
    assert!(
        !rootfs.join("app/unlisted").exists(),
        "a path not in pathWhitelist was rendered"
    );
    assert!(
        !rootfs.join("etc/passwd").exists(),
        "a dependency's path not in pathWhitelist was rendered"
    );
    assert!(!rootfs.join("bin/sh").exists());
}

#[test]
fn names_resolve_with_and_without_a_version() {
    let v = Vessel::new();
    let one =
        v.fetch(&busybox_aci(v.work(), "example.com/tool", "1.0", Compression::Gzip).path_str());
    let mut layout = AciLayout::create(&v.path("tool2.layout"), "example.com/tool", "2.0");
    write_file(&layout.rootfs(), "version", b"2");
    layout.manifest["app"] = serde_json::json!({"exec": ["/version"], "user": "0", "group": "0"});
    let two = v.fetch(
        &layout
            .build(&v.path("tool2.aci"), Compression::Gzip)
            .path_str(),
    );
    let version_of = |name: &str| {
        let m = v.run(&["image", "cat-manifest", name]).success().json();
        m["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "version")
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(version_of("example.com/tool:1.0"), "1.0");
    assert_eq!(version_of("example.com/tool:2.0"), "2.0");
    assert_eq!(
        version_of("example.com/tool"),
        "2.0",
        "without a version, the newest import"
    );
    let images = v.images();
    let names: Vec<&str> = images.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["example.com/tool:1.0", "example.com/tool:2.0"]);
    assert_ne!(one, two);
}

#[test]
fn aci_labels_are_listed() {
    let v = Vessel::new();
    v.fetch(&busybox_aci(v.work(), "example.com/busybox", "1.36", Compression::Gzip).path_str());
    let image = &v.images()[0];
    assert_eq!(image["labels"]["version"], "1.36");
    assert_eq!(image["labels"]["os"], "linux");
    assert_eq!(image["labels"]["arch"], "amd64");
    assert_eq!(image["format"], "aci");
}
