//! A data dir (`--dir`) that another user could change is refused, as git's
//! safe.directory does (hardening finding 6): its owner could swap `store/tmp` or
//! `pods/garbage` for a symlink, and the next root `image gc` or `gc` would delete what it
//! points at.

use std::os::unix::fs::PermissionsExt;

use crate::common::{self, Vessel};

fn assert_refused(r: &common::Run, what: &str) {
    assert_eq!(r.code(), Some(1), "{r}");
    assert!(
        r.stderr.contains(what)
            && r.stderr
                .contains("refused as part of Vessel's data directory"),
        "the error should say why ({what}):\n{r}"
    );
}

/// A directory of root's files that a hostile user would like root to delete.
fn victim(v: &Vessel) -> std::path::PathBuf {
    let victim = v.path("victim");
    std::fs::create_dir_all(victim.join("sub")).unwrap();
    std::fs::write(victim.join("precious"), "root's").unwrap();
    std::fs::write(victim.join("sub/also"), "root's").unwrap();
    victim
}

fn assert_intact(victim: &std::path::Path) {
    assert_eq!(
        std::fs::read_to_string(victim.join("precious")).unwrap(),
        "root's"
    );
    assert_eq!(
        std::fs::read_to_string(victim.join("sub/also")).unwrap(),
        "root's"
    );
}

#[test]
fn a_data_dir_owned_by_another_user_is_refused() {
    let v = Vessel::new();
    std::os::unix::fs::chown(v.dir(), Some(1000), Some(1000)).unwrap();
    for cmd in [&["image", "list"][..], &["list"], &["image", "gc"], &["gc"]] {
        let r = v.run(cmd);
        assert_refused(&r, "owned by uid 1000");
        assert!(r.stderr.contains(&v.dir().display().to_string()), "{r}");
    }
    assert!(!v.dir().join("store").exists(), "nothing is made in it");
    // Given back to root, it works.
    std::os::unix::fs::chown(v.dir(), Some(0), Some(0)).unwrap();
    v.run(&["image", "list"]).success();
}

#[test]
fn a_data_dir_writable_by_others_is_refused() {
    let v = Vessel::new();
    for mode in [0o777, 0o770] {
        std::fs::set_permissions(v.dir(), std::fs::Permissions::from_mode(mode)).unwrap();
        assert_refused(&v.run(&["image", "list"]), "writable by other users");
    }
    std::fs::set_permissions(v.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    v.run(&["image", "list"]).success();
    // A directory of the store opened up later is refused too.
    std::fs::set_permissions(
        v.store().join("layers"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    assert_refused(&v.run(&["image", "list"]), "layers");
}

#[test]
fn a_store_tmp_swapped_for_a_symlink_is_refused_and_nothing_is_deleted() {
    let v = Vessel::new();
    v.run(&["image", "list"]).success();
    let victim = victim(&v);
    let tmp = v.store().join("tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    assert_refused(&v.run(&["image", "gc"]), "symlink");
    assert_intact(&victim);
}

#[test]
fn a_pods_directory_swapped_for_a_symlink_is_refused_and_nothing_is_deleted() {
    let v = Vessel::new();
    v.run(&["list"]).success();
    let victim = victim(&v);
    let garbage = v.dir().join("pods/exited-garbage");
    std::fs::remove_dir(&garbage).unwrap();
    std::os::unix::fs::symlink(&victim, &garbage).unwrap();
    assert_refused(&v.run(&["gc", "--grace-period=0s"]), "symlink");
    assert_intact(&victim);
}
