//! `vessel fetch docker://...` from Debian's docker-registry on 127.0.0.1: plain HTTP, TLS
//! from a test CA, htpasswd auth, indexes, pull policies, and faults (wrong digest,
//! truncated blob, 401, 404, another platform, a stall, a dropped connection), each of
//! which must leave the store exactly as it was.

use crate::common;

use common::httpd::{Fault, FaultProxy};
use common::oci::{busybox_layout, RawLayout};
use common::registry::{Registry, RegistryOptions, TestCa};
use common::Vessel;

const INSECURE_HTTP: &str = "--insecure-options=image,http";

/// A registry holding busybox as `test/busybox:v1`.
fn registry_with_busybox(v: &Vessel, opts: RegistryOptions<'_>) -> Registry {
    let reg = Registry::start_with(opts);
    let layout = busybox_layout(&v.path("busybox"), "v1");
    reg.push(&format!("oci:{}", layout.image()), "test/busybox:v1");
    reg
}

/// The store's content before and after a refused fetch must be the same.
fn assert_refused_leaves_store(v: &Vessel, args: &[&str], needles: &[&str]) {
    let before = v.state();
    v.run(args).failure().stderr_names(needles);
    assert_eq!(v.state(), before, "a refused fetch changed the store");
    assert_eq!(v.tmp_entries(), Vec::<String>::new());
    v.assert_verify_clean();
}

#[test]
fn pulls_an_image_over_plain_http_when_allowed_and_skips_stored_layers_next_time() {
    let v = Vessel::new();
    let reg = registry_with_busybox(&v, RegistryOptions::default());
    let image = reg.reference("test/busybox:v1");
    let run = v.run(&["fetch", "--full", INSECURE_HTTP, &image]).success();
    let id = run.stdout.trim().to_string();
    assert!(id.starts_with("sha256-"), "{run}");
    let names: Vec<String> = v.images().iter().map(|i| i["name"].to_string()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{}/test/busybox", reg.host()))),
        "{names:?}"
    );
    let rootfs = v.render(&id);
    assert!(rootfs.join("bin/busybox").is_file());
    v.assert_verify_clean();
    // Again: the same image, nothing new downloaded but the manifest and config.
    let layers = v.layer_dirs();
    let again = v.run(&["fetch", "--full", INSECURE_HTTP, &image]).success();
    assert_eq!(again.stdout.trim(), id);
    assert_eq!(v.layer_dirs(), layers);
}

#[test]
fn plain_http_is_never_implicit() {
    let v = Vessel::new();
    let reg = registry_with_busybox(&v, RegistryOptions::default());
    assert_refused_leaves_store(
        &v,
        &[
            "fetch",
            "--full",
            "--insecure-options=image",
            &reg.reference("test/busybox:v1"),
        ],
        &["--insecure-options=http", &reg.host()],
    );
}

#[test]
fn registry_images_need_the_insecure_image_option() {
    let v = Vessel::new();
    let reg = registry_with_busybox(&v, RegistryOptions::default());
    let image = reg.reference("test/busybox:v1");
    assert_refused_leaves_store(
        &v,
        &["fetch", "--full", "--insecure-options=http", &image],
        &[
            "test/busybox:v1",
            "--insecure-options=image",
            "no signature",
        ],
    );
}

#[test]
fn tls_registry_is_trusted_through_certs_d() {
    let v = Vessel::new();
    let ca = TestCa::new();
    let reg = registry_with_busybox(
        &v,
        RegistryOptions {
            tls: Some(&ca),
            ..Default::default()
        },
    );
    let config = v.path("etc");
    let image = reg.reference("test/busybox:v1");
    let local = format!("--local-config={}", config.display());
    // Unknown CA: refused, naming the certificate problem.
    assert_refused_leaves_store(
        &v,
        &[
            &local,
            "fetch",
            "--full",
            "--insecure-options=image",
            &image,
        ],
        &["https://", &reg.host()],
    );
    // --insecure-options=tls skips verification.
    v.run(&[
        &local,
        "fetch",
        "--full",
        "--insecure-options=image,tls",
        &image,
    ])
    .success();
    // The test CA in certs.d/<host:port>/ca.crt: verified.
    let v2 = Vessel::new();
    ca.install(&config, &reg.host());
    v2.run(&[
        &local,
        "fetch",
        "--full",
        "--insecure-options=image",
        &image,
    ])
    .success();
    v2.assert_verify_clean();
}

