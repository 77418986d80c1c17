//! appc event handlers: pre-start before the app, post-stop after it, with the app's
//! environment; a failing pre-start keeps the app from starting.

use crate::common;

use common::aci::AciLayout;
use common::compress::Compression;
use common::rootfs::busybox_rootfs;
use common::Vessel;

fn hooked_image(v: &Vessel, name: &str, pre: &str, post: &str, main: &str) -> String {
    let mut layout = AciLayout::create(
        &v.path(&format!("{name}.layout")),
        &format!("example.com/{name}"),
        "1",
    );
    busybox_rootfs(&layout.rootfs());
    layout.manifest["app"] = serde_json::json!({
        "exec": ["/bin/sh", "-c", main],
        "user": "0", "group": "0",
        "environment": [{"name": "GREETING", "value": "hi"}],
        "eventHandlers": [
            {"name": "pre-start", "exec": ["/bin/sh", "-c", pre]},
            {"name": "post-stop", "exec": ["/bin/sh", "-c", post]},
        ],
        "mountPoints": [{"name": "shared", "path": "/shared"}],
    });
    let aci = layout.build(&v.path(&format!("{name}.aci")), Compression::None);
    v.fetch(&aci.path_str());
    format!("example.com/{name}:1")
}

#[test]
fn two_apps_share_an_empty_volume_with_handlers_on_one() {
    let v = Vessel::new();
    let hooked = hooked_image(
        &v,
        "hooked",
        "echo \"pre $GREETING\" > /shared/log",
        "echo \"post $GREETING\" >> /shared/log; cat /shared/log",
        // Nothing of the handlers' shim above it leaks into the app (its signalfd did).
        "echo main >> /shared/log; ls -l /proc/$$/fd > /tmp/fds; echo anon fds: $(grep -c anon_inode /tmp/fds); exit 3",
    );
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
    v.fetch(&aci.path_str());
    let uuid_file = v.path("uuid");
    let r = v.run(&[
        "run", &format!("--uuid-file-save={}", uuid_file.display()), "--volume=shared,kind=empty,mode=0777", &hooked, "---", "example.com/busybox:1", "--name=watcher",
        "--mount=volume=shared,target=/shared", "--exec", "/bin/sh", "--", "-c", "for i in $(seq 100); do grep -q main /shared/log 2>/dev/null && break; sleep 0.02; done; echo watcher saw it",
    ]);
    assert_eq!(r.code(), Some(3), "the hooked app's status:\n{r}");
    assert!(r.stdout.contains("pre hi\nmain\npost hi\n"), "{r}");
    assert!(r.stdout.contains("watcher saw it"), "{r}");
    assert!(r.stdout.contains("anon fds: 0\n"), "{r}");
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    let s = v.run(&["status", "--format=json", &uuid]).success().json();
    let code = |name: &str| {
        s["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["exit_code"]
            .as_i64()
    };
    assert_eq!(code("hooked"), Some(3), "{s}");
    assert_eq!(code("watcher"), Some(0), "{s}");
    v.run(&["rm", &uuid]).success();
}

#[test]
fn a_failing_pre_start_handler_keeps_the_app_from_starting() {
    let v = Vessel::new();
    let image = hooked_image(
        &v,
        "failing",
        "exit 9",
        "echo post-should-not-run",
        "echo main-should-not-run",
    );
    let uuid_file = v.path("uuid");
    let r = v.run(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        "--volume=shared,kind=empty",
        &image,
    ]);
    assert_ne!(r.code(), Some(0), "{r}");
    assert!(!r.stdout.contains("should-not-run"), "{r}");
    assert!(
        r.stderr.contains("pre-start handler") && r.stderr.contains("exit status 9"),
        "{r}"
    );
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    let st = v.run(&["status", &uuid]).success();
    assert!(
        st.stdout.contains("pre-start handler"),
        "status says why:\n{st}"
    );
    v.run(&["rm", &uuid]).success();
}

/// Handlers start as the app does: no signal ignored or blocked (the handlers' shim
/// blocks the ones it forwards, and vessel's runtime ignores SIGPIPE).
#[test]
fn handlers_start_with_default_signals() {
    let v = Vessel::new();
    let sigs = "grep -E '^Sig(Ign|Blk)' /proc/self/status";
    let hooked = hooked_image(
        &v,
        "signals",
        &format!("{sigs} | sed 's/^/pre /' > /shared/log"),
        &format!("{sigs} | sed 's/^/post /' >> /shared/log; cat /shared/log"),
        &format!("{sigs} | sed 's/^/main /' >> /shared/log"),
    );
    let r = v.run(&["run", "--rm", &hooked]);
    assert_eq!(r.code(), Some(0), "{r}");
    for who in ["pre", "main", "post"] {
        for line in ["SigIgn", "SigBlk"] {
            assert!(
                r.stdout
                    .contains(&format!("{who} {line}:\t0000000000000000")),
                "{who} {line}:\n{r}"
            );
        }
    }
}
