//! A test helper that runs as an app inside a pod (crates/vessel/tests/pod_security.rs): it
//! makes one system call through the 32-bit entry (`int 0x80`, i386's getpid) and prints
//! `compat getpid: N`. Under Vessel's default seccomp filter the call never reaches the
//! kernel's compat table: the process is killed with SIGSYS before it can print.

#[cfg(target_arch = "x86_64")]
fn compat_getpid() -> i64 {
    let mut ret: i64 = 20; // __NR_getpid on i386
                           // SAFETY: getpid takes no arguments and touches no memory.
    unsafe {
        std::arch::asm!("int 0x80", inout("rax") ret, options(nostack));
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
fn compat_getpid() -> i64 {
    -1
}

fn main() {
    println!("compat getpid: {}", compat_getpid());
}
