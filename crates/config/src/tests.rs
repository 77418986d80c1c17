//! rkt's documented examples (Documentation/configuration.md and subcommands/config.md)
//! and the ways a file can be wrong.

use super::*;

struct Dirs {
    _tmp: tempfile::TempDir,
    system: PathBuf,
    local: PathBuf,
    user: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let d = |n: &str| tmp.path().join(n);
    Dirs {
        system: d("system"),
        local: d("local"),
        user: d("user"),
        _tmp: tmp,
    }
}

fn write(dir: &Path, sub: &str, name: &str, body: &str) -> PathBuf {
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn auth_of(c: &Config, domain: &str) -> Auth {
    c.auth[domain].value.clone()
}

fn basic(user: &str, password: &str) -> Auth {
    Auth::Basic(BasicCredentials {
        user: user.into(),
        password: password.into(),
    })
}

/// configuration.md, "auth" override semantics: overriding is per domain, whatever
/// the files are called.
#[test]
fn auth_local_overrides_system_per_domain() {
    let d = dirs();
    write(
        &d.system,
        "auth.d",
        "coreos.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["coreos.com","tectonic.com","kubernetes.io"],
            "type":"oauth","credentials":{"token":"common-token"}}"#,
    );
    write(
        &d.local,
        "auth.d",
        "specific-coreos.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["coreos.com"],
            "type":"basic","credentials":{"user":"foo","password":"bar"}}"#,
    );
    write(
        &d.local,
        "auth.d",
        "specific-tectonic.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["tectonic.com"],
            "type":"oauth","credentials":{"token":"tectonic-token"}}"#,
    );
    let c = Config::load(&[d.system.clone(), d.local.clone()]).unwrap();
    assert_eq!(
        auth_of(&c, "kubernetes.io"),
        Auth::OAuth {
            token: "common-token".into()
        }
    );
    assert_eq!(auth_of(&c, "coreos.com"), basic("foo", "bar"));
    assert_eq!(
        auth_of(&c, "tectonic.com"),
        Auth::OAuth {
            token: "tectonic-token".into()
        }
    );
}

/// A local file with the same name as a system one overrides only the domains it names.
#[test]
fn same_file_name_does_not_mask_other_domains() {
    let d = dirs();
    write(
        &d.system,
        "auth.d",
        "a.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["x.com","y.com"],"type":"oauth","credentials":{"token":"sys"}}"#,
    );
    write(
        &d.local,
        "auth.d",
        "a.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["x.com"],"type":"oauth","credentials":{"token":"loc"}}"#,
    );
    let c = Config::load(&[d.system.clone(), d.local.clone()]).unwrap();
    assert_eq!(
        auth_of(&c, "x.com"),
        Auth::OAuth {
            token: "loc".into()
        }
    );
    assert_eq!(
        auth_of(&c, "y.com"),
        Auth::OAuth {
            token: "sys".into()
        }
    );
}

/// configuration.md, "dockerAuth" override semantics, and the user directory over both.
#[test]
fn docker_auth_per_registry_user_over_local() {
    let d = dirs();
    write(
        &d.system,
        "auth.d",
        "docker.json",
        r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["registry-1.docker.io","gcr.io","quay.io"],
            "credentials":{"user":"foo","password":"bar"}}"#,
    );
    write(
        &d.local,
        "auth.d",
        "specific-quay.json",
        r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["quay.io"],"credentials":{"user":"baz","password":"quux"}}"#,
    );
    write(
        &d.user,
        "auth.d",
        "mine.json",
        r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["gcr.io"],"credentials":{"user":"goo","password":"gle"}}"#,
    );
    let c = Config::load(&[d.system.clone(), d.local.clone(), d.user.clone()]).unwrap();
    let user = |r: &str| c.docker_auth[r].value.user.clone();
    assert_eq!(user("registry-1.docker.io"), "foo");
    assert_eq!(user("quay.io"), "baz");
    assert_eq!(user("gcr.io"), "goo");
}

/// configuration.md, "paths" and "stage1": per field, name and version as a pair.
#[test]
fn paths_and_stage1_per_field() {
    let d = dirs();
    write(
        &d.system,
        "paths.d",
        "data.json",
        r#"{"rktKind":"paths","rktVersion":"v1","data":"/opt/rkt-stuff/data"}"#,
    );
    write(
        &d.system,
        "stage1.d",
        "coreos.json",
        r#"{"rktKind":"stage1","rktVersion":"v1","name":"coreos.com/rkt/stage1-coreos","version":"0.15.0+git",
            "location":"/usr/libexec/rkt/stage1-coreos.aci"}"#,
    );
    write(
        &d.local,
        "paths.d",
        "stage1.json",
        r#"{"rktKind":"paths","rktVersion":"v1","stage1-images":"/home/me/stage1-images"}"#,
    );
    write(
        &d.local,
        "stage1.d",
        "specific-coreos.json",
        r#"{"rktKind":"stage1","rktVersion":"v1","location":"https://example.com/coreos-stage1.aci"}"#,
    );
    let c = Config::load(&[d.system.clone(), d.local.clone()]).unwrap();
    assert_eq!(c.data_dir(), Some(Path::new("/opt/rkt-stuff/data")));
    assert_eq!(
        c.stage1_images.as_ref().unwrap().value,
        Path::new("/home/me/stage1-images")
    );
    assert_eq!(
        c.stage1_name_version.as_ref().unwrap().value,
        (
            "coreos.com/rkt/stage1-coreos".to_string(),
            "0.15.0+git".to_string()
        )
    );
    assert_eq!(
        c.stage1_location.as_ref().unwrap().value,
        "https://example.com/coreos-stage1.aci"
    );
}

