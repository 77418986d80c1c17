//! `vessel metadata-service` as pods see it: requests come over a veth link from network
//! namespaces the test makes (as a pod's do), from the registered pod's address or not,
//! and every endpoint's status, content type and body are compared with ace.md's table
//! and the registered manifests. Faults: unknown addresses, bad bodies, a second service,
//! a service killed and restarted, a registrant that dies.

use std::process::Stdio;
use std::time::{Duration, Instant};

use mds::proto::{AppRegistration, Registration};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::common::services::{free_port, Mds, Netns};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=us-ascii";
const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

fn raw(v: Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).unwrap()
}

fn pod_manifest(app: &str, image_id: &str, annotated: bool) -> Value {
    let mut m = serde_json::json!({
        "acKind": "PodManifest",
        "acVersion": "0.8.11",
        "apps": [{"name": app, "image": {"name": "example.com/web", "id": image_id},
                  "annotations": [{"name": "role", "value": "frontend"}]}],
    });
    if annotated {
        m["annotations"] = serde_json::json!([{"name": "ip-address", "value": "10.1.2.3"}]);
    }
    m
}

fn image_manifest() -> Value {
    serde_json::json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/web",
        "annotations": [{"name": "authors", "value": "Vessel"}, {"name": "role", "value": "any"}],
    })
}

fn registration(uuid: &str, ns: &Netns, annotated: bool) -> Registration {
    let id = format!("sha512-{}", "ab".repeat(64));
    Registration {
        uuid: uuid.into(),
        ips: vec![ns.ip.into()],
        manifest: raw(pod_manifest("web", &id, annotated)),
        apps: vec![AppRegistration {
            name: "web".into(),
            image_id: id,
            image_manifest: raw(image_manifest()),
        }],
    }
}

fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn every_endpoint_answers_the_pod_at_the_requests_address() {
    let mds = Mds::start();
    let a = Netns::new();
    let b = Netns::new();
    let (ua, ub) = (new_uuid(), new_uuid());
    mds.client().register(&registration(&ua, &a, true)).unwrap();
    mds.client()
        .register(&registration(&ub, &b, false))
        .unwrap();
    let get = |ns: &Netns, path: &str| ns.curl(&[&mds.url(ns.host_ip, path)]);

    let r = get(&a, "/acMetadata/v1/pod/uuid");
    assert_eq!((r.status, r.content_type()), (200, TEXT));
    assert_eq!(r.text(), ua, "canonical UUID, no newline");
    assert_eq!(get(&b, "/acMetadata/v1/pod/uuid").text(), ub);

    let r = get(&a, "/acMetadata/v1/pod/annotations");
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"name": "ip-address", "value": "10.1.2.3"}])
    );
    // No annotations: null (the spec's types are nullable).
    assert_eq!(get(&b, "/acMetadata/v1/pod/annotations").text(), "null");

    let r = get(&a, "/acMetadata/v1/pod/manifest");
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        pod_manifest("web", &format!("sha512-{}", "ab".repeat(64)), true)
    );

    let r = get(&a, "/acMetadata/v1/apps/web/annotations");
    assert_eq!((r.status, r.content_type()), (200, JSON));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!([{"name": "authors", "value": "Vessel"}, {"name": "role", "value": "frontend"}]),
        "image annotations, overridden by the pod manifest's for the app"
    );

    let r = get(&a, "/acMetadata/v1/apps/web/image/manifest");
    assert_eq!((r.status, r.content_type()), (200, JSON));
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        image_manifest()
    );

    let r = get(&a, "/acMetadata/v1/apps/web/image/id");
    assert_eq!((r.status, r.content_type()), (200, TEXT));
    assert_eq!(r.text(), format!("sha512-{}", "ab".repeat(64)));

    // Errors.
    assert_eq!(get(&a, "/acMetadata/v1/apps/db/image/id").status, 404);
    assert_eq!(get(&a, "/acMetadata/v1/pod/nothing").status, 404);
    let r = a.curl(&["-X", "POST", &mds.url(a.host_ip, "/acMetadata/v1/pod/uuid")]);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = a.curl(&[&mds.url(a.host_ip, "/acMetadata/v1/pod/hmac/sign")]);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
}

