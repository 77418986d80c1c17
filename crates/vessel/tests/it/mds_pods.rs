//! The metadata service as apps see it: pods on the default network started with
//! `--mds-register` read every endpoint of ace.md's tables from inside (busybox `nc`,
//! raw HTTP) at `$AC_METADATA_URL`, and the answers are compared with the pod's own
//! manifest, UUID and image. Also: the flag's default and its errors, registrations that
//! end with their pod, and a service restarted while a pod runs.

use std::time::Duration;

use serde_json::Value;

use crate::common::services::{HttpResponse, Mds};
use crate::podkit::{wait_for, PodEnv};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=us-ascii";

/// A shell function for the pod: `req METHOD PATH [BODY]` prints the raw response to
/// one request at `$AC_METADATA_URL`, between markers. busybox `nc` quits as soon as its
/// stdin ends, before any answer: its stdin is a fifo held open until the server closes.
const REQ: &str = r#"
u=${AC_METADATA_URL#http://}; h=${u%:*}; p=${u##*:}
req() {
  echo "=====$1 $2"
  rm -f /req.fifo; mkfifo /req.fifo
  nc "$h" "$p" </req.fifo & n=$!
  exec 9>/req.fifo
  if [ -n "$3" ]; then
    printf '%s %s HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %s\r\n\r\n%s' "$1" "$2" "${#3}" "$3" >&9
  else
    printf '%s %s HTTP/1.0\r\n\r\n' "$1" "$2" >&9
  fi
  wait $n
  exec 9>&-
  echo
  echo "=====end"
}
"#;

/// The responses a pod printed with `req`, by "METHOD PATH".
fn responses(stdout: &str) -> Vec<(String, HttpResponse)> {
    let mut out = Vec::new();
    let mut rest = stdout;
    while let Some(i) = rest.find("=====") {
        let after = &rest[i + 5..];
        let (key, body) = after.split_once('\n').unwrap();
        if key == "end" {
            rest = body;
            continue;
        }
        let end = body.find("\n=====end").unwrap();
        out.push((
            key.to_string(),
            HttpResponse::parse(&body.as_bytes()[..end]),
        ));
        rest = &body[end + 1..];
    }
    out
}

fn find<'a>(all: &'a [(String, HttpResponse)], key: &str) -> &'a HttpResponse {
    &all.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| {
            panic!(
                "no response to {key}: {:?}",
                all.iter().map(|x| &x.0).collect::<Vec<_>>()
            )
        })
        .1
}

fn run_in_pod(p: &PodEnv, mds: &Mds, flags: &[&str], script: &str) -> crate::common::Run {
    let saved = p.v.path(&crate::common::host::unique_name("uuid"));
    let save = format!("--uuid-file-save={}", saved.display());
    let mut args = vec!["run", &save];
    args.extend_from_slice(flags);
    let full = format!("{REQ}\n{script}");
    args.extend_from_slice(&[
        &p.image,
        "--annotation=role=frontend",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        &full,
    ]);
    let run =
        p.v.run_with_env(&args, &[("VESSEL_RUN_DIR", mds.run_dir.to_str().unwrap())]);
    let _ = std::fs::copy(&saved, p.v.path("last-uuid"));
    run
}

/// The UUID of the pod `run_in_pod` ran last.
fn last_uuid(p: &PodEnv) -> String {
    std::fs::read_to_string(p.v.path("last-uuid"))
        .unwrap()
        .trim()
        .to_string()
}

fn url_of(run: &crate::common::Run) -> String {
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("url="))
        .unwrap_or_else(|| panic!("no url line:\n{run}"));
    line.to_string()
}

