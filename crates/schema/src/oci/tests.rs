use oci_spec::image::ImageConfiguration;
use serde_json::json;

use super::*;
use crate::exec::ProgramLookup;

fn config(v: serde_json::Value) -> ImageConfiguration {
    serde_json::from_value(v).unwrap()
}

fn base(cfg: serde_json::Value) -> ImageConfiguration {
    config(json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": cfg,
    }))
}

#[test]
fn converts_a_typical_docker_image() {
    let image = config(json!({
        "created": "2024-05-01T10:00:00Z",
        "author": "Jane <jane@example.com>",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.27.0"],
            "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
            "Volumes": {"/var/cache/nginx": {}},
            "WorkingDir": "/srv",
            "StopSignal": "SIGQUIT"
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    }));
    let c = convert_config(&image).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let app = &c.app;
    assert_eq!(
        app.exec.argv(),
        ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
    );
    assert_eq!((app.user.as_str(), app.group.as_str()), ("0", "0"));
    assert_eq!(
        app.environment.to_key_values()[0],
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(app.environment.get("NGINX_VERSION"), Some("1.27.0"));
    assert_eq!(app.working_directory(), "/srv");
    let ports: Vec<&str> = app.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(ports, ["80-tcp", "443-tcp"]);
    assert_eq!(app.mount_points[0].name, "volume-var-cache-nginx");
    assert_eq!(app.mount_points[0].path, "/var/cache/nginx");
    assert_eq!(
        (c.labels.os(), c.labels.arch()),
        (Some("linux"), Some("amd64"))
    );
    assert_eq!(c.annotations.get("created"), Some("2024-05-01T10:00:00Z"));
    assert_eq!(
        c.annotations.get("authors"),
        Some("Jane <jane@example.com>")
    );
    assert_eq!(
        c.annotations.get(annotation_names::DOCKER_ENTRYPOINT),
        Some(r#"["/docker-entrypoint.sh"]"#)
    );
    assert_eq!(
        c.annotations.get(annotation_names::DOCKER_CMD),
        Some(r#"["nginx","-g","daemon off;"]"#)
    );
    assert_eq!(
        c.annotations
            .get(annotation_names::VESSEL_GROUP_FROM_PASSWD),
        None
    );

    let mut m = c.into_image_manifest("docker.io/library/nginx".parse().unwrap());
    m.labels.set("version".parse().unwrap(), "1.27").unwrap();
    let bytes = m.to_vec().unwrap();
    assert_eq!(ImageManifest::from_slice(&bytes).unwrap(), m);
}

#[test]
fn relative_program_is_kept_for_path_lookup() {
    let c = convert_config(&base(json!({"Cmd": ["sh", "-c", "echo hi"]}))).unwrap();
    assert_eq!(c.app.exec.argv(), ["sh", "-c", "echo hi"]);
    assert_eq!(c.app.exec.lookup(), Some(ProgramLookup::SearchPath));
    assert!(c.app.exec.needs_path_lookup());
    assert_eq!(c.annotations.get(annotation_names::DOCKER_ENTRYPOINT), None);
}

#[test]
fn user_forms() {
    let c = convert_config(&base(json!({"User": "nginx"}))).unwrap();
    assert_eq!((c.app.user.as_str(), c.app.group.as_str()), ("nginx", "0"));
    assert_eq!(
        c.annotations
            .get(annotation_names::VESSEL_GROUP_FROM_PASSWD),
        Some("true")
    );
    let c = convert_config(&base(json!({"User": "1000:1000"}))).unwrap();
    assert_eq!(
        (c.app.user.as_str(), c.app.group.as_str()),
        ("1000", "1000")
    );
    assert_eq!(
        c.annotations
            .get(annotation_names::VESSEL_GROUP_FROM_PASSWD),
        None
    );
    let e = convert_config(&base(json!({"User": "a:b:c"}))).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"image config field "User": "a:b:c" is not a valid user (expected user[:group])"#
    );
}

#[test]
fn env_entries_appc_cannot_hold_are_dropped_with_warnings() {
    let c = convert_config(&base(
        json!({"Env": ["X=1", "NOEQUALS", "a b=1", "X=2", "EMPTY=", "EQ=a=b"]}),
    ))
    .unwrap();
    assert_eq!(
        c.app.environment.to_key_values(),
        ["X=2", "EMPTY=", "EQ=a=b"]
    );
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
}

#[test]
fn working_dir_forms() {
    let c = convert_config(&base(json!({"WorkingDir": ""}))).unwrap();
    assert_eq!(c.app.working_directory, None);
    let c = convert_config(&base(json!({"WorkingDir": "app"}))).unwrap();
    assert_eq!(c.app.working_directory.as_deref(), Some("/app"));
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
}

#[test]
fn platforms() {
    let arm = config(
        json!({"architecture": "arm64", "variant": "v8", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    let c = convert_config(&arm).unwrap();
    assert_eq!(c.labels.arch(), Some("aarch64"));
    let arm7 = config(
        json!({"architecture": "arm", "variant": "v7", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    assert_eq!(convert_config(&arm7).unwrap().labels.arch(), Some("armv7l"));
    let riscv = config(
        json!({"architecture": "riscv64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    let c = convert_config(&riscv).unwrap();
    assert!(c.labels.is_empty());
    assert!(
        c.warnings.iter().any(|w| w.contains("linux/riscv64")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn config_without_execution_parameters() {
    let image = config(
        json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    let c = convert_config(&image).unwrap();
    assert!(c.app.exec.is_empty());
    assert_eq!((c.app.user.as_str(), c.app.group.as_str()), ("0", "0"));
    assert!(c.warnings[0].contains("neither Entrypoint nor Cmd"));
    c.app.validate().unwrap();
}

#[test]
fn bad_fields_are_named() {
    let e = convert_config(&base(json!({"ExposedPorts": {"http/tcp": {}}}))).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"image config field "ExposedPorts": "http/tcp" is not a valid exposed port (ports are 1-65535)"#
    );
    let e = convert_config(&base(json!({"Entrypoint": [""], "Cmd": ["x"]}))).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(r#"image config field "Entrypoint""#),
        "{e}"
    );
    let e = convert_config(&base(json!({"Cmd": ["/bin/echo", "a\u{0}b"]}))).unwrap_err();
    assert!(
        e.to_string().starts_with(r#"image config field "Cmd""#),
        "{e}"
    );
}
