//! CVE-2021-30465: a mount target swapped for a symlink while the pod starts must never
//! lead the mount out of the app's root. Here the test itself (host root) races every
//! pod's start, planting a symlink to a host path at the mount target in the pod's upper
//! layer; whatever wins, the host path is never mounted on nor created.

use crate::common;
use crate::podkit;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::host::Sentinel;
use podkit::PodEnv;

#[test]
fn a_symlink_swapped_in_at_a_mount_target_never_leads_out() {
    let p = PodEnv::new();
    let sentinel = Sentinel::new("mountrace");
    let target = sentinel.absolute();
    let pods_dir = p.v.dir().join("pods");
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let stop = stop.clone();
        let target = target.clone();
        std::thread::spawn(move || {
            let mut planted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for state in ["prepare", "prepared", "run"] {
                    let Ok(pods) = std::fs::read_dir(pods_dir.join(state)) else {
                        continue;
                    };
                    for pod in pods.flatten() {
                        // Race about half the pods; the others show starts still work.
                        let name = pod.file_name().to_string_lossy().into_owned();
                        if u8::from_str_radix(&name[..1], 16).unwrap_or(0) % 2 == 1 {
                            continue;
                        }
                        let Ok(apps) = std::fs::read_dir(pod.path().join("apps")) else {
                            continue;
                        };
                        for app in apps.flatten() {
                            let link = app.path().join("upper").join("data");
                            // Plant it, and take it away again a moment later: some starts
                            // see it, some do not, some may see it change.
                            if std::os::unix::fs::symlink(&target, &link).is_ok() {
                                planted += 1;
                                std::thread::sleep(std::time::Duration::from_micros(
                                    300 + planted % 7 * 200,
                                ));
                                let _ = std::fs::remove_file(&link);
                            }
                        }
                    }
                }
            }
            planted
        })
    };
    let mut started = 0;
    for _ in 0..25 {
        let r = p.sh_app(
            &["--volume=v,kind=empty"],
            &["--mount=volume=v,target=/data"],
            "echo inside > /data/f",
        );
        match r.code() {
            Some(0) => started += 1,
            // Refused (the planted symlink dangles in the image): a clear error, nothing more.
            _ => assert!(
                r.stderr.contains("symlink") || r.stderr.contains("/data"),
                "{r}"
            ),
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(&target),
            "the host path got a mount:\n{mounts}"
        );
        sentinel.assert_absent();
    }
    stop.store(true, Ordering::Relaxed);
    let planted = racer.join().unwrap();
    eprintln!("{started} of 25 pods started; {planted} symlinks planted");
}
