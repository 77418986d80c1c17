//! Root filesystems for test images, made from Debian's busybox-static.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

pub const BUSYBOX: &str = "/bin/busybox";

/// A non-root user every busybox root filesystem has.
pub const USER_NAME: &str = "app";
pub const USER_ID: u32 = 1000;

/// The applets this busybox provides, as `busybox --list` prints them.
pub fn busybox_applets() -> Vec<String> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("running {BUSYBOX} --list (is busybox-static installed?): {e}"));
    assert!(out.status.success(), "{BUSYBOX} --list failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Fills `root` with /bin/busybox, a symlink per applet, /etc/passwd and /etc/group (root
/// and a non-root user), /tmp (mode 1777) and /root.
pub fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for applet in busybox_applets() {
        if applet != "busybox" {
            symlink("busybox", bin.join(&applet)).unwrap();
        }
    }
    write_file(
        root,
        "etc/passwd",
        format!("root:x:0:0:root:/root:/bin/sh\n{USER_NAME}:x:{USER_ID}:{USER_ID}:app:/home/{USER_NAME}:/bin/sh\n").as_bytes(),
    );
    write_file(
        root,
        "etc/group",
        format!("root:x:0:\n{USER_NAME}:x:{USER_ID}:\n").as_bytes(),
    );
    let home = root.join("home").join(USER_NAME);
    for dir in [root.join("tmp"), root.join("root"), home.clone()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::os::unix::fs::chown(&home, Some(USER_ID), Some(USER_ID)).unwrap();
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// Writes `rel` under `root`, creating its parent directories.
pub fn write_file(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
}
