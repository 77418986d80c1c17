//! rkt's configuration directories as the command line uses them: precedence (user over
//! local over system, per registry and domain, whatever the files are called), bad files
//! named with their field, and `vessel config`.

use crate::common;

use common::oci::busybox_layout;
use common::registry::{Registry, RegistryOptions};
use common::Vessel;

fn docker_auth(dir: &std::path::Path, file: &str, registry: &str, password: &str) {
    std::fs::create_dir_all(dir.join("auth.d")).unwrap();
    std::fs::write(
        dir.join("auth.d").join(file),
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{registry}"],"credentials":{{"user":"vessel","password":"{password}"}}}}"#
        ),
    )
    .unwrap();
}

/// rkt's documented dockerAuth example: a system `docker.json` and a local
/// `specific-….json` for the same registry: the local one is used (a system file once
/// won, being first by name).
#[test]
fn local_docker_auth_overrides_system_and_user_overrides_local() {
    let v = Vessel::new();
    let reg = Registry::start_with(RegistryOptions {
        auth: Some(("vessel", "s3cret")),
        ..Default::default()
    });
    let layout = busybox_layout(&v.path("busybox"), "v1");
    reg.push(&format!("oci:{}", layout.image()), "test/busybox:v1");
    let image = reg.reference("test/busybox:v1");
    let (system, local, user) = (v.path("system"), v.path("local"), v.path("user"));
    docker_auth(&system, "docker.json", &reg.host(), "wrong");
    docker_auth(&local, "specific-registry.json", &reg.host(), "s3cret");
    let dirs = [
        format!("--system-config={}", system.display()),
        format!("--local-config={}", local.display()),
    ];
    let fetch = |global: &[&str]| {
        let mut args: Vec<&str> = dirs.iter().map(String::as_str).collect();
        args.extend_from_slice(global);
        args.extend([
            "fetch",
            "--pull-policy=update",
            "--insecure-options=image,http",
            image.as_str(),
        ]);
        v.run(&args)
    };
    fetch(&[]).success();
    // The user's directory wins over the local one: a wrong password there is used.
    docker_auth(&user, "mine.json", &reg.host(), "wrong-too");
    let user_flag = format!("--user-config={}", user.display());
    fetch(&[&user_flag]).failure().stderr_names(&["401"]);
}

/// A bad file says which file and which field.
#[test]
fn a_bad_auth_file_names_the_file_and_the_field() {
    let v = Vessel::new();
    // Credentials are read when a server asks for them.
    let reg = Registry::start_with(RegistryOptions {
        auth: Some(("vessel", "s3cret")),
        ..Default::default()
    });
    let local = v.path("local");
    std::fs::create_dir_all(local.join("auth.d")).unwrap();
    let bad = local.join("auth.d/broken.json");
    std::fs::write(
        &bad,
        r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["x"],"credentials":{"user":"u"}}"#,
    )
    .unwrap();
    v.run(&[
        &format!("--local-config={}", local.display()),
        "fetch",
        "--insecure-options=image,http",
        &reg.reference("test/none:v1"),
    ])
    .failure()
    .stderr_names(&[&bad.display().to_string(), "credentials.password"]);
}
