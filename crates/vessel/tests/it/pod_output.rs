//! What `list` and `status` print: rkt's JSON schema (plus Vessel's fields, one naming
//! style, no key twice), rkt's tables and key=value lines, and a quiet end when the reader
//! of our output goes away.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use crate::common::strict_json;
use crate::podkit::PodEnv;

/// A two-app pod that has exited: apps `a` (exit 0) and `b` (exit 3).
fn exited_pod(p: &PodEnv) -> String {
    let uuid_file = p.v.path("uuid");
    let r = p.run(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &p.image,
        "--name=a",
        "--exec=/bin/true",
        "---",
        &p.image,
        "--name=b",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "exit 3",
    ]);
    assert_eq!(r.code(), Some(3), "{r}");
    std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string()
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn json_is_rkts_schema_with_no_key_twice() {
    let p = PodEnv::new();
    let uuid = exited_pod(&p);
    let now = chrono::Utc::now().timestamp();
    for args in [
        vec!["list", "--format=json"],
        vec!["status", "--format=json", uuid.as_str()],
    ] {
        let r = p.run(&args).success();
        // A key written twice (the old `uuid`) fails strict parsers.
        let v = strict_json::parse(&r.stdout).unwrap_or_else(|e| panic!("{e}:\n{r}"));
        let pod = if v.is_array() { v[0].clone() } else { v };
        assert!(
            pod.get("uuid").is_none(),
            "rkt names the UUID `name`: {pod}"
        );
        assert_eq!(pod["name"], uuid.as_str());
        assert_eq!(pod["state"], "exited");
        assert_eq!(pod["app_names"], serde_json::json!(["a", "b"]));
        assert!(pod["networks"].is_array(), "{pod}");
        // rkt writes the pod's times in seconds since the epoch.
        let created = pod["created_at"].as_i64().unwrap();
        assert!((now - 120..=now + 1).contains(&created), "{pod}");
        assert!(pod["started_at"].as_i64().unwrap() >= created, "{pod}");
        // Vessel's own facts stay, in the same style.
        assert!(pod["created"].as_str().unwrap().contains('T'), "{pod}");
        assert_eq!(pod["exited"], true);
        assert!(pod["hostname"].as_str().unwrap().starts_with("vessel-"));
        let apps = pod["apps"].as_array().unwrap();
        assert_eq!(apps.len(), 2);
        let b = &apps[1];
        assert_eq!(b["name"], "b");
        assert_eq!(b["state"], "exited");
        assert_eq!(b["exit_code"], 3);
        assert!(b["image_id"].as_str().unwrap().starts_with("sha512-"));
        assert_eq!(b["image_name"], "example.com/busybox");
        // An app's times are in nanoseconds, as rkt writes them.
        assert!(b["started_at"].as_i64().unwrap() > created * 1_000_000_000 - 1);
        for k in keys(&pod).iter().chain(keys(b).iter()) {
            assert!(
                !k.chars().any(|c| c.is_ascii_uppercase()),
                "{k}: one naming style (snake_case)"
            );
        }
    }
}

#[test]
fn json_pretty_indents_with_tabs_as_rkt() {
    let p = PodEnv::new();
    let uuid = exited_pod(&p);
    let r = p.run(&["status", "--format=json-pretty", &uuid]).success();
    assert!(r.stdout.starts_with("{\n\t\"name\""), "{r}");
    strict_json::parse(&r.stdout).unwrap();
    let r = p.run(&["list", "--format=json-pretty"]).success();
    assert!(r.stdout.starts_with("[\n\t{\n\t\t\"name\""), "{r}");
}

#[test]
fn list_prints_a_row_per_app_and_status_plain_exit_codes() {
    let p = PodEnv::new();
    let uuid = exited_pod(&p);
    let r = p.run(&["list", "--no-legend"]).success();
    let rows = r.stdout_lines();
    assert_eq!(rows.len(), 2, "{r}");
    assert!(
        rows[0].starts_with(&uuid[..8]) && rows[0].contains("exited"),
        "{r}"
    );
    // The second app's row leaves the pod's columns blank.
    assert!(rows[1].trim_start().starts_with('b'), "{r}");
    assert!(!rows[1].contains("exited"), "{r}");
    let r = p.run(&["list", "--full"]).success();
    assert!(r.stdout.starts_with("UUID"), "{r}");
    assert!(r.stdout.lines().next().unwrap().contains("IMAGE ID"), "{r}");
    assert!(
        r.stdout.contains(&uuid) && r.stdout.contains("sha512-"),
        "{r}"
    );
    // rkt's `app-NAME=CODE`, a plain number scripts can read.
    let s = p.run(&["status", &uuid]).success();
    assert!(s.stdout.contains("state=exited\n"), "{s}");
    assert!(s.stdout.contains("exited=true\n"), "{s}");
    assert!(s.stdout.contains("app-a=0\n"), "{s}");
    assert!(s.stdout.contains("app-b=3\n"), "{s}");
}

/// `vessel CMD | head -1` with the reader gone before we write: no panic (once exit
/// 134 "failed printing to stdout"), nothing on stderr; SIGPIPE ends us, as any filter.
#[test]
fn a_closed_pipe_ends_quietly() {
    let p = PodEnv::new();
    let uuid = exited_pod(&p);
    for args in [
        vec!["list"],
        vec!["list", "--format=json"],
        vec!["status", uuid.as_str()],
        vec!["cat-manifest", uuid.as_str()],
        vec!["logs", uuid.as_str()],
        vec!["image", "list"],
        vec!["version"],
        vec!["completion", "bash"],
        vec!["trust", "--list"],
    ] {
        let (r, w) = rustix::pipe::pipe().unwrap();
        drop(r);
        let out =
            p.v.command(&args)
                .stdout(Stdio::from(w))
                .stderr(Stdio::piped())
                .output()
                .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.success(),
            "vessel {args:?}: {:?}\n{stderr}",
            out.status
        );
        assert!(stderr.is_empty(), "vessel {args:?} said: {stderr}");
    }
}