/// subcommands/config.md: one entry per domain, the user's winning for foo.com.
#[test]
fn rkt_json_has_one_entry_per_domain() {
    let d = dirs();
    write(
        &d.local,
        "auth.d",
        "basic.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["foo.com","bar.com","baz.com"],"type":"basic",
            "credentials":{"user":"sysUser","password":"sysPassword"}}"#,
    );
    write(
        &d.user,
        "auth.d",
        "basic.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["foo.com"],"type":"basic","credentials":{"user":"user","password":"password"}}"#,
    );
    let c = Config::load(&[d.system.clone(), d.local.clone(), d.user.clone()]).unwrap();
    let j = c.to_rkt_json(Path::new("/var/lib/vessel"));
    let stage0 = j["stage0"].as_array().unwrap();
    let auths: Vec<_> = stage0.iter().filter(|e| e["rktKind"] == "auth").collect();
    assert_eq!(auths.len(), 3);
    let foo = auths.iter().find(|e| e["domains"][0] == "foo.com").unwrap();
    assert_eq!(foo["credentials"]["user"], "user");
    let bar = auths.iter().find(|e| e["domains"][0] == "bar.com").unwrap();
    assert_eq!(bar["credentials"]["user"], "sysUser");
    let paths = stage0.iter().find(|e| e["rktKind"] == "paths").unwrap();
    assert_eq!(paths["data"], "/var/lib/vessel");
    assert!(stage0.iter().any(|e| e["rktKind"] == "stage1"));
}

fn refused(sub: &str, body: &str) -> String {
    let d = dirs();
    let p = write(&d.local, sub, "bad.json", body);
    let e = Config::load(std::slice::from_ref(&d.local))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&p.display().to_string()),
        "{e} does not name the file"
    );
    e
}

#[test]
fn bad_files_name_the_file_and_the_field() {
    let e = refused("auth.d", "{");
    assert!(e.contains("not valid JSON"), "{e}");
    let e = refused("auth.d", r#"{"rktVersion":"v1"}"#);
    assert!(e.contains("\"rktKind\"") && e.contains("missing"), "{e}");
    let e = refused("auth.d", r#"{"rktKind":"auth","rktVersion":"v2"}"#);
    assert!(e.contains("\"rktVersion\"") && e.contains("v2"), "{e}");
    let e = refused("auth.d", r#"{"rktKind":"paths","rktVersion":"v1"}"#);
    assert!(e.contains("\"rktKind\"") && e.contains("auth.d"), "{e}");
    let e = refused(
        "auth.d",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":[],"type":"basic","credentials":{}}"#,
    );
    assert!(e.contains("\"domains\"") && e.contains("empty"), "{e}");
    let e = refused(
        "auth.d",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"basic","credentials":{"user":"u"}}"#,
    );
    assert!(e.contains("\"credentials.password\""), "{e}");
    let e = refused(
        "auth.d",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["a"],"type":"kerberos","credentials":{}}"#,
    );
    assert!(e.contains("\"type\"") && e.contains("kerberos"), "{e}");
    let e = refused(
        "auth.d",
        r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["r",3],"credentials":{"user":"u","password":"p"}}"#,
    );
    assert!(e.contains("\"registries[1]\""), "{e}");
    let e = refused(
        "paths.d",
        r#"{"rktKind":"paths","rktVersion":"v1","data":"relative/dir"}"#,
    );
    assert!(e.contains("\"data\"") && e.contains("absolute"), "{e}");
    let e = refused(
        "stage1.d",
        r#"{"rktKind":"stage1","rktVersion":"v1","name":"x"}"#,
    );
    assert!(e.contains("\"version\""), "{e}");
    let e = refused(
        "stage1.d",
        r#"{"rktKind":"stage1","rktVersion":"v1","location":"ftp://x/s.aci"}"#,
    );
    assert!(e.contains("\"location\"") && e.contains("ftp"), "{e}");
}

/// Within one directory a domain may be set once (rkt: a syntax error otherwise).
#[test]
fn a_domain_twice_in_one_directory_is_refused() {
    let d = dirs();
    let a = write(
        &d.local,
        "auth.d",
        "a.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["x.com"],"type":"oauth","credentials":{"token":"1"}}"#,
    );
    let b = write(
        &d.local,
        "auth.d",
        "b.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["x.com"],"type":"oauth","credentials":{"token":"2"}}"#,
    );
    let e = Config::load(std::slice::from_ref(&d.local))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&b.display().to_string()) && e.contains(&a.display().to_string()),
        "{e}"
    );
    assert!(e.contains("x.com"), "{e}");
}

#[test]
fn missing_directories_and_other_files_are_ignored() {
    let d = dirs();
    write(&d.local, "auth.d", "README", "not json");
    let c = Config::load(&[d.system.clone(), d.local.clone()]).unwrap();
    assert_eq!(c, Config::default());
}
