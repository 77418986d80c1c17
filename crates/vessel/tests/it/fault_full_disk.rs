//! Faults from a full disk under `--dir` (issue 16, fault injection with a size-limited
//! tmpfs): after each, `image verify` passes, no pod is in a state that lies, and a
//! retry on a disk with room succeeds.

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::Vessel;
use crate::pod_full_disk::Tmpfs;
use crate::podkit::{PodEnv, IMAGE};

#[test]
fn a_fetch_cut_short_by_a_full_disk_stores_nothing_and_a_retry_succeeds() {
    let v = Vessel::new();
    let disk = Tmpfs::mount(v.dir(), "1m");
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
    let r = v.fetch_refused(&aci.path_str());
    assert!(r.stderr.contains("No space left on device"), "{r}");
    v.assert_nothing_stored();
    v.assert_verify_clean();
    disk.resize("64m");
    v.fetch(&aci.path_str());
    v.assert_verify_clean();
    assert_eq!(v.image_ids().len(), 1);
}

#[test]
fn a_prepare_cut_short_by_a_full_disk_leaves_no_pod_that_lies_and_a_retry_runs() {
    let v = Vessel::new();
    let disk = Tmpfs::mount(v.dir(), "64m");
    let aci = busybox_aci(v.work(), "example.com/busybox", "1", Compression::None);
    v.fetch(&aci.path_str());
    let p = PodEnv {
        v,
        image: IMAGE.to_string(),
    };
    // Nothing left free: the disk is made as small as what it holds.
    let used_kib = {
        let st = rustix::fs::statvfs(p.v.dir()).unwrap();
        (st.f_blocks - st.f_bfree) * st.f_frsize / 1024
    };
    disk.resize(&format!("{used_kib}k"));
    let r = p.run(&["prepare", &p.image, "--exec=/bin/true"]);
    assert_ne!(r.code(), Some(0), "prepare on a full disk:\n{r}");
    assert!(r.stderr.contains("No space left on device"), "{r}");
    // No pod claims to be prepared; gc clears what was cut short.
    for pod in p.list() {
        assert_ne!(pod["state"], "prepared", "{pod}");
    }
    disk.resize("64m");
    p.run(&["gc", "--grace-period=0s", "--expire-prepared=0s"])
        .success();
    p.v.assert_verify_clean();
    let r = p.sh(&[], "exit 4");
    assert_eq!(r.code(), Some(4), "{r}");
}
