//! Image content quoted in what Vessel prints must never drive the operator's terminal:
//! escape sequences, bells, carriage returns and bidi overrides from an image's
//! WorkingDir, labels, entry names or environment come out escaped (`\u{1b}`), on stderr
//! and stdout alike.

use crate::common;
use crate::podkit::PodEnv;

use common::aci::{aci_manifest, raw_aci, write_aci};
use common::compress::Compression;
use common::oci::busybox_layout;
use common::Run;

/// Anything a terminal would act on.
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{9b}1m\u{202e}";

fn assert_inert(run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}')
            .collect();
        assert!(
            bad.is_empty(),
            "{stream} carries control characters {bad:?} from the image:\n{run}"
        );
    }
}

#[test]
fn working_dir_with_escape_sequences_is_printed_escaped() {
    let env = PodEnv::new();
    let layout = busybox_layout(&env.v.path("layout"), "escapes");
    let dir = format!("/nowhere{HOSTILE}");
    layout.config(&["--config.workingdir", &dir]);
    let id = env.v.fetch(&layout.reference());
    // The app cannot start: its error quotes the WorkingDir.
    let run = env.run(&["run", &id]);
    assert_ne!(run.code(), Some(0), "the app should not start:\n{run}");
    assert!(
        run.stderr.contains("\\u{1b}"),
        "the error should show the escape, escaped:\n{run}"
    );
    assert_inert(&run);
    // status quotes it too.
    let uuid = env.list()[0]["name"].as_str().unwrap().to_string();
    let status = env.run(&["status", &uuid]).success();
    assert_inert(&status);
    assert!(
        status.stdout.contains("\\u{1b}"),
        "status should show the escape, escaped:\n{status}"
    );
}

#[test]
fn label_with_escape_sequences_is_listed_escaped() {
    let env = PodEnv::new();
    let mut manifest = aci_manifest("example.com/labelled", "1.0");
    manifest["labels"][0]["value"] = format!("1.0{HOSTILE}").into();
    let tar = raw_aci(&serde_json::to_vec(&manifest).unwrap(), |t| {
        t.file("rootfs/f", b"f");
    });
    let aci = write_aci(&env.v.path("labelled.aci"), &tar, Compression::Gzip);
    let fetched = env
        .v
        .run(&["fetch", "--insecure-options=image", &aci.path_str()]);
    assert_inert(&fetched);
    let list = env.v.run(&["image", "list", "--full"]).success();
    assert_inert(&list);
    let list = env.v.run(&["image", "list"]).success();
    assert_inert(&list);
}

#[test]
fn hostile_entry_names_and_environment_are_quoted_escaped() {
    let env = PodEnv::new();
    // Refused: the entry name climbs out, and carries escapes.
    let tar = raw_aci(
        &serde_json::to_vec(&aci_manifest("example.com/named", "1.0")).unwrap(),
        |t| {
            t.file(&format!("rootfs/../{HOSTILE}"), b"x");
        },
    );
    let aci = write_aci(&env.v.path("named.aci"), &tar, Compression::Gzip);
    let run = env.v.fetch_refused(&aci.path_str());
    assert_inert(&run);
    // Warned about: an Env entry whose name appc does not allow.
    let layout = busybox_layout(&env.v.path("envlayout"), "env");
    layout.config(&["--config.env", &format!("BAD{HOSTILE}NAME=x")]);
    let id = env.v.fetch(&layout.reference());
    let run = env.run(&["run", "--rm", &id, "--exec", "/bin/true"]);
    assert_inert(&run);
}
