//! What stage0 decides for a kvm pod before its init starts QEMU (`exec::kvm`): that KVM
//! is there, which kernel boots (the operator's, else the newest Debian vmlinuz in /boot)
//! and with which initramfs (built once per kernel and binary, cached), which QEMU and
//! accelerator, and the machine's size from the pod's isolators.
//!
//! The operator's knobs are environment variables, read by `run` (and so by a detached
//! pod's supervisor): `VESSEL_KVM_KERNEL` (a bzImage; its modules must be in
//! /lib/modules/<its version>), `VESSEL_KVM_DEVICE` (default /dev/kvm), `VESSEL_KVM_QEMU`
//! (default qemu-system-x86_64 on PATH), `VESSEL_KVM_ACCEL` (`auto`, `kvm` or `tcg`:
//! `--kvm-accel`'s default),
//! `VESSEL_KVM_BOOT_TIMEOUT` (seconds the guest may take to boot).

use std::path::{Path, PathBuf};

use exec::plan::{KvmAccel, KvmPlan, PodPlan};

use crate::error::{PodError, Result};
use crate::layout::PodPaths;

/// Memory of a guest whose apps set no limit, and the least any guest gets (the Debian
/// kernel and the initramfs need about 100 MiB).
const DEFAULT_MEMORY_MIB: u64 = 256;
const MIN_MEMORY_MIB: u64 = 160;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn invalid(msg: String) -> PodError {
    PodError::Invalid(msg)
}

/// A kvm pod's machine, and why it is emulated where KVM cannot run it (`--kvm-accel=auto`
/// fell back: the caller warns).
pub struct Configured {
    pub plan: KvmPlan,
    pub fallback: Option<String>,
}

pub fn configure(vessel_dir: &Path, paths: &PodPaths, plan: &PodPlan) -> Result<Configured> {
    let asked = match (plan.kvm_accel, env("VESSEL_KVM_ACCEL")) {
        (Some(a), _) => a,
        (None, Some(a)) => KvmAccel::parse(&a).ok_or_else(|| {
            invalid(format!(
                "VESSEL_KVM_ACCEL={a:?}: the accelerators are auto, kvm and tcg"
            ))
        })?,
        (None, None) => KvmAccel::Auto,
    };
    let kernel = match env("VESSEL_KVM_KERNEL") {
        Some(k) => PathBuf::from(k),
        None => newest_boot_kernel().ok_or_else(|| {
            invalid(
                "the kvm stage1 has no kernel to boot: no /boot/vmlinuz-* (install linux-image-amd64, or name one with VESSEL_KVM_KERNEL)"
                    .into(),
            )
        })?,
    };
    if !kernel.is_file() {
        return Err(invalid(format!(
            "the kvm stage1's kernel {}: no such file (VESSEL_KVM_KERNEL, or install linux-image-amd64)",
            kernel.display()
        )));
    }
    let version = exec::kvm::kernel::version(&kernel).map_err(invalid)?;
    let (accel, fallback) = match (asked, kvm_cannot_run(&kernel)) {
        (KvmAccel::Tcg, _) => ("tcg", None),
        (KvmAccel::Kvm, Some(why)) => {
            return Err(invalid(format!(
                "the kvm stage1 with --kvm-accel=kvm needs KVM that can run the guest: {why} \
                 (--kvm-accel=auto or tcg runs it under QEMU's emulation instead, much slower)"
            )))
        }
        (KvmAccel::Kvm | KvmAccel::Auto, None) => ("kvm", None),
        (KvmAccel::Auto, Some(why)) => (
            "tcg",
            Some(format!(
                "kvm stage1: KVM cannot run the guest ({why}): the machine runs under QEMU's \
                 emulation (tcg), much slower (--kvm-accel=kvm refuses instead, tcg says it is meant)"
            )),
        ),
    };
    let modules_dir = Path::new("/lib/modules").join(&version);
    let modules =
        exec::kvm::kernel::modules(&modules_dir, exec::kvm::kernel::WANTED).map_err(invalid)?;
    let cache = crate::layout::kvm_cache(vessel_dir);
    let initramfs = exec::kvm::initramfs::ensure(&cache, &kernel, &modules)
        .map_err(|e| invalid(format!("the kvm stage1's initramfs: {e}")))?;
    let qemu = match env("VESSEL_KVM_QEMU") {
        Some(q) => PathBuf::from(q),
        None => on_path("qemu-system-x86_64").ok_or_else(|| {
            invalid(
                "the kvm stage1 needs QEMU: no qemu-system-x86_64 on PATH (install qemu-system-x86)"
                    .into(),
            )
        })?,
    };
    let accel = accel.to_string();
    let boot_timeout_s: u64 = match env("VESSEL_KVM_BOOT_TIMEOUT") {
        Some(t) => t.parse().map_err(|_| {
            invalid(format!(
                "VESSEL_KVM_BOOT_TIMEOUT={t:?}: a number of seconds"
            ))
        })?,
        None if accel == "tcg" => 180,
        None => 30,
    };
    let (memory_mib, cpus) = size(plan);
    let plan = KvmPlan {
        qemu,
        kernel,
        initramfs,
        accel,
        memory_mib,
        cpus,
        boot_timeout_ms: boot_timeout_s * 1000,
        console_log: paths.kvm_console(),
        qemu_log: paths.kvm_qemu_log(),
        enter_socket: paths.kvm_enter_socket(),
        in_guest: false,
        nics: Vec::new(),
    };
    Ok(Configured { plan, fallback })
}