#[test]
fn basic_auth_from_an_auth_d_file_and_401_without_credentials() {
    let v = Vessel::new();
    let reg = registry_with_busybox(
        &v,
        RegistryOptions {
            auth: Some(("vessel", "s3cret")),
            ..Default::default()
        },
    );
    let image = reg.reference("test/busybox:v1");
    let config = v.path("etc");
    let local = format!("--local-config={}", config.display());
    assert_refused_leaves_store(
        &v,
        &[&local, "fetch", "--full", INSECURE_HTTP, &image],
        &["401", "credentials", "auth.d", &reg.host()],
    );
    std::fs::create_dir_all(config.join("auth.d")).unwrap();
    std::fs::write(
        config.join("auth.d/registry.json"),
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{}"],"credentials":{{"user":"vessel","password":"wrong"}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    assert_refused_leaves_store(
        &v,
        &[&local, "fetch", "--full", INSECURE_HTTP, &image],
        &["401", "refused the credentials"],
    );
    std::fs::write(
        config.join("auth.d/registry.json"),
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{}"],"credentials":{{"user":"vessel","password":"s3cret"}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    v.run(&[&local, "fetch", "--full", INSECURE_HTTP, &image])
        .success();
    v.assert_verify_clean();
}

#[test]
fn basic_auth_from_a_docker_config_json() {
    let v = Vessel::new();
    let reg = registry_with_busybox(
        &v,
        RegistryOptions {
            auth: Some(("docker", "pw")),
            ..Default::default()
        },
    );
    let docker = v.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    // base64("docker:pw")
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"ZG9ja2VyOnB3"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    v.run_with_env(
        &[
            "fetch",
            "--full",
            INSECURE_HTTP,
            &reg.reference("test/busybox:v1"),
        ],
        &[("DOCKER_CONFIG", docker.to_str().unwrap())],
    )
    .success();
}

#[test]
fn unknown_tag_is_a_404_naming_the_manifest() {
    let v = Vessel::new();
    let reg = registry_with_busybox(&v, RegistryOptions::default());
    assert_refused_leaves_store(
        &v,
        &[
            "fetch",
            "--full",
            INSECURE_HTTP,
            &reg.reference("test/busybox:nope"),
        ],
        &["404", "nope", "test/busybox"],
    );
}

/// A layout whose index has `linux/<arch>` images only.
fn index_layout(v: &Vessel, archs: &[&str]) -> String {
    let mut layout = RawLayout::create(&v.path("multi"));
    let mut entries = Vec::new();
    let mut images = Vec::new();
    for (i, arch) in archs.iter().enumerate() {
        let layer = layout.put_random_layer(2, 1000, 7 + i as u64);
        let config = common::oci::image_config_for(arch, vec![layer.diff_id.clone()]);
        images.push(layout.add_image_of_stored(&[layer], &config));
    }
    for (img, arch) in images.iter().zip(archs) {
        entries.push((&img.descriptor, "linux", *arch));
    }
    let index = layout.add_index(&entries);
    layout.tag(&index, "multi")
}

#[test]
fn an_index_is_resolved_to_this_host_platform() {
    let v = Vessel::new();
    let reg = Registry::start();
    reg.push(&index_layout(&v, &["arm64", "amd64"]), "test/multi:v1");
    let id = v
        .run(&[
            "fetch",
            "--full",
            INSECURE_HTTP,
            &reg.reference("test/multi:v1"),
        ])
        .success()
        .stdout;
    let image = &v.images()[0];
    assert_eq!(image["id"].as_str().unwrap(), id.trim());
    v.assert_verify_clean();
}

#[test]
fn a_manifest_only_for_another_platform_is_refused() {
    let v = Vessel::new();
    let reg = Registry::start();
    reg.push(&index_layout(&v, &["arm64", "s390x"]), "test/other:v1");
    assert_refused_leaves_store(
        &v,
        &[
            "fetch",
            "--full",
            INSECURE_HTTP,
            &reg.reference("test/other:v1"),
        ],
        &["linux/amd64", "linux/arm64", "test/other:v1"],
    );
}

/// A registry with a three-layer image `test/layers:v1` of random files.
fn registry_with_layers(v: &Vessel) -> Registry {
    let reg = Registry::start();
    let mut layout = RawLayout::create(&v.path("layers"));
    let layers: Vec<_> = (0..3)
        .map(|i| layout.put_random_layer(4, 64 << 10, 100 + i))
        .collect();
    let config =
        common::oci::image_config_for("amd64", layers.iter().map(|l| l.diff_id.clone()).collect());
    let image = layout.add_image_of_stored(&layers, &config);
    let reference = layout.tag(&image.descriptor, "v1");
    reg.push(&reference, "test/layers:v1");
    reg
}

#[test]
fn a_wrong_digest_in_one_layer_stores_no_layer_of_the_image() {
    let v = Vessel::new();
    let reg = registry_with_layers(&v);
    let hexes = reg.layer_hexes("test/layers:v1");
    let blob = reg.blob_file(&hexes[1]);
    let mut data = std::fs::read(&blob).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&blob, data).unwrap();
    assert_refused_leaves_store(
        &v,
        &[
            "fetch",
            "--full",
            INSECURE_HTTP,
            &reg.reference("test/layers:v1"),
        ],
        &["test/layers:v1"],
    );
    assert_eq!(v.layer_dirs(), Vec::<String>::new());
}

