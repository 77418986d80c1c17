//! `gc` and `rm` act on pod directories by descriptor, never by a path resolved again
//! (hardening finding 6, the rest): a symlink where a pod's directory should be is never
//! followed, marked through, locked or deleted through; it is left alone and named.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::podkit::PodEnv;

/// A directory of root's files that gc must never touch.
fn victim(p: &PodEnv) -> PathBuf {
    let victim = p.v.path("victim");
    std::fs::create_dir_all(victim.join("sub")).unwrap();
    std::fs::write(victim.join("precious"), "root's").unwrap();
    std::fs::write(victim.join("sub/also"), "root's").unwrap();
    // Old enough for every grace period gc applies (the embryo's is a minute).
    let st = Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&victim)
        .status()
        .unwrap();
    assert!(st.success());
    victim
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn gc_never_follows_a_symlink_in_a_pods_place() {
    let p = PodEnv::new();
    // A real exited pod beside the planted links: gc still removes it.
    let uuid_file = p.v.path("uuid");
    let save = format!("--uuid-file-save={}", uuid_file.display());
    let r = p.run(&["run", "--net=none", &save, &p.image, "--exec", "/bin/true"]);
    assert_eq!(r.code(), Some(0), "{r}");
    let real = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(p.status(&real)["state"], "exited");
    let victim = victim(&p);
    let pods = p.v.dir().join("pods");
    let planted = [
        "run/0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c01",
        "exited-garbage/0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c02",
        "garbage/0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c03",
        "prepare/0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c04",
        "garbage/.deleting-0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c05",
        "embryo/.new-0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c06",
    ];
    for link in planted {
        symlink(&victim, pods.join(link)).unwrap();
    }
    let list = p.run(&["list", "--no-legend"]).success();
    assert!(
        !list.stdout.contains("0b7a8a52"),
        "a symlink is listed as a pod:\n{list}"
    );
    let r = p.run(&["gc", "--grace-period=0s", "--expire-prepared=0s"]);
    assert_eq!(r.code(), Some(1), "gc says what it left alone:\n{r}");
    for link in planted {
        let path = pods.join(link);
        assert!(
            r.stderr.contains(&format!(
                "{}: not a directory (a symlink in a pod's place?): left alone",
                path.display()
            )),
            "gc should name {link}:\n{r}"
        );
        assert!(
            path.symlink_metadata().unwrap().file_type().is_symlink(),
            "{link} was moved or deleted:\n{r}"
        );
    }
    // Nothing written, moved or deleted where the links point.
    assert_eq!(entries(&victim), ["precious", "sub"], "{r}");
    assert_eq!(entries(&victim.join("sub")), ["also"]);
    assert_eq!(
        std::fs::read_to_string(victim.join("precious")).unwrap(),
        "root's"
    );
    // The real pod went.
    assert!(r.stdout.contains(&format!("removed {real}")), "{r}");
    assert!(p.run(&["status", &real]).code() != Some(0));
    // `rm` of such a UUID finds no pod.
    let r = p.run(&["rm", "0b7a8a52-5d57-4b4e-9d5b-3f4f3e1d2c02"]);
    assert_eq!(r.code(), Some(1), "{r}");
    assert_eq!(entries(&victim), ["precious", "sub"], "{r}");
}