#[test]
fn every_endpoint_read_from_inside_a_pod_matches_the_spec_and_the_pod() {
    let p = PodEnv::new();
    let mds = Mds::start();
    let script = r#"
echo "url=$AC_METADATA_URL"
req GET /acMetadata/v1/pod/uuid
req GET /acMetadata/v1/pod/manifest
req GET /acMetadata/v1/pod/annotations
req GET "/acMetadata/v1/apps/$AC_APP_NAME/annotations"
req GET "/acMetadata/v1/apps/$AC_APP_NAME/annotations/role"
req GET "/acMetadata/v1/apps/$AC_APP_NAME/image/manifest"
req GET "/acMetadata/v1/apps/$AC_APP_NAME/image/id"
req GET /acMetadata/v1/apps/no-such-app/image/id
req GET /acMetadata/v1/pod/hmac/sign
req POST /acMetadata/v1/pod/hmac/sign "content=hello+pods"
"#;
    let run = run_in_pod(&p, &mds, &["--net=default", "--mds-register"], script).success();
    let url = url_of(&run);
    // http://IP:PORT: no trailing slash, no name to resolve, the service's port.
    let hostport = url.strip_prefix("http://").expect(&url);
    let (host, port) = hostport.rsplit_once(':').unwrap();
    host.parse::<std::net::Ipv4Addr>()
        .unwrap_or_else(|_| panic!("{url}: not an address"));
    assert_eq!(port, mds.port.to_string());
    assert!(host.starts_with("172.16.28."), "{url}");

    let all = responses(&run.stdout);
    let uuid = last_uuid(&p);
    let r = find(&all, "GET /acMetadata/v1/pod/uuid");
    assert_eq!((r.status, r.content_type()), (200, TEXT));
    assert_eq!(r.text(), uuid, "canonical UUID, no newline");

    let manifest = p.run(&["cat-manifest", &uuid]).success().stdout;
    let r = find(&all, "GET /acMetadata/v1/pod/manifest");
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let served: Value = serde_json::from_slice(&r.body).unwrap();
    let expected: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(served, expected);

    // This pod manifest has no annotations: null (the spec's types are nullable).
    let r = find(&all, "GET /acMetadata/v1/pod/annotations");
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let want = expected.get("annotations").cloned().unwrap_or(Value::Null);
    let got: Value = serde_json::from_slice(&r.body).unwrap();
    if want.as_array().is_none_or(|a| a.is_empty()) {
        assert_eq!(got, Value::Null, "{}", r.text());
    } else {
        assert_eq!(got, want);
    }

    let app = expected["apps"][0]["name"].as_str().unwrap().to_string();
    let r = find(&all, &format!("GET /acMetadata/v1/apps/{app}/annotations"));
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let got: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(
        got.as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "role", "value": "frontend"})),
        "{got}"
    );
    let r = find(
        &all,
        &format!("GET /acMetadata/v1/apps/{app}/annotations/role"),
    );
    assert_eq!(
        (r.status, r.content_type(), r.text().as_str()),
        (200, TEXT, "frontend")
    );

    let image_id = p.v.image_ids()[0].clone();
    let r = find(&all, &format!("GET /acMetadata/v1/apps/{app}/image/id"));
    assert_eq!((r.status, r.content_type()), (200, TEXT));
    assert_eq!(r.text(), image_id);
    let r = find(
        &all,
        &format!("GET /acMetadata/v1/apps/{app}/image/manifest"),
    );
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let im: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(im["acKind"], "ImageManifest");
    assert_eq!(im["name"], "example.com/busybox");

    assert_eq!(
        find(&all, "GET /acMetadata/v1/apps/no-such-app/image/id").status,
        404
    );
    let r = find(&all, "GET /acMetadata/v1/pod/hmac/sign");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = find(&all, "POST /acMetadata/v1/pod/hmac/sign");
    assert_eq!((r.status, r.content_type()), (200, TEXT));
    let sig = r.text();
    assert_eq!(sig.len(), 88, "base64 of 64 bytes: {sig}");

    // Another pod verifies the signature with the signer's UUID only.
    let enc: String = sig
        .bytes()
        .map(|b| match b {
            b'+' => "%2B".to_string(),
            b'/' => "%2F".to_string(),
            b'=' => "%3D".to_string(),
            b => (b as char).to_string(),
        })
        .collect();
    let other = "00000000-0000-4000-8000-000000000000";
    let script = format!(
        "req POST /acMetadata/v1/pod/hmac/verify 'content=hello+pods&uuid={uuid}&signature={enc}'\n\
         req POST /acMetadata/v1/pod/hmac/verify 'content=hello+pods&uuid={other}&signature={enc}'\n\
         req POST /acMetadata/v1/pod/hmac/verify 'content=hello+pods&uuid={uuid}&signature=AAAA'\n"
    );
    let run = run_in_pod(&p, &mds, &["--net=default", "--mds-register"], &script).success();
    let all = responses(&run.stdout);
    let codes: Vec<u16> = all.iter().map(|(_, r)| r.status).collect();
    assert_eq!(codes, [200, 403, 403], "{}", run.stdout);
    assert!(all[2].1.text().contains("3 bytes"), "{}", all[2].1.text());
}

