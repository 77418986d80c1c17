//! Whole-manifest tests against the spec's own examples, plus a
//! cross-check of our output with appc's validator when it is installed.

use schema::isolator::{names, TypedIsolator};
use schema::{
    Exec, ImageManifest, Isolator, PodManifest, ProgramLookup, RuntimeApp, RuntimeImage,
    SchemaError, Volume,
};
use serde_json::Value;

const IMAGE_JSON: &str = include_str!("data/appc-spec/image.json");
const ACI_MD: &str = include_str!("data/appc-spec/aci-md-image-manifest.json");
const POD_RUNTIME: &str = include_str!("data/appc-spec/pod_runtime.json");
const POD_TEMPLATE: &str = include_str!("data/appc-spec/pod_template.json");
const PODS_MD: &str = include_str!("data/appc-spec/pods-md-pod-manifest.json");

/// The spec's examples write `sha512-...` where an ID goes.
fn with_real_ids(text: &str) -> String {
    text.replace("sha512-...", &format!("sha512-{}", "ab".repeat(64)))
}

fn image(text: &str) -> ImageManifest {
    ImageManifest::from_slice(with_real_ids(text).as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn pod(text: &str) -> PodManifest {
    PodManifest::from_slice(with_real_ids(text).as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn spec_placeholder_ids_are_refused_where_they_are() {
    let e = ImageManifest::from_slice(IMAGE_JSON.as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"manifest field "dependencies[0].imageID": "sha512-..." is not a valid image ID (digest must be lower-case hex)"#
    );
    let e = PodManifest::from_slice(PODS_MD.as_bytes()).unwrap_err();
    assert_eq!(e.field(), Some("apps[0].image.id"));
}

#[test]
fn examples_image_json() {
    let m = image(IMAGE_JSON);
    assert_eq!(m.name, "example.com/reduce-worker");
    assert_eq!(m.labels.version(), Some("1.0.0"));
    assert_eq!(
        (m.labels.os(), m.labels.arch()),
        (Some("linux"), Some("amd64"))
    );
    let app = m.app.as_ref().unwrap();
    assert_eq!(app.exec.argv(), ["/usr/bin/reduce-worker", "--quiet"]);
    assert_eq!(app.exec.lookup(), Some(ProgramLookup::Absolute));
    assert_eq!((app.user.as_str(), app.group.as_str()), ("100", "300"));
    assert_eq!(app.event_handlers.len(), 2);
    assert_eq!(app.environment.get("REDUCE_WORKER_DEBUG"), Some("true"));
    assert_eq!(app.mount_points[0].name, "database");
    assert_eq!(app.ports[0].port, 4000);
    assert!(app.ports[0].socket_activated);

    let typed = app.isolators.typed();
    let TypedIsolator::Cpu(cpu) = &typed[0] else {
        panic!("{typed:?}")
    };
    assert_eq!(cpu.limit_millis(), Some(20));
    let TypedIsolator::Memory(mem) = &typed[1] else {
        panic!()
    };
    assert_eq!(mem.limit_bytes(), Some(1_000_000_000));
    assert!(
        matches!(&typed[2], TypedIsolator::CapabilitiesRetain(c) if c.set == ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"])
    );
    assert_eq!(typed[3], TypedIsolator::NoNewPrivileges(true));
    let TypedIsolator::SeccompRemove(sec) = &typed[4] else {
        panic!()
    };
    assert_eq!(sec.errno.as_deref(), Some("EACCESS"));

    assert_eq!(m.dependencies[0].labels.get("env"), Some("canary"));
    assert_eq!(m.path_whitelist.len(), 5);
    assert_eq!(m.annotations.get("homepage"), Some("https://example.com"));
}

#[test]
fn aci_md_example() {
    let m = image(ACI_MD);
    let app = m.app.as_ref().unwrap();
    // The spec's example spells it `supplementaryGids`.
    assert_eq!(app.supplementary_gids, [400, 500]);
    assert_eq!(app.working_directory(), "/opt/work");
    assert_eq!(app.port("ftp-data").unwrap().last_port(), 20999);
    assert_eq!(m.dependencies[0].size, Some(22017258));
    let TypedIsolator::Cpu(cpu) = app
        .isolators
        .get(names::RESOURCE_CPU)
        .unwrap()
        .parse()
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(cpu.effective_request().unwrap().millis(), 250);
}

#[test]
fn image_manifests_round_trip() {
    for text in [IMAGE_JSON, ACI_MD] {
        let m = image(text);
        let bytes = m.to_vec().unwrap();
        let again = ImageManifest::from_slice(&bytes).unwrap();
        assert_eq!(again, m);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["acKind"], "ImageManifest");
        assert_eq!(
            v["app"]["supplementaryGIDs"].is_null(),
            m.app.as_ref().unwrap().supplementary_gids.is_empty()
        );
        // Defaults are left out rather than written as false/empty.
        assert!(v["app"]["mountPoints"][0].get("readOnly").is_none());
    }
}

#[test]
fn pod_runtime_example_round_trips_exactly() {
    let p = pod(POD_RUNTIME);
    p.validate_reified().unwrap();
    assert_eq!(p.apps.len(), 3);
    assert_eq!(p.app("backup").unwrap().annotations.get("foo"), Some("baz"));
    let mount = &p.app("backup").unwrap().mounts[1];
    let vol = p.volume_for(mount).unwrap();
    assert_eq!(vol.mode_or_default(), 0o777);
    assert!(matches!(p.isolators.typed()[1], TypedIsolator::Sysctl(_)));
    let ours: Value = serde_json::from_slice(&p.to_vec().unwrap()).unwrap();
    let theirs: Value = serde_json::from_str(POD_RUNTIME).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn pods_md_example() {
    let p = pod(PODS_MD);
    p.validate_reified().unwrap();
    let worker = p.app("reduce-worker").unwrap();
    assert!(worker.read_only_root_fs);
    assert_eq!(p.ports[0].host_port, 2121);
    assert!(p.volume("worklib").unwrap().is_read_only());
    let again = PodManifest::from_slice(&p.to_vec().unwrap()).unwrap();
    assert_eq!(again, p);
}

#[test]
fn pod_template_parses_but_is_not_runnable() {
    let p = pod(POD_TEMPLATE);
    assert_eq!(p.ac_version.to_string(), "0.3.0");
    assert!(p.apps[1].image.id.is_none());
    let e = p.validate_reified().unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"manifest field "apps[1].image.id": app "backup" has no image ID"#
    );
}

#[test]
fn from_slice_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            "{",
            "manifest is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        ("[]", "expected an object, found an array"),
        (
            r#"{"acVersion": "0.8.11", "name": "a"}"#,
            r#"manifest field "acKind": required but missing"#,
        ),
        (
            r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "name": "a"}"#,
            r#"manifest field "acKind": "PodManifest" is not a valid acKind (expected "ImageManifest")"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8", "name": "a"}"#,
            r#"manifest field "acVersion": "0.8" is not a valid AC version (must be a SemVer 2.0.0 version)"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "Foo Bar"}"#,
            r#"manifest field "name": "Foo Bar" is not a valid AC identifier"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "labels": [{"name": "os", "value": "windows"}]}"#,
            r#"manifest field "labels": "windows" is not a valid os label (must be one of linux, freebsd, darwin)"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "app": {"exec": ["/bin/sh"], "user": "0"}}"#,
            r#"manifest field "app.group": required but missing"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "app": {"exec": "/bin/sh", "user": "0", "group": "0"}}"#,
            r#"manifest field "app.exec": expected an array, found a string"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "pathWhitelist": ["etc/x"]}"#,
            r#"manifest field "pathWhitelist[0]": "etc/x" is not a valid whitelisted path (must be an absolute path)"#,
        ),
        (
            r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "a", "app": {"user": "0", "group": "0", "isolators": [{"name": "os/linux/cpu-shares", "value": 1}]}}"#,
            r#"manifest field "app.isolators[0]": isolator "os/linux/cpu-shares": "1" is not a valid value (must be between 2 and 262144)"#,
        ),
    ];
    for (text, want) in cases {
        let e = ImageManifest::from_slice(text.as_bytes()).unwrap_err();
        assert_eq!(&e.to_string(), want, "{text}");
    }
}