/// Why KVM cannot run the guest's kernel here, if it cannot: no KVM device, or a KVM that
/// is PVM (which runs only PVM guest kernels).
fn kvm_cannot_run(kernel: &Path) -> Option<String> {
    let device = env("VESSEL_KVM_DEVICE").unwrap_or_else(|| "/dev/kvm".into());
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&device)
    {
        return Some(format!("no KVM: {device}: {e}"));
    }
    if kvm_is_pvm() {
        return Some(format!(
            "this host's KVM is PVM (kvm_pvm, no kvm_intel or kvm_amd), which boots only \
             PVM guest kernels, not {}",
            kernel.display()
        ));
    }
    None
}

/// The host's KVM is PVM (`kvm_pvm`, page-table-based virtualisation for hosts without
/// VT-x/AMD-V), which boots only PVM guest kernels: a distribution kernel hangs at its
/// first instruction in real mode. QEMU's emulation (TCG) runs it instead.
pub fn kvm_is_pvm() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
        && !Path::new("/sys/module/kvm_intel").exists()
        && !Path::new("/sys/module/kvm_amd").exists()
}

/// The newest /boot/vmlinuz-* by modification time (the one linux-image-amd64 installed
/// last).
fn newest_boot_kernel() -> Option<PathBuf> {
    std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_else(|| vec!["/usr/bin".into(), "/usr/local/bin".into()])
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The machine's memory and CPUs: the sum of the apps' memory limits (at least what the
/// guest's kernel needs), the sum of their CPU quotas rounded up; without limits, 256 MiB
/// and one CPU.
pub fn size(plan: &PodPlan) -> (u64, u32) {
    let mut memory: u64 = 0;
    let mut cpus: f64 = 0.0;
    let mut limited = false;
    for app in &plan.apps {
        let Some(r) = app
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
        else {
            continue;
        };
        if let Some(m) = r
            .memory()
            .as_ref()
            .and_then(|m| m.limit())
            .filter(|m| *m > 0)
        {
            memory += (m as u64).div_ceil(1 << 20);
            limited = true;
        }
        if let Some(c) = r.cpu() {
            if let (Some(q), Some(p)) = (c.quota(), c.period()) {
                if q > 0 && p > 0 {
                    cpus += q as f64 / p as f64;
                }
            }
        }
    }
    let memory = if limited {
        memory.max(MIN_MEMORY_MIB)
    } else {
        DEFAULT_MEMORY_MIB
    };
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let cpus = (cpus.ceil() as u32).clamp(1, host_cpus.max(1));
    (memory, cpus)
}