#[test]
fn a_truncated_blob_is_refused() {
    let v = Vessel::new();
    let reg = registry_with_busybox(&v, RegistryOptions::default());
    let hexes = reg.layer_hexes("test/busybox:v1");
    let blob = reg.blob_file(&hexes[0]);
    let data = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &data[..data.len() / 2]).unwrap();
    assert_refused_leaves_store(
        &v,
        &[
            "fetch",
            "--full",
            INSECURE_HTTP,
            &reg.reference("test/busybox:v1"),
        ],
        &["test/busybox:v1", &hexes[0]],
    );
}

#[test]
fn a_connection_dropped_halfway_stores_nothing_and_the_next_fetch_succeeds() {
    let v = Vessel::new();
    let reg = registry_with_layers(&v);
    let proxy = FaultProxy::start(reg.port, "/blobs/", Fault::DropAfter(100 << 10));
    let through_proxy = format!("docker://{}/test/layers:v1", proxy.host());
    assert_refused_leaves_store(
        &v,
        &["fetch", "--full", INSECURE_HTTP, &through_proxy],
        &["test/layers:v1"],
    );
    v.run(&[
        "fetch",
        "--full",
        INSECURE_HTTP,
        &reg.reference("test/layers:v1"),
    ])
    .success();
    v.assert_verify_clean();
}

#[test]
fn a_stalling_registry_times_out_with_a_clear_message() {
    let v = Vessel::new();
    let reg = registry_with_layers(&v);
    let proxy = FaultProxy::start(reg.port, "/blobs/", Fault::StallAfter(50 << 10));
    let through_proxy = format!("docker://{}/test/layers:v1", proxy.host());
    let before = v.state();
    let started = std::time::Instant::now();
    v.run_with_env(
        &["fetch", "--full", INSECURE_HTTP, &through_proxy],
        &[("VESSEL_FETCH_TIMEOUT", "1")],
    )
    .failure()
    .stderr_names(&["timed out", "VESSEL_FETCH_TIMEOUT", "test/layers:v1"]);
    assert!(
        started.elapsed().as_secs() < 30,
        "the timeout was not applied"
    );
    assert_eq!(v.state(), before);
    v.assert_verify_clean();
}

#[test]
fn pull_policies_never_new_update() {
    let v = Vessel::new();
    let reg = registry_with_busybox(&v, RegistryOptions::default());
    let image = reg.reference("test/busybox:v1");
    v.run(&[
        "fetch",
        "--full",
        INSECURE_HTTP,
        "--pull-policy=never",
        &image,
    ])
    .failure()
    .stderr_names(&["not in the store", "--pull-policy=never"]);
    let id = v
        .run(&["fetch", "--full", INSECURE_HTTP, &image])
        .success()
        .stdout;
    drop(reg); // the registry is gone: only the store can answer now
    for policy in ["--pull-policy=never", "--pull-policy=new"] {
        let again = v
            .run(&["fetch", "--full", INSECURE_HTTP, policy, &image])
            .success();
        assert_eq!(again.stdout, id);
    }
    v.run(&[
        "fetch",
        "--full",
        INSECURE_HTTP,
        "--pull-policy=update",
        &image,
    ])
    .failure();
}