#[test]
fn an_address_of_no_registered_pod_is_refused_and_a_pod_leaves_when_unregistered() {
    let mds = Mds::start();
    let a = Netns::new();
    let stranger = Netns::new();
    let ua = new_uuid();
    mds.client().register(&registration(&ua, &a, true)).unwrap();
    let r = stranger.curl(&[&mds.url(stranger.host_ip, "/acMetadata/v1/pod/uuid")]);
    assert_eq!((r.status, r.content_type()), (403, TEXT));
    assert!(r.text().contains(&stranger.ip.to_string()), "{}", r.text());
    let r = stranger.curl(&[
        "-H",
        FORM,
        "--data",
        "content=x",
        &mds.url(stranger.host_ip, "/acMetadata/v1/pod/hmac/sign"),
    ]);
    assert_eq!(r.status, 403, "a stranger cannot sign");

    mds.client().unregister(&ua).unwrap();
    let r = a.curl(&[&mds.url(a.host_ip, "/acMetadata/v1/pod/uuid")]);
    assert_eq!(r.status, 403);
    // Unregistering twice is fine.
    mds.client().unregister(&ua).unwrap();
}

fn sign(mds: &Mds, ns: &Netns, content: &str) -> String {
    let r = ns.curl(&[
        "-H",
        FORM,
        "--data-urlencode",
        &format!("content={content}"),
        &mds.url(ns.host_ip, "/acMetadata/v1/pod/hmac/sign"),
    ]);
    assert_eq!((r.status, r.content_type()), (200, TEXT), "{}", r.text());
    r.text()
}

fn verify(mds: &Mds, ns: &Netns, content: &str, uuid: &str, sig: &str) -> (u16, String) {
    let r = ns.curl(&[
        "-H",
        FORM,
        "--data-urlencode",
        &format!("content={content}"),
        "--data-urlencode",
        &format!("uuid={uuid}"),
        "--data-urlencode",
        &format!("signature={sig}"),
        &mds.url(ns.host_ip, "/acMetadata/v1/pod/hmac/verify"),
    ]);
    assert_eq!(r.content_type(), TEXT);
    (r.status, r.text())
}

#[test]
fn a_pod_signs_as_itself_and_another_pod_verifies_with_its_uuid_only() {
    let mds = Mds::start();
    let a = Netns::new();
    let b = Netns::new();
    let (ua, ub) = (new_uuid(), new_uuid());
    mds.client().register(&registration(&ua, &a, true)).unwrap();
    mds.client().register(&registration(&ub, &b, true)).unwrap();

    let sig = sign(&mds, &a, "I am a & b=c");
    assert_eq!(sig.len(), 88, "base64 of 64 bytes, no newline: {sig:?}");
    assert_eq!(verify(&mds, &b, "I am a & b=c", &ua, &sig).0, 200);
    assert_eq!(verify(&mds, &b, "I am a & b=c", &ub, &sig).0, 403);
    assert_eq!(verify(&mds, &b, "I am b", &ua, &sig).0, 403);
    // b signing the same content is not a's signature.
    let sig_b = sign(&mds, &b, "I am a & b=c");
    assert_ne!(sig_b, sig);
    assert_eq!(verify(&mds, &a, "I am a & b=c", &ua, &sig_b).0, 403);

    // Malformed signatures.
    let (st, why) = verify(&mds, &b, "x", &ua, "AAAA");
    assert_eq!(st, 403);
    assert!(why.contains("3 bytes"), "{why}");
    let (st, why) = verify(&mds, &b, "x", &ua, &sig[..44]);
    assert_eq!(st, 403, "{why}");
    let (st, why) = verify(&mds, &b, "x", &ua, "not base64!");
    assert_eq!(st, 400);
    assert!(why.contains("base64"), "{why}");
    let (st, why) = verify(&mds, &b, "x", "not-a-uuid", &sig);
    assert_eq!(st, 400);
    assert!(why.contains("not-a-uuid"), "{why}");
}

