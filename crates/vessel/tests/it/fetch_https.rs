//! ACIs from web servers on 127.0.0.1: HTTPS (openssl s_server with a test CA in certs.d)
//! with detached signatures, plain HTTP when allowed (ETag and Cache-Control), appc
//! discovery (on the well-known ports, which names cannot avoid), trust on first use, and
//! faults: an HTML page instead of an image, a stall, a dropped connection, a discovery
//! page with no matching template.

use crate::common;

use std::path::Path;

use common::aci::{busybox_aci, BuiltAci};
use common::compress::Compression;
use common::gpg::{Gpg, Key};
use common::httpd::{Fault, Httpd, Reply, TlsFileServer, WellKnownPorts};
use common::registry::TestCa;
use common::Vessel;

struct Signed {
    v: Vessel,
    gpg: Gpg,
    key: Key,
    aci: BuiltAci,
    sig: Vec<u8>,
}

fn signed(name: &str, version: &str) -> Signed {
    let v = Vessel::new();
    let gpg = Gpg::new();
    let key = gpg.key("Publisher <p@example.com>", "ed25519", "never");
    let aci = busybox_aci(v.work(), name, version, Compression::Gzip);
    let sig = std::fs::read(gpg.sign(&key, &aci.path)).unwrap();
    Signed {
        v,
        gpg,
        key,
        aci,
        sig,
    }
}

impl Signed {
    fn local(&self) -> String {
        format!("--local-config={}", self.v.path("etc").display())
    }

    fn trust(&self, prefix: &str) {
        let file = self.gpg.export(&self.key, &self.v.path("key.asc"));
        self.v
            .run(&[
                &self.local(),
                "trust",
                &format!("--prefix={prefix}"),
                "--skip-fingerprint-review",
                file.to_str().unwrap(),
            ])
            .success();
    }

    fn serve_over_http(&self, path: &str) -> Httpd {
        let h = Httpd::start();
        h.route(path, Reply::ok(std::fs::read(&self.aci.path).unwrap()));
        h.route(&format!("{path}.asc"), Reply::ok(self.sig.clone()));
        h
    }

    fn refused(&self, args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
        let before = self.v.state();
        self.v
            .run_with_env(args, env)
            .failure()
            .stderr_names(needles);
        assert_eq!(self.v.state(), before, "a refused fetch changed the store");
        assert_eq!(self.v.tmp_entries(), Vec::<String>::new());
        self.v.assert_verify_clean();
    }
}

/// A web root for s_server: the ACI and its signature at `rel`.
fn web_root(s: &Signed, rel: &str) -> std::path::PathBuf {
    let root = s.v.path("www");
    let file = root.join(rel);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::copy(&s.aci.path, &file).unwrap();
    std::fs::write(root.join(format!("{rel}.asc")), &s.sig).unwrap();
    root
}

#[test]
fn an_aci_over_https_is_verified_with_its_asc_signature() {
    let s = signed("example.com/web", "1.0");
    let ca = TestCa::new();
    let root = web_root(&s, "images/web.aci");
    let server = TlsFileServer::start(&root, &ca.server_cert(), &ca.server_key(), None);
    let url = format!("https://127.0.0.1:{}/images/web.aci", server.port);
    // The test CA is unknown: refused.
    s.refused(&[&s.local(), "fetch", "--full", &url], &[], &[&url]);
    ca.install(&s.v.path("etc"), &format!("127.0.0.1:{}", server.port));
    // Signed by a key nobody trusted yet.
    s.refused(
        &[&s.local(), "fetch", "--full", &url],
        &[],
        &[&s.key.fingerprint, "vessel trust"],
    );
    s.trust("example.com/web");
    let run = s.v.run(&[&s.local(), "fetch", "--full", &url]).success();
    assert_eq!(run.stdout.trim(), s.aci.id);
    s.v.assert_verify_clean();
}

#[test]
fn plain_http_needs_the_insecure_option() {
    let s = signed("example.com/web", "1.0");
    let h = s.serve_over_http("web.aci");
    s.trust("example.com/web");
    let url = h.url("web.aci");
    s.refused(
        &[&s.local(), "fetch", "--full", &url],
        &[],
        &["--insecure-options=http", &url],
    );
    assert!(
        h.requests().is_empty(),
        "vessel spoke plain HTTP without being allowed to"
    );
    s.v.run(&[
        &s.local(),
        "fetch",
        "--full",
        "--insecure-options=http",
        &url,
    ])
    .success();
}