#[test]
fn pod_errors_name_the_field() {
    let id = format!("sha512-{}", "0".repeat(128));
    let cases = [
        (format!(r#"{{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{{"name": "a", "image": {{"id": "{id}"}}}}, {{"name": "a", "image": {{"id": "{id}"}}}}]}}"#), r#"manifest field "apps[1].name": duplicate app "a""#),
        (r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{"name": "a"}]}"#.to_string(), r#"manifest field "apps[0].image": required but missing"#),
        (r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "volumes": [{"name": "v", "kind": "empty"}, {"name": "v", "kind": "empty"}]}"#.to_string(), r#"manifest field "volumes[1].name": duplicate volume "v""#),
        (r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "volumes": [{"name": "v", "kind": "host", "source": "tmp"}]}"#.to_string(), r#"manifest field "volumes[0]": "tmp" is not a valid volume source (must be an absolute path)"#),
        (r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "ports": [{"name": "p", "hostPort": 80}, {"name": "p", "hostPort": 81}]}"#.to_string(), r#"manifest field "ports[1].name": duplicate port "p""#),
        (r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "userLabels": {"q": 1}}"#.to_string(), r#"manifest field "userLabels.q": expected a string, found a number"#),
        (r#"{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{"name": "a", "image": {}, "mounts": [{"volume": "v", "path": ""}]}]}"#.to_string(), r#"manifest field "apps[0].mounts[0].path": "" is not a valid mount path (must not be empty)"#),
    ];
    for (text, want) in cases {
        let e = PodManifest::from_slice(text.as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), want, "{text}");
    }
    let missing_mount = format!(
        r#"{{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{{"name": "a", "image": {{"id": "{id}"}}, "mounts": [{{"volume": "v", "path": "/x"}}]}}]}}"#
    );
    let p = PodManifest::from_slice(missing_mount.as_bytes()).unwrap();
    let e = p.validate_reified().unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"manifest field "apps[0].mounts[0].volume": no volume named "v""#
    );
}

