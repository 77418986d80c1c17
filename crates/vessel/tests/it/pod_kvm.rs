//! The kvm stage1 (issue 15): each pod in a QEMU virtual machine booting the host's
//! Debian kernel with Vessel's initramfs, the apps' roots shared over 9p. Every test
//! skips, saying so, where /dev/kvm is absent. On a host whose KVM is PVM (which boots no
//! distribution kernel) the pods run under QEMU's emulation: each boot takes seconds, so
//! each test boots as few machines as it can.

use crate::common::Run;
use crate::podkit::{cgroup_dirs, host_processes, PodEnv};

/// Whether the kvm tests can run here; says why not when they cannot.
fn kvm_here(test: &str) -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        return true;
    }
    eprintln!("SKIPPED {test}: no /dev/kvm on this machine (the kvm stage1 needs KVM)");
    false
}

/// `run --rm --stage1=kvm [flags] IMAGE [app flags] --exec /bin/sh -- -c SCRIPT`.
fn kvm(p: &PodEnv, flags: &[&str], app_flags: &[&str], script: &str) -> Run {
    let mut args = vec!["run", "--rm", "--stage1=kvm"];
    args.extend_from_slice(flags);
    args.push(&p.image);
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", script]);
    p.run(&args)
}

/// No QEMU of this test's store is left, nor a mount of its pods, nor a cgroup.
fn nothing_left(p: &PodEnv, uuid: Option<&str>) {
    let dir = p.v.dir().display().to_string();
    let qemus = || -> Vec<String> {
        host_processes("qemu-system")
            .into_iter()
            .filter(|l| l.contains(&dir))
            .collect()
    };
    // `run --rm` returns once the statuses are known; the pod's init ends QEMU right after.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !qemus().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(qemus().is_empty(), "QEMU left running: {:?}", qemus());
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    if let Some(u) = uuid {
        assert!(cgroup_dirs(u).is_empty(), "cgroups left: {:?}", cgroup_dirs(u));
    }
}

#[test]
fn a_kvm_pod_runs_its_app_in_a_virtual_machine_and_reports_its_output_and_status() {
    if !kvm_here("a_kvm_pod_runs_its_app_in_a_virtual_machine") {
        return;
    }
    let p = PodEnv::new();
    let r = kvm(
        &p,
        &[],
        &[],
        "echo out-$(cat /proc/sys/kernel/osrelease); echo err-line >&2; \
         echo pid1=$(cat /proc/1/comm); test -x /bin/busybox && echo busybox; exit 3",
    );
    assert_eq!(r.code(), Some(3), "{r}");
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(r.stdout.contains("out-"), "{r}");
    assert!(
        !r.stdout.contains(&format!("out-{}", host_release.trim())),
        "the app runs on the host's kernel, not the guest's:\n{r}"
    );
    assert!(r.stdout.contains("busybox"), "{r}");
    assert!(r.stderr.contains("err-line"), "{r}");
    nothing_left(&p, None);
}
