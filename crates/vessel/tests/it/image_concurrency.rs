//! Several vessel processes on one store, and processes killed in the middle of an import.

use crate::common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::compress::Compression;
use common::oci::random_image_layout;
use common::Vessel;

/// Spawns `vessel fetch --insecure-options=image IMAGE` with its output captured.
fn spawn_fetch(v: &Vessel, image: &str) -> Child {
    v.command(&["fetch", "--full", "--insecure-options=image", image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a fetch and returns the ID it printed; panics with its stderr if it failed.
fn fetched_id(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "a concurrent fetch failed with {}:\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_string()
}

fn assert_same_image_imported_at_once(v: &Vessel, image: &str, expected_id: &str) {
    let children: Vec<Child> = (0..2).map(|_| spawn_fetch(v, image)).collect();
    let ids: Vec<String> = children.into_iter().map(fetched_id).collect();
    assert_eq!(ids, vec![expected_id.to_string(); 2]);
    assert_eq!(v.image_ids(), vec![expected_id.to_string()]);
    assert_eq!(
        v.layer_dirs().len(),
        1,
        "one copy of the layer: {:?}",
        v.layer_dirs()
    );
    assert_eq!(
        v.tmp_entries(),
        Vec::<String>::new(),
        "the losing import left its work behind"
    );
    v.assert_verify_clean();
}

#[test]
fn two_processes_importing_one_oci_image_at_once_both_succeed_with_one_copy() {
    let v = Vessel::new();
    let (reference, id) = random_image_layout(&v.path("layout"), 40, 1 << 20);
    assert_same_image_imported_at_once(&v, &reference, &id);
}

#[test]
fn two_processes_importing_one_aci_at_once_both_succeed_with_one_copy() {
    let v = Vessel::new();
    let aci = common::aci::busybox_aci(v.work(), "example.com/busybox", "1.0", Compression::Gzip);
    assert_same_image_imported_at_once(&v, &aci.path_str(), &aci.id);
    assert_eq!(
        v.blobs()
            .iter()
            .filter(|b| b.starts_with("sha512/"))
            .count(),
        1,
        "{:?}",
        v.blobs()
    );
}

#[test]
fn processes_importing_different_images_at_once_all_succeed() {
    let v = Vessel::new();
    let images: Vec<(String, String)> = (0..3)
        .map(|i| {
            let aci = common::aci::busybox_aci(
                v.work(),
                &format!("example.com/app{i}"),
                "1.0",
                Compression::Gzip,
            );
            (aci.path_str(), aci.id)
        })
        .collect();
    let children: Vec<Child> = images.iter().map(|(p, _)| spawn_fetch(&v, p)).collect();
    let ids: Vec<String> = children.into_iter().map(fetched_id).collect();
    let expected: Vec<String> = images.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids, expected);
    let mut listed = v.image_ids();
    listed.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(listed, expected);
    v.assert_verify_clean();
}

/// Files extracted so far by an import in progress (in store/tmp/*/rootfs/data).
fn files_in_progress(store: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(store.join("tmp")) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_dir(e.path().join("rootfs/data")).ok())
        .map(|d| d.count())
        .sum()
}

/// After a process died mid-import: no image, no layer, a sound store.
fn assert_no_trace_of_a_killed_import(v: &Vessel) {
    assert_eq!(
        v.image_ids(),
        Vec::<String>::new(),
        "a killed import left a visible image"
    );
    assert_eq!(
        v.layer_dirs(),
        Vec::<String>::new(),
        "a killed import left a visible layer"
    );
    v.assert_verify_clean();
}

#[test]
fn import_killed_mid_layer_leaves_verify_clean_and_the_next_import_succeeds() {
    let v = Vessel::new();
    // 200 MiB of random data: a layer big enough to be caught half-written.
    let (reference, id) = random_image_layout(&v.path("big"), 200, 1 << 20);
    let mut child = spawn_fetch(&v, &reference);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if files_in_progress(&v.store()) >= 20 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import finished ({status}) before it could be killed mid-layer");
        }
        assert!(
            Instant::now() < deadline,
            "the import never started extracting"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import was not killed: {status}");
    assert_no_trace_of_a_killed_import(&v);

    assert_eq!(v.fetch(&reference), id, "the next import must succeed");
    assert_eq!(v.image_ids(), vec![id.clone()]);
    v.assert_verify_clean();
    // What the dead process left in tmp/ is unlocked now, and gc clears it.
    v.run(&["image", "gc"]).success();
    assert_eq!(
        v.tmp_entries(),
        Vec::<String>::new(),
        "gc left the killed import's work in tmp/"
    );
    let rendered = v.render(&id);
    assert_eq!(
        std::fs::read_dir(rendered.join("data")).unwrap().count(),
        200
    );
}

#[test]
fn import_killed_at_any_moment_never_leaves_a_partial_image() {
    let v = Vessel::new();
    let (reference, id) = random_image_layout(&v.path("medium"), 24, 1 << 20);
    for delay_ms in [0, 3, 10, 25, 50, 100, 200, 400] {
        let mut child = spawn_fetch(&v, &reference);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        v.assert_verify_clean();
        let ids = v.image_ids();
        if ids.is_empty() {
            continue;
        }
        // An image that is visible at all must be whole.
        assert_eq!(
            ids,
            vec![id.clone()],
            "after a kill at {delay_ms} ms ({status})"
        );
        let rendered = v.render(&id);
        assert_eq!(
            std::fs::read_dir(rendered.join("data")).unwrap().count(),
            24,
            "a visible image is incomplete"
        );
        v.run(&["image", "rm", &id]).success();
        v.run(&["image", "gc"]).success();
    }
    assert_eq!(v.fetch(&reference), id);
    v.assert_verify_clean();
}