#[test]
fn serde_deserialize_validates_too() {
    let e = serde_json::from_str::<ImageManifest>(
        r#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "Foo"}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"manifest field "name": "Foo" is not a valid AC identifier"#),
        "{e}"
    );
    let m: PodManifest = serde_json::from_str(&with_real_ids(PODS_MD)).unwrap();
    assert_eq!(m.apps.len(), 3);
}

/// A pod built in code, as `vessel prepare` would.
fn built_pod() -> PodManifest {
    let mut p = PodManifest::new();
    let id = format!("sha512-{}", "1f".repeat(64)).parse().unwrap();
    let mut app = RuntimeApp::new(
        "web".parse().unwrap(),
        RuntimeImage {
            name: Some("example.com/web".parse().unwrap()),
            id: Some(id),
            labels: Default::default(),
        },
    );
    let mut a = schema::App::new(
        Exec::new(vec!["nginx".into(), "-g".into(), "daemon off;".into()]).unwrap(),
        "0",
        "0",
    );
    a.isolators
        .set(Isolator::memory_limit("128M".parse().unwrap()))
        .unwrap();
    a.isolators
        .set(Isolator::cpu_limit("500m".parse().unwrap()))
        .unwrap();
    a.environment
        .set(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .unwrap();
    app.app = Some(a);
    app.mounts.push(schema::Mount {
        volume: "data".parse().unwrap(),
        path: "/data".into(),
        app_volume: None,
    });
    p.apps.push(app);
    p.volumes
        .push(Volume::from_flag("data,kind=empty,mode=0700").unwrap());
    p
}

#[test]
fn built_pod_round_trips() {
    let p = built_pod();
    p.validate_reified().unwrap();
    let again = PodManifest::from_slice(&p.to_vec().unwrap()).unwrap();
    assert_eq!(again, p);
    assert!(again.apps[0].app.as_ref().unwrap().exec.needs_path_lookup());
}

#[test]
fn edits_that_break_rules_are_caught_before_writing() {
    let mut p = built_pod();
    p.apps.push(p.apps[0].clone());
    let e = p.to_vec().unwrap_err();
    assert!(
        matches!(e.problem(), SchemaError::Duplicate { what: "app", .. }),
        "{e}"
    );
}

/// An OCI config as Docker writes it, converted.
fn converted_image() -> ImageManifest {
    let config: oci_spec::image::ImageConfiguration = serde_json::from_value(serde_json::json!({
        "architecture": "arm64",
        "os": "linux",
        "config": {
            "User": "redis",
            "Entrypoint": ["docker-entrypoint.sh"],
            "Cmd": ["redis-server"],
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "REDIS_VERSION=7.2.4"],
            "ExposedPorts": {"6379/tcp": {}},
            "Volumes": {"/data": {}},
            "WorkingDir": "/data"
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap();
    let converted = schema::oci::convert_config(&config).unwrap();
    converted.into_image_manifest("docker.io/library/redis".parse().unwrap())
}

#[test]
fn converted_oci_image_is_a_valid_manifest() {
    let m = converted_image();
    let again = ImageManifest::from_slice(&m.to_vec().unwrap()).unwrap();
    assert_eq!(again, m);
    assert_eq!(m.labels.arch(), Some("aarch64"));
    assert_eq!(
        schema::app_name_for_image("docker://docker.io/library/redis:7").unwrap(),
        "redis"
    );
}

/// Runs appc's own validator on what we write, when it is installed.
#[test]
fn actool_accepts_our_output() {
    let actool = std::path::Path::new("/usr/bin/actool");
    if !actool.exists() {
        eprintln!("actool not installed; skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vessel-schema-actool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        ("image.json", image(IMAGE_JSON).to_vec().unwrap()),
        ("aci.json", image(ACI_MD).to_vec().unwrap()),
        ("pod.json", pod(PODS_MD).to_vec().unwrap()),
        ("runtime.json", pod(POD_RUNTIME).to_vec().unwrap()),
        ("built.json", built_pod().to_vec().unwrap()),
        ("converted.json", converted_image().to_vec().unwrap()),
    ];
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new(actool)
            .arg("validate")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
