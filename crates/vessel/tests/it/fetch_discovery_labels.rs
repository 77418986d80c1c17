//! appc discovery and the labels asked for (discovery.md, "Validation"): a label matches
//! only when the image's manifest has it with the same value. An image whose manifest
//! lacks the version asked for, or this host's os and arch the discovery templates were
//! rendered with, is refused, naming the image, the label and what the manifest has.
//! Served over plain HTTP on port 80 (names carry no port).

use crate::common;

use serde_json::json;

use common::aci::{AciLayout, BuiltAci};
use common::compress::Compression;
use common::httpd::{Httpd, Reply, WellKnownPorts};
use common::rootfs::busybox_rootfs;
use common::Vessel;

const NAME: &str = "127.0.0.1/apps/web";

/// An ACI named NAME with exactly `labels` in its manifest.
fn aci_with_labels(v: &Vessel, tag: &str, labels: &[(&str, &str)]) -> BuiltAci {
    let mut layout = AciLayout::create(&v.work().join(format!("{tag}.layout")), NAME, tag);
    busybox_rootfs(&layout.rootfs());
    layout.manifest["labels"] = labels
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    layout.build(&v.work().join(format!("{tag}.aci")), Compression::Gzip)
}

#[test]
fn an_image_lacking_a_label_asked_for_is_refused() {
    let _ports = WellKnownPorts::lock();
    let v = Vessel::new();
    let Some(h) = Httpd::start_on(80) else {
        panic!("port 80 on 127.0.0.1 is taken");
    };
    h.route(
        "/apps?ac-discovery=1",
        Reply::html(
            200,
            "<html><head><meta name=\"ac-discovery\" content=\"127.0.0.1/apps http://127.0.0.1/{name}-{version}.{ext}\"></head></html>",
        ),
    );
    let serve = |version: &str, aci: &BuiltAci| {
        h.route(
            &format!("/{NAME}-{version}.aci"),
            Reply::ok(std::fs::read(&aci.path).unwrap()),
        );
    };
    let fetch = |version: &str| {
        v.run(&[
            &format!("--local-config={}", v.path("etc").display()),
            "fetch",
            "--full",
            "--insecure-options=http,image",
            &format!("{NAME}:{version}"),
        ])
    };

    // version=v1 asked for; the manifest has os and arch but no version.
    let no_version = aci_with_labels(&v, "v1", &[("os", "linux"), ("arch", "amd64")]);
    serve("v1", &no_version);
    fetch("v1").failure().stderr_names(&[
        &format!("{NAME}:v1"),
        "version=v1",
        "no version label",
        "arch=amd64, os=linux",
    ]);

    // A version that differs is refused as before.
    let other = aci_with_labels(
        &v,
        "v2",
        &[("version", "v9"), ("os", "linux"), ("arch", "amd64")],
    );
    serve("v2", &other);
    fetch("v2")
        .failure()
        .stderr_names(&[&format!("{NAME}:v2"), "version", "\"v9\"", "\"v2\""]);

    // os and arch are asked for too (this host's): a manifest without them is refused.
    let no_os = aci_with_labels(&v, "v3", &[("version", "v3")]);
    serve("v3", &no_os);
    fetch("v3")
        .failure()
        .stderr_names(&[&format!("{NAME}:v3"), "has no arch label", "version=v3"]);
    assert_eq!(v.image_ids(), Vec::<String>::new());
    v.assert_verify_clean();

    // Every label asked for present and equal (others may be there too): stored.
    let good = aci_with_labels(
        &v,
        "v4",
        &[
            ("version", "v4"),
            ("os", "linux"),
            ("arch", "amd64"),
            ("channel", "stable"),
        ],
    );
    serve("v4", &good);
    let run = fetch("v4").success();
    assert_eq!(run.stdout.trim(), good.id, "{run}");
}