#[test]
fn the_flag_defaults_to_the_service_and_refuses_what_it_cannot_do() {
    let p = PodEnv::new();
    let mds = Mds::start();
    let show = "echo \"url=[$AC_METADATA_URL]\"";
    // On by default when the service runs.
    let run = run_in_pod(&p, &mds, &["--rm", "--net=default"], show).success();
    assert!(run.stdout.contains("url=[http://172.16.28."), "{run}");
    // Off: no variable.
    let run = run_in_pod(
        &p,
        &mds,
        &["--rm", "--net=default", "--mds-register=false"],
        show,
    )
    .success();
    assert!(run.stdout.contains("url=[]"), "{run}");
    // No address of its own: nothing by default, an error when asked for.
    let run = run_in_pod(&p, &mds, &["--rm", "--net=none"], show).success();
    assert!(run.stdout.contains("url=[]"), "{run}");
    let run = run_in_pod(&p, &mds, &["--rm", "--net=none", "--mds-register"], show);
    assert_ne!(run.code(), Some(0), "{run}");
    assert!(run.stderr.contains("--mds-register"), "{run}");
    // No service: nothing by default, a clear error when asked for, and no pod left.
    let mut mds = mds;
    mds.kill();
    let _ = std::fs::remove_file(mds.socket());
    let run = run_in_pod(&p, &mds, &["--rm", "--net=default"], show).success();
    assert!(run.stdout.contains("url=[]"), "{run}");
    let before = p.list().len();
    let run = run_in_pod(&p, &mds, &["--net=default", "--mds-register"], show).failure();
    assert!(run.stderr.contains("metadata service"), "{run}");
    assert!(run.stderr.contains("metadata-svc.sock"), "{run}");
    assert_eq!(p.list().len(), before, "a refused run left a pod");
}

fn registrations(mds: &Mds) -> Vec<String> {
    std::fs::read_dir(mds.run_dir.join("metadata/pods"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_registration_lives_as_long_as_its_pod_and_outlives_a_service_restart() {
    let p = PodEnv::new();
    let mut mds = Mds::start();
    let uuid =
        p.v.run_with_env(
            &[
                "run",
                "--detach",
                "--net=default",
                "--mds-register",
                &p.image,
                "--exec",
                "/bin/sh",
                "--",
                "-c",
                "echo url=$AC_METADATA_URL; trap 'exit 0' TERM; while true; do sleep 0.05; done",
            ],
            &[("VESSEL_RUN_DIR", mds.run_dir.to_str().unwrap())],
        )
        .success()
        .stdout
        .trim()
        .to_string();
    assert_eq!(registrations(&mds), [format!("{uuid}.json")]);
    // The pod's own URL, from its output.
    let mut url = String::new();
    wait_for("the pod's output", Duration::from_secs(10), || {
        let logs = p.run(&["logs", &uuid]).stdout;
        match logs.lines().find_map(|l| l.strip_prefix("url=")) {
            Some(u) => {
                url = u.to_string();
                true
            }
            None => false,
        }
    });
    // From inside the running pod (enter: its network, its address).
    let ask = || {
        let script = format!("AC_METADATA_URL={url}\n{REQ}\nreq GET /acMetadata/v1/pod/uuid");
        let r = p.run(&["enter", &uuid, "/bin/sh", "-c", &script]).success();
        let all = responses(&r.stdout);
        (all[0].1.status, all[0].1.text())
    };
    assert_eq!(ask(), (200, uuid.clone()));
    // The service is killed (as a crash would) and started again: the pod is still known.
    mds.kill();
    mds.restart();
    assert_eq!(registrations(&mds), [format!("{uuid}.json")]);
    assert_eq!(ask(), (200, uuid.clone()));
    // The pod stops: its registration goes with it.
    p.run(&["stop", &uuid]).success();
    wait_for("the registration to go", Duration::from_secs(10), || {
        registrations(&mds).is_empty()
    });
    // A pod collected after it ended is unknown to the service, which goes on serving.
    p.run(&["rm", &uuid]).success();
    assert!(registrations(&mds).is_empty());
    mds.client().ping().unwrap();
}
