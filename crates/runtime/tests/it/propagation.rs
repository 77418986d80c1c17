//! Mount propagation from config.json: private by default, `rslave` and `rshared` (on the
//! root and per mount) as asked, and the container's own root never showing on the host.

use std::path::Path;
use std::process::Command;

use crate::kit::Env;

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A host directory that is a shared mount of its own, unmounted (with whatever was
/// mounted under it) when dropped.
struct SharedDir(tempfile::TempDir);

impl SharedDir {
    fn new() -> SharedDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().display();
        sh(&format!(
            "mount --bind {p} {p} && mount --make-shared {p} && mkdir {p}/fromhost {p}/fromc"
        ));
        SharedDir(d)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let p = self.0.path().display();
        let _ = Command::new("sh")
            .args([
                "-c",
                &format!("umount -l {p}/fromc; umount -l {p}/fromhost; umount -l {p}"),
            ])
            .status();
    }
}

fn container(src: &Path, id: &str, root: Option<&str>, per_mount: &str) -> Env {
    let env = Env::new(&["sleep", "1000"]);
    let src = src.to_str().unwrap().to_string();
    let per_mount = per_mount.to_string();
    let root = root.map(str::to_string);
    env.edit_config(move |c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/mnt/src", "type": "bind", "source": src,
            "options": ["rbind", per_mount],
        }));
        if let Some(r) = root {
            c["linux"]["rootfsPropagation"] = r.into();
        }
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_SYS_ADMIN".into());
        }
    });
    env.run(&["run", "--detach", id]).ok();
    env
}

fn host_mount_points() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn mounts_are_private_by_default_and_propagate_as_asked() {
    crate::kit::require_root();
    let src = SharedDir::new();
    let private = container(src.path(), "prop-private", None, "rprivate");
    let slave = container(src.path(), "prop-slave", Some("rslave"), "rslave");
    let shared = container(src.path(), "prop-shared", Some("rshared"), "rshared");

    // Mounted on the host after the containers started: seen only where asked.
    let p = src.path().display();
    sh(&format!(
        "mount -t tmpfs hostfs {p}/fromhost && echo host > {p}/fromhost/marker"
    ));
    let cat = ["cat", "/mnt/src/fromhost/marker"];
    let r = private.run(&[&["exec", "prop-private"][..], &cat[..]].concat());
    assert_ne!(
        r.code,
        Some(0),
        "a private mount saw the host's: {}",
        r.shown
    );
    for (env, id) in [(&slave, "prop-slave"), (&shared, "prop-shared")] {
        let r = env.run(&[&["exec", id][..], &cat[..]].concat()).ok();
        assert_eq!(r.stdout.trim(), "host", "{id}");
    }

    // Mounted in the containers: only the shared one's reaches the host.
    let mount_in = |env: &Env, id: &str| {
        env.run(&[
            "exec",
            id,
            "sh",
            "-c",
            &format!("mount -t tmpfs {id} /mnt/src/fromc && echo {id} > /mnt/src/fromc/m"),
        ])
        .ok();
    };
    mount_in(&slave, "prop-slave");
    assert!(
        !src.path().join("fromc/m").exists(),
        "a slave's mount reached the host"
    );
    mount_in(&shared, "prop-shared");
    assert_eq!(
        std::fs::read_to_string(src.path().join("fromc/m"))
            .unwrap()
            .trim(),
        "prop-shared"
    );

    // The containers' roots were attached in their own namespaces only.
    let table = host_mount_points();
    for env in [&private, &slave, &shared] {
        let rootfs = env.bundle.path().join("rootfs");
        assert!(
            !table.contains(&format!(" {} ", rootfs.display())),
            "{} is mounted on the host",
            rootfs.display()
        );
    }
    for (env, id) in [
        (&private, "prop-private"),
        (&slave, "prop-slave"),
        (&shared, "prop-shared"),
    ] {
        env.run(&["delete", "--force", id]).ok();
    }
}

#[test]
fn an_unknown_rootfs_propagation_is_refused_naming_it() {
    let env = Env::new(&["true"]);
    env.edit_config(|c| c["linux"]["rootfsPropagation"] = "sideways".into());
    env.run(&["run", "prop-bad"])
        .fails_with("linux.rootfsPropagation");
    env.assert_gone("prop-bad");
}
