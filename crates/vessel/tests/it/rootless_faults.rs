//! Rootless faults (issue 14): a data directory on a small filesystem of the user's that
//! fills up, and one mounted nosuid,nodev,noexec. Run by a real user (`rootless::User`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::Vessel;
use crate::rootless::User;

/// A tmpfs mounted for the test, owned by the user, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(u: &User, options: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("vessel-test-rootless-fs-")
            .tempdir()
            .unwrap();
        let opts = format!("{options},uid={},gid={},mode=0700", u.uid, u.gid);
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {out:?}");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem (as root) with one file; its path.
    fn fill(&self) -> PathBuf {
        let p = self.path().join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = vec![1u8; 64 << 10];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", p.display()),
            }
        }
        // Byte by byte, the last pages too.
        while f.write(&[1]).is_ok_and(|n| n == 1) {}
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A full data directory: fetch and run fail cleanly saying so, the store stays sound
/// and unchanged, and both work once space is freed.
#[test]
fn a_full_data_dir_is_a_clean_error_and_a_retry_works() {
    let v = Vessel::new();
    let u = User::new(true);
    let fs = Tmpfs::new(&u, "size=8m");
    let dir = format!("--dir={}", fs.path().join("v").display());
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::Gzip);
    let path = u.give(&aci.path);
    u.run(&[&dir, "image", "list"]).success();

    let filler = fs.fill();
    u.run(&[&dir, "fetch", "--insecure-options=image", &path])
        .failure()
        .stderr_names(&["No space left on device"]);
    let r = u.run(&[&dir, "image", "verify"]).success();
    assert!(r.stderr.contains("verified 0 images"), "{r}");
    let tmp = std::fs::read_dir(fs.path().join("v/store/tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "the failed fetch left temporary files");

    std::fs::remove_file(&filler).unwrap();
    let r = u
        .run(&[&dir, "fetch", "--insecure-options=image", "--full", &path])
        .success();
    assert_eq!(r.stdout.trim(), aci.id, "{r}");

    // Full again: a pod cannot be made, and says why; the image stays sound.
    let filler = fs.fill();
    run_true(&u, &dir)
        .failure()
        .stderr_names(&["No space left on device"]);
    let r = u.run(&[&dir, "image", "verify"]).success();
    assert!(r.stderr.contains("verified 1 images"), "{r}");
    std::fs::remove_file(&filler).unwrap();
    let r = u
        .run(&[
            &dir,
            "run",
            "--rm",
            "--net=none",
            "example.com/busybox:1",
            "--exec=/bin/echo",
            "--",
            "after",
        ])
        .success();
    assert!(r.stdout.contains("after"), "{r}");
    u.run(&[&dir, "gc", "--grace-period=0s"]).success();
    let list = u.run(&[&dir, "list", "--format=json"]).success().json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

/// nosuid, nodev and noexec take nothing a rootless pod needs from its data directory:
/// the images' setuid bits and device nodes never count in one anyway, and the apps run
/// from an overlay mount of the pod's own, which none of them applies to.
#[test]
fn a_data_dir_mounted_nosuid_nodev_noexec_works() {
    let v = Vessel::new();
    let u = User::new(true);
    let fs = Tmpfs::new(&u, "size=64m,nosuid,nodev,noexec");
    let dir = format!("--dir={}", fs.path().join("v").display());
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::Gzip);
    let path = u.give(&aci.path);
    u.run(&[&dir, "fetch", "--insecure-options=image", &path])
        .success();
    let r = u
        .run(&[
            &dir,
            "run",
            "--rm",
            "--net=none",
            "example.com/busybox:1",
            "--exec=/bin/echo",
            "--",
            "ran",
        ])
        .success();
    assert!(r.stdout.contains("ran"), "{r}");
}

/// Unmounts a test's mount when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// overlayfs cannot hold an overlay's upper layer (the apps' writable layers live under
/// the data dir): a data dir on it (a --dir inside a container's root, say) is refused
/// before any pod exists, saying why; fetching into it works.
#[test]
fn a_data_dir_on_overlayfs_is_refused_before_a_pod_exists() {
    use std::os::unix::fs::PermissionsExt;
    let v = Vessel::new();
    let u = User::new(true);
    let base = tempfile::Builder::new()
        .prefix("vessel-test-rootless-ovl-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(base.path().join(d)).unwrap();
    }
    let upper = base.path().join("upper");
    std::os::unix::fs::chown(&upper, Some(u.uid), Some(u.gid)).unwrap();
    std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o700)).unwrap();
    let merged = base.path().join("merged");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.path().join("lower").display(),
        upper.display(),
        base.path().join("work").display()
    );
    let out = Command::new("mount")
        .args(["-t", "overlay", "-o", &opts, "overlay"])
        .arg(&merged)
        .output()
        .unwrap();
    assert!(out.status.success(), "mount: {out:?}");
    let _unmount = Unmount(merged.clone());
    let dir = format!("--dir={}", merged.join("v").display());
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::Gzip);
    let path = u.give(&aci.path);
    u.run(&[&dir, "fetch", "--insecure-options=image", &path])
        .success();
    run_true(&u, &dir)
        .failure()
        .stderr_names(&["overlayfs", "--dir"]);
    let list = u.run(&[&dir, "list", "--format=json"]).success().json();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

/// `vessel DIR_FLAG run --net=none` of the busybox image's /bin/true, as the user.
fn run_true(u: &User, dir_flag: &str) -> crate::common::Run {
    u.run(&[
        dir_flag,
        "run",
        "--net=none",
        "example.com/busybox:1",
        "--exec=/bin/true",
    ])
}
