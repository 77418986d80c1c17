//! `vessel fetch docker://...` from Debian's docker-registry configured with `auth: token:`,
//! and a token service of the test kit (common/token.rs) that signs its JWTs with the key
//! whose certificate is the registry's rootcertbundle: credentials from auth.d, a token
//! service that refuses, and tokens that have expired.

use crate::common;

use common::oci::busybox_layout;
use common::registry::{Registry, RegistryOptions};
use common::token::{TokenService, SERVICE};
use common::Vessel;

const INSECURE_HTTP: &str = "--insecure-options=image,http";
const USER: &str = "vessel";
const PASSWORD: &str = "s3cret";

/// A token-auth registry holding busybox as `test/busybox:v1`, and its token service.
fn token_registry(v: &Vessel) -> (Registry, TokenService) {
    let tokens = TokenService::start(USER, PASSWORD);
    let reg = Registry::start_with(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        token: Some(&tokens),
        ..Default::default()
    });
    let layout = busybox_layout(&v.path("busybox"), "v1");
    reg.push(&format!("oci:{}", layout.image()), "test/busybox:v1");
    tokens.forget_requests();
    (reg, tokens)
}

/// `--local-config` with an auth.d file giving `password` for the registry.
fn config_with_credentials(v: &Vessel, reg: &Registry, password: &str) -> String {
    let config = v.path("etc");
    std::fs::create_dir_all(config.join("auth.d")).unwrap();
    std::fs::write(
        config.join("auth.d/registry.json"),
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["{}"],"credentials":{{"user":"{USER}","password":"{password}"}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    format!("--local-config={}", config.display())
}

fn assert_refused_leaves_store(v: &Vessel, args: &[&str], needles: &[&str]) {
    let before = v.state();
    v.run(args).failure().stderr_names(needles);
    assert_eq!(v.state(), before, "a refused fetch changed the store");
    assert_eq!(v.tmp_entries(), Vec::<String>::new());
    v.assert_verify_clean();
}

#[test]
fn a_token_for_auth_d_credentials_is_asked_once_and_reused() {
    let v = Vessel::new();
    let (reg, tokens) = token_registry(&v);
    let image = reg.reference("test/busybox:v1");
    // No credentials: the token service turns vessel away, and the error says what to add.
    let empty = format!("--local-config={}", v.path("empty").display());
    assert_refused_leaves_store(
        &v,
        &[&empty, "fetch", INSECURE_HTTP, &image],
        &["401", "credentials", "auth.d", &reg.host()],
    );
    tokens.forget_requests();

    let local = config_with_credentials(&v, &reg, PASSWORD);
    let id = v
        .run(&[&local, "fetch", INSECURE_HTTP, &image])
        .success()
        .stdout;
    assert!(id.trim().starts_with("sha256-"), "{id}");
    assert!(v.render(id.trim()).join("bin/busybox").is_file());
    v.assert_verify_clean();

    // One token for the whole pull (manifest, config, layers), asked with the credentials
    // for the registry's service and the repository's pull scope.
    let asked = tokens.requests();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_eq!(asked[0].user.as_deref(), Some(USER));
    assert_eq!(asked[0].service.as_deref(), Some(SERVICE));
    assert_eq!(asked[0].scopes, ["repository:test/busybox:pull"]);
    assert_eq!(asked[0].status, 200);
}

#[test]
fn a_token_service_that_refuses_gives_a_clear_error() {
    let v = Vessel::new();
    let (reg, tokens) = token_registry(&v);
    let image = reg.reference("test/busybox:v1");
    // A wrong password: the token service answers 401.
    let wrong = config_with_credentials(&v, &reg, "wrong");
    assert_refused_leaves_store(
        &v,
        &[&wrong, "fetch", INSECURE_HTTP, &image],
        &[
            "test/busybox:v1",
            "token service",
            &tokens.realm(),
            "refused the credentials",
            &reg.host(),
            "auth.d",
        ],
    );
    // The right password, but the service refuses everyone now.
    let right = config_with_credentials(&v, &reg, PASSWORD);
    tokens.refuse_everyone();
    assert_refused_leaves_store(
        &v,
        &[&right, "fetch", INSECURE_HTTP, &image],
        &["token service", "refused the credentials", "401"],
    );
    assert!(tokens.requests().iter().all(|r| r.status == 401));
    assert_eq!(v.image_ids(), Vec::<String>::new());
}

#[test]
fn an_expired_token_is_replaced_by_answering_the_challenge_once_more() {
    let v = Vessel::new();
    let (reg, tokens) = token_registry(&v);
    let local = config_with_credentials(&v, &reg, PASSWORD);
    tokens.issue_expired_tokens(1);
    v.run(&[
        &local,
        "fetch",
        INSECURE_HTTP,
        &reg.reference("test/busybox:v1"),
    ])
    .success();
    v.assert_verify_clean();
    let asked = tokens.requests();
    assert_eq!(asked.len(), 2, "{asked:#?}");
    assert!(asked[0].expired && !asked[1].expired, "{asked:#?}");
    assert!(asked.iter().all(|r| r.user.as_deref() == Some(USER)));
}

#[test]
fn a_registry_that_keeps_refusing_fresh_tokens_is_asked_only_once_more() {
    let v = Vessel::new();
    let (reg, tokens) = token_registry(&v);
    let local = config_with_credentials(&v, &reg, PASSWORD);
    tokens.issue_expired_tokens(usize::MAX);
    assert_refused_leaves_store(
        &v,
        &[
            &local,
            "fetch",
            INSECURE_HTTP,
            &reg.reference("test/busybox:v1"),
        ],
        &[
            "test/busybox:v1",
            "401",
            "refused",
            "token",
            &tokens.realm(),
            "invalid_token",
        ],
    );
    assert_eq!(tokens.requests().len(), 2, "{:#?}", tokens.requests());
}