#[test]
fn bodies_that_are_not_forms_or_too_large_are_refused() {
    let mds = Mds::start();
    let a = Netns::new();
    mds.client()
        .register(&registration(&new_uuid(), &a, true))
        .unwrap();
    let url = mds.url(a.host_ip, "/acMetadata/v1/pod/hmac/sign");
    let r = a.curl(&[
        "-H",
        "Content-Type: application/json",
        "--data",
        "{\"content\":1}",
        &url,
    ]);
    assert_eq!(r.status, 415);
    let r = a.curl(&["-H", FORM, "--data", "other=1", &url]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("content"), "{}", r.text());
    let file = mds.run_dir.join("big-body");
    std::fs::write(&file, vec![b'a'; 2 << 20]).unwrap();
    let r = a.curl(&[
        "-H",
        FORM,
        "--data-binary",
        &format!("@{}", file.display()),
        &url,
    ]);
    assert_eq!(r.status, 413);
    // Chunked, no length given: cut at the cap all the same.
    let r = a.curl(&[
        "-H",
        FORM,
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &url,
    ]);
    assert_eq!(r.status, 413);
    // Still serving.
    let r = a.curl(&[&mds.url(a.host_ip, "/acMetadata/v1/pod/uuid")]);
    assert_eq!(r.status, 200);
}

#[test]
fn a_second_service_is_refused_and_the_first_keeps_serving() {
    let mds = Mds::start();
    let a = Netns::new();
    let ua = new_uuid();
    mds.client().register(&registration(&ua, &a, true)).unwrap();
    // The same port.
    let other = tempfile::tempdir().unwrap();
    let out = Mds::command(other.path(), mds.port).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("port {}", mds.port)), "{err}");
    // The same registration socket, another port.
    let out = Mds::command(&mds.run_dir, free_port()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already listens"), "{err}");
    assert_eq!(mds.client().ping().unwrap(), mds.port);
    let r = a.curl(&[&mds.url(a.host_ip, "/acMetadata/v1/pod/uuid")]);
    assert_eq!(r.text(), ua);
}

#[test]
fn registrations_survive_a_killed_service_and_end_with_their_registrant() {
    let mut mds = Mds::start();
    let a = Netns::new();
    let b = Netns::new();
    let ua = new_uuid();
    mds.client().register(&registration(&ua, &a, true)).unwrap();
    let sig = sign(&mds, &a, "before");

    // Pod b is registered by a process that then exits: its pod has ended.
    let ub = new_uuid();
    let line =
        serde_json::to_string(&mds::proto::Request::Register(registration(&ub, &b, true))).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket,sys\n\
             s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n\
             s.sendall(sys.argv[2].encode()+b'\\n'); print(s.makefile().readline())",
        )
        .arg(mds.socket())
        .arg(&line)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\":true"));
    let t = Instant::now();
    loop {
        let r = b.curl(&[&mds.url(b.host_ip, "/acMetadata/v1/pod/uuid")]);
        if r.status == 403 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "b still registered");
        std::thread::sleep(Duration::from_millis(20));
    }

    mds.kill();
    let r = std::process::Command::new("ip")
        .args(["netns", "exec", &a.name, "curl", "-s", "--max-time", "2"])
        .arg(mds.url(a.host_ip, "/acMetadata/v1/pod/uuid"))
        .status()
        .unwrap();
    assert!(!r.success(), "nothing answers while the service is down");
    mds.restart();
    let r = a.curl(&[&mds.url(a.host_ip, "/acMetadata/v1/pod/uuid")]);
    assert_eq!((r.status, r.text()), (200, ua.clone()));
    // The same identity: a signature from before the restart verifies.
    assert_eq!(verify(&mds, &a, "before", &ua, &sig).0, 200);
    assert_eq!(sign(&mds, &a, "before"), sig);
}

#[test]
fn bad_registrations_are_refused_with_the_reason() {
    let mds = Mds::start();
    let a = Netns::new();
    let mut r = registration("not-a-uuid", &a, true);
    let e = mds.client().register(&r).unwrap_err().to_string();
    assert!(e.contains("not-a-uuid"), "{e}");
    r.uuid = new_uuid();
    r.apps[0].name = "ghost".into();
    let e = mds.client().register(&r).unwrap_err().to_string();
    assert!(e.contains("ghost"), "{e}");
    // Not JSON at all.
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import socket,sys\n\
             s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n\
             s.sendall(b'hello\\n'); print(s.makefile().readline())",
        )
        .arg(mds.socket())
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.contains("\"ok\":false") && reply.contains("not a registration"),
        "{reply}"
    );
    assert_eq!(mds.client().ping().unwrap(), mds.port);
}