#[test]
fn etag_and_cache_control_are_honoured_under_pull_policy_update() {
    let s = signed("example.com/web", "1.0");
    s.trust("example.com/web");
    let h = Httpd::start();
    let data = std::fs::read(&s.aci.path).unwrap();
    h.route("web.aci", Reply::ok(data.clone()).header("ETag", "\"v1\""));
    h.route("web.aci.asc", Reply::ok(s.sig.clone()));
    let url = h.url("web.aci");
    let fetch = || {
        s.v.run(&[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &url,
        ])
        .success()
        .stdout
    };
    assert_eq!(fetch().trim(), s.aci.id);
    // Again: asked with If-None-Match, answered 304, not downloaded again.
    assert_eq!(fetch().trim(), s.aci.id);
    let asked = h.requests_for("web.aci");
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[1].header("if-none-match"), Some("\"v1\""));
    // With max-age, the stored copy is used without asking at all.
    let h2 = Httpd::start();
    h2.route(
        "web.aci",
        Reply::ok(data).header("Cache-Control", "max-age=600"),
    );
    h2.route("web.aci.asc", Reply::ok(s.sig.clone()));
    let url2 = h2.url("web.aci");
    for _ in 0..2 {
        s.v.run(&[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &url2,
        ])
        .success();
    }
    assert_eq!(h2.requests_for("web.aci").len(), 1);
}

#[test]
fn an_html_error_page_where_an_image_should_be_is_refused() {
    let s = signed("example.com/web", "1.0");
    s.trust("example.com/web");
    let h = s.serve_over_http("web.aci");
    h.route(
        "web.aci",
        Reply::html(
            200,
            "<html><body>Maintenance: come back later</body></html>",
        ),
    );
    let url = h.url("web.aci");
    s.refused(
        &[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &url,
        ],
        &[],
        &[&url, "HTML"],
    );
    // A missing image: 404, named.
    h.route("gone.aci.asc", Reply::ok(s.sig.clone()));
    let gone = h.url("gone.aci");
    s.refused(
        &[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &gone,
        ],
        &[],
        &[&gone, "404"],
    );
}

