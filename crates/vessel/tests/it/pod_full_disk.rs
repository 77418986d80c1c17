//! A pod whose app fills the disk under `--dir` (hardening finding 9): its apps' exit
//! statuses must still reach `status` and `run`'s exit code, and the pod's removal must
//! give the disk back so the next pod runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::Vessel;
use crate::podkit::{PodEnv, IMAGE};

/// A size-limited tmpfs mounted over a directory, unmounted when dropped.
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(dir: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("vessel-test-full")
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Gives the tmpfs another size (the disk freed, or filled).
    pub(crate) fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "resizing the tmpfs on {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A pod environment whose `--dir` is a 24 MiB tmpfs holding the busybox image.
struct SmallDisk {
    env: PodEnv,
    // Dropped after `env` has removed its pods.
    _tmpfs: Tmpfs,
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let v = Vessel::new();
        let tmpfs = Tmpfs::mount(v.dir(), "24m");
        let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
        v.fetch(&aci.path_str());
        SmallDisk {
            env: PodEnv {
                v,
                image: IMAGE.to_string(),
            },
            _tmpfs: tmpfs,
        }
    }

    fn free_bytes(&self) -> u64 {
        let st = rustix::fs::statvfs(self.env.v.dir()).unwrap();
        st.f_bavail * st.f_frsize
    }
}

#[test]
fn exit_statuses_survive_an_app_that_fills_the_disk() {
    let d = SmallDisk::new();
    let p = &d.env;
    let turns = p.v.path("turns");
    std::fs::create_dir(&turns).unwrap();
    let uuid_file = p.v.path("uuid");
    let vol = format!("--volume=t,kind=host,source={}", turns.display());
    let save = format!("--uuid-file-save={}", uuid_file.display());
    // `fill` fills the disk, then exits 7 while `waiter` runs (whose state cannot be
    // written then); `waiter` exits 3 once the disk is full.
    let r = p.run(&[
        "run",
        "--net=none",
        &save,
        &vol,
        "--mount",
        "volume=t,target=/t",
        IMAGE,
        "--name=fill",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /dev/zero > /fill; touch /t/full; exit 7",
        "---",
        IMAGE,
        "--name=waiter",
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "while [ ! -e /t/full ]; do sleep 0.01; done; sleep 0.2; exit 3",
    ]);
    assert!(
        r.stderr.contains("No space left on device"),
        "the app should have filled the disk:\n{r}"
    );
    assert!(
        d.free_bytes() < 1 << 20,
        "the disk is still full after the pod: {} bytes free",
        d.free_bytes()
    );
    assert_eq!(r.code(), Some(7), "run tells the first app's status:\n{r}");
    let uuid = std::fs::read_to_string(&uuid_file)
        .unwrap()
        .trim()
        .to_string();
    let st = p.status(&uuid);
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(p.app_exit(&uuid, "fill"), Some(7), "{st}");
    assert_eq!(p.app_exit(&uuid, "waiter"), Some(3), "{st}");
    let r = p.v.run(&["status", &uuid]).success();
    assert!(
        r.stdout.contains("app-fill=7") && r.stdout.contains("app-waiter=3"),
        "{r}"
    );
    // Removing the pod gives the disk back, and the next pod runs and is recorded.
    p.v.run(&["rm", &uuid]).success();
    assert!(d.free_bytes() > 8 << 20, "{} bytes free", d.free_bytes());
    let r = p.sh(&[], "exit 5");
    assert_eq!(r.code(), Some(5), "{r}");
}

#[test]
fn a_detached_pod_that_fills_the_disk_reports_its_status() {
    let d = SmallDisk::new();
    let p = &d.env;
    let uuid = p.detached(
        &["--net=none"],
        &["/bin/sh", "-c", "sleep 0.3; cat /dev/zero > /fill; exit 9"],
    );
    crate::podkit::wait_for(
        "the pod to exit",
        std::time::Duration::from_secs(60),
        || p.status(&uuid)["state"] == "exited",
    );
    assert!(d.free_bytes() < 1 << 20, "{} bytes free", d.free_bytes());
    assert_eq!(p.app_exit(&uuid, "busybox"), Some(9), "{}", p.status(&uuid));
}