#[test]
fn a_stalling_web_server_times_out() {
    let s = signed("example.com/web", "1.0");
    s.trust("example.com/web");
    let h = s.serve_over_http("web.aci");
    let data = std::fs::read(&s.aci.path).unwrap();
    h.route("web.aci", Reply::ok(data).fault(Fault::StallAfter(300)));
    let url = h.url("web.aci");
    let started = std::time::Instant::now();
    s.refused(
        &[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &url,
        ],
        &[("VESSEL_FETCH_TIMEOUT", "1")],
        &["timed out", "VESSEL_FETCH_TIMEOUT", &url],
    );
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn a_connection_dropped_halfway_stores_nothing_and_the_next_fetch_succeeds() {
    let s = signed("example.com/web", "1.0");
    s.trust("example.com/web");
    let h = s.serve_over_http("web.aci");
    let data = std::fs::read(&s.aci.path).unwrap();
    h.route(
        "web.aci",
        Reply::ok(data.clone()).fault(Fault::DropAfter(data.len() / 2)),
    );
    let url = h.url("web.aci");
    s.refused(
        &[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &url,
        ],
        &[],
        &[&url],
    );
    h.route("web.aci", Reply::ok(data));
    let run =
        s.v.run(&[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            &url,
        ])
        .success();
    assert_eq!(run.stdout.trim(), s.aci.id);
}

/// A discovery page for `prefix` with one template and a pubkeys URL.
fn discovery_page(prefix: &str, template: &str, pubkeys: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head>\n<meta name=\"ac-discovery\" content=\"{prefix} {template}\">\n<meta name=\"ac-discovery-pubkeys\" content=\"{prefix} {pubkeys}\">\n</head></html>\n"
    )
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[test]
fn discovery_over_https_finds_verifies_and_trusts_on_first_use_when_asked() {
    let _ports = WellKnownPorts::lock();
    let name = "127.0.0.1/apps/web";
    let s = signed(name, "1.0");
    let ca = TestCa::new();
    let root = s.v.path("www");
    write(
        &root,
        "apps?ac-discovery=1",
        discovery_page(
            "127.0.0.1/apps",
            "https://127.0.0.1/store/{name}-{version}-{os}-{arch}.{ext}",
            "https://127.0.0.1/pubkeys.asc",
        )
        .as_bytes(),
    );
    let rel = format!("store/{name}-1.0-linux-amd64.aci");
    write(&root, &rel, &std::fs::read(&s.aci.path).unwrap());
    write(&root, &format!("{rel}.asc"), &s.sig);
    let pubkeys = s.gpg.export(&s.key, &s.v.path("k.asc"));
    std::fs::copy(pubkeys, root.join("pubkeys.asc")).unwrap();
    // s_server answers 200 with an error text for a missing file: that is the page for
    // 127.0.0.1/apps/web, which holds no meta tag, so discovery goes on to the parent.
    let _server = TlsFileServer::start(&root, &ca.server_cert(), &ca.server_key(), Some(443));
    ca.install(&s.v.path("etc"), "127.0.0.1");
    let image = format!("{name}:1.0");
    // No key trusted: refused, naming the key and the command.
    s.refused(
        &[&s.local(), "fetch", "--full", &image],
        &[],
        &[&s.key.fingerprint, &format!("vessel trust --prefix={name}")],
    );
    // Trust on first use: the key discovery names is stored, recorded as such.
    let run =
        s.v.run(&[
            &s.local(),
            "fetch",
            "--full",
            "--trust-keys-from-https",
            &image,
        ])
        .success();
    assert_eq!(run.stdout.trim(), s.aci.id, "{run}");
    assert!(
        run.stderr.contains("trust on first use") || run.stderr.contains("first use"),
        "{run}"
    );
    let listed =
        s.v.run(&[&s.local(), "trust", "--list", "--format=json"])
            .success()
            .json();
    assert_eq!(listed[0]["how"], "discovery (trust on first use)");
    assert_eq!(listed[0]["prefix"], name);
    // run and prepare default to the store: no network for a stored name.
    drop(_server);
    s.v.run(&[&s.local(), "fetch", "--full", "--pull-policy=new", &image])
        .success();
}

#[test]
fn trust_with_only_a_prefix_fetches_the_keys_discovery_names() {
    let _ports = WellKnownPorts::lock();
    let s = signed("127.0.0.1/team/app", "1.0");
    let ca = TestCa::new();
    let root = s.v.path("www");
    write(
        &root,
        "team?ac-discovery=1",
        discovery_page(
            "127.0.0.1/team",
            "https://127.0.0.1/{name}.{ext}",
            "https://127.0.0.1/team.asc",
        )
        .as_bytes(),
    );
    std::fs::copy(
        s.gpg.export(&s.key, &s.v.path("k.asc")),
        root.join("team.asc"),
    )
    .unwrap();
    let _server = TlsFileServer::start(&root, &ca.server_cert(), &ca.server_key(), Some(443));
    ca.install(&s.v.path("etc"), "127.0.0.1");
    s.v.run(&[
        &s.local(),
        "trust",
        "--prefix=127.0.0.1/team",
        "--skip-fingerprint-review",
    ])
    .success();
    let listed =
        s.v.run(&[&s.local(), "trust", "--list", "--format=json"])
            .success()
            .json();
    assert_eq!(listed[0]["fingerprint"], s.key.fingerprint.as_str());
    assert_eq!(listed[0]["how"], "discovery");
}

#[test]
fn a_discovery_page_with_no_matching_template_is_refused() {
    let _ports = WellKnownPorts::lock();
    let s = signed("127.0.0.1/apps/web", "1.0");
    let Some(h) = Httpd::start_on(80) else {
        panic!("port 80 on 127.0.0.1 is taken");
    };
    // Templates for another prefix and with a label the image does not have.
    h.route(
        "/apps?ac-discovery=1",
        Reply::html(
            200,
            "<html><head><meta name=\"ac-discovery\" content=\"example.org http://127.0.0.1/{name}.{ext}\"><meta name=\"ac-discovery\" content=\"127.0.0.1/apps http://127.0.0.1/{name}-{channel}.{ext}\"></head></html>",
        ),
    );
    s.refused(
        &[
            &s.local(),
            "fetch",
            "--full",
            "--insecure-options=http",
            "127.0.0.1/apps/web:1.0",
        ],
        &[],
        &[
            "127.0.0.1/apps/web",
            "no ac-discovery template",
            "discovery",
        ],
    );
}
