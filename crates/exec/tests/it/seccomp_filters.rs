//! Root integration tests: load compiled filters in forked children and
//! watch what the kernel then lets through.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output};

use exec::caps::{set_no_new_privs, CapabilitySet};
use exec::seccomp::{appc_profile, compile, default_profile, AppcSeccompMode, SeccompProgram};

use crate::require_root;

/// Raw syscall returning the errno on failure.
fn sys(result: libc::c_long) -> Result<libc::c_long, i32> {
    if result < 0 {
        // SAFETY: reads this thread's errno.
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(result)
    }
}

/// Runs 32-bit syscall `nr` through the i386 entry point (`int 0x80`),
/// returning the raw result (negative errno on failure).
#[cfg(target_arch = "x86_64")]
fn int80(nr: i32, arg1: i32) -> i32 {
    let ret: i32;
    // SAFETY: ebx is swapped in and restored around the trap; the kernel
    // zeroes r8-r11 on this path, so they are declared clobbered.
    unsafe {
        std::arch::asm!(
            "xchg {arg1:e}, ebx",
            "int 0x80",
            "xchg {arg1:e}, ebx",
            arg1 = inout(reg) arg1 => _,
            inlateout("eax") nr => ret,
            in("ecx") 0,
            in("edx") 0,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret
}

/// The checks the forked child runs under the default filter, in order.
const CHECKS: &[&str] = &[
    "set no_new_privs",
    "load the filter",
    "unshare(CLONE_NEWUTS) fails with EPERM",
    "mount fails with EPERM",
    "keyctl fails with EPERM",
    "kexec_load fails with EPERM",
    "clone(CLONE_NEWNS) fails with EPERM",
    "clone3 fails with ENOSYS",
    "getpid works",
    "file write and read back work",
    "plain clone (fork) works",
    "socket(AF_VSOCK) fails with EPERM",
    "socket(AF_UNIX) works",
    "personality query works, PER_BSD fails with EPERM",
    "an i386 call (getpid through int 0x80) kills the caller with SIGSYS",
];

/// Runs the checks; returns 0 or the 1-based index of the first failure.
/// Only raw syscalls: this runs in a forked child of a threaded process.
fn run_checks(program: &SeccompProgram, file: &CString) -> i32 {
    let eperm = |r: libc::c_long| sys(r) == Err(libc::EPERM);
    // SAFETY (all blocks below): raw syscalls with valid or null pointers.
    let results: [&dyn Fn() -> bool; 15] = [
        &|| set_no_new_privs().is_ok(),
        &|| program.load().is_ok(),
        &|| eperm(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) }),
        &|| {
            eperm(unsafe {
                libc::syscall(
                    libc::SYS_mount,
                    c"none".as_ptr(),
                    c"/mnt".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    0,
                )
            })
        },
        &|| eperm(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) }),
        &|| eperm(unsafe { libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0) }),
        &|| {
            let r = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    libc::CLONE_NEWNS | libc::SIGCHLD,
                    0,
                    0,
                    0,
                    0,
                )
            };
            if r == 0 {
                unsafe { libc::_exit(0) };
            }
            eperm(r)
        },
        &|| sys(unsafe { libc::syscall(libc::SYS_clone3, 0, 0) }) == Err(libc::ENOSYS),
        &|| unsafe { libc::syscall(libc::SYS_getpid) } > 0,
        &|| unsafe {
            let fd = libc::open(
                file.as_ptr(),
                libc::O_CREAT | libc::O_RDWR | libc::O_TRUNC,
                0o600,
            );
            let mut buf = [0u8; 5];
            fd >= 0
                && libc::write(fd, b"hello".as_ptr().cast(), 5) == 5
                && libc::lseek(fd, 0, libc::SEEK_SET) == 0
                && libc::read(fd, buf.as_mut_ptr().cast(), 5) == 5
                && libc::close(fd) == 0
                && &buf == b"hello"
        },
        &|| unsafe {
            let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0);
            if pid == 0 {
                libc::_exit(7);
            }
            let mut status = 0;
            pid > 0
                && libc::waitpid(pid as i32, &mut status, 0) == pid as i32
                && libc::WEXITSTATUS(status) == 7
        },
        &|| eperm(unsafe { libc::syscall(libc::SYS_socket, libc::AF_VSOCK, libc::SOCK_STREAM, 0) }),
        &|| unsafe {
            let fd = libc::syscall(libc::SYS_socket, libc::AF_UNIX, libc::SOCK_STREAM, 0);
            fd >= 0 && libc::close(fd as i32) == 0
        },
        &|| unsafe {
            libc::syscall(libc::SYS_personality, 0xffff_ffffu64) >= 0
                && eperm(libc::syscall(libc::SYS_personality, 6))
        },
        &|| {
            #[cfg(target_arch = "x86_64")]
            {
                // The default filter covers the native ABI only: any compat entry is fatal.
                const I386_GETPID: i32 = 20;
                let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
                if pid == 0 {
                    int80(I386_GETPID, 0);
                    unsafe { libc::_exit(0) };
                }
                let mut status = 0;
                pid > 0
                    && unsafe { libc::waitpid(pid as i32, &mut status, 0) } == pid as i32
                    && libc::WIFSIGNALED(status)
                    && libc::WTERMSIG(status) == libc::SIGSYS
            }
            #[cfg(not(target_arch = "x86_64"))]
            true
        },
    ];
    for (i, check) in results.iter().enumerate() {
        if !check() {
            return i as i32 + 1;
        }
    }
    0
}

#[test]
fn default_filter_denies_admin_calls_and_allows_ordinary_ones() {
    require_root();
    let compiled = compile(&default_profile(CapabilitySet::docker_default())).unwrap();
    // Load the copy that went through the on-disk cache format.
    let program = SeccompProgram::from_bytes(&compiled.to_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = CString::new(dir.path().join("data").as_os_str().as_bytes()).unwrap();

    // SAFETY: the child runs only raw syscalls and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = run_checks(&program, &file);
        // SAFETY: leaving the forked child without running Rust cleanup.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    let failed = libc::WEXITSTATUS(status);
    assert_eq!(failed, 0, "check failed: {}", CHECKS[failed as usize - 1]);
}

/// Runs `argv` with the filter of `program` loaded just before exec.
fn run_filtered(program: SeccompProgram, argv: &[&str]) -> Output {
    let mut command = Command::new(argv[0]);
    command.args(&argv[1..]).current_dir("/");
    // SAFETY: set_no_new_privs and load are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            set_no_new_privs()?;
            program.load()?;
            Ok(())
        });
    }
    command.output().unwrap()
}

#[test]
fn remove_set_with_errno_returns_that_errno() {
    require_root();
    let profile = appc_profile(
        AppcSeccompMode::RemoveSet,
        &["mkdir", "mkdirat"],
        Some("ENOTSUP"),
    )
    .unwrap()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("denied");
    let output = run_filtered(
        compile(&profile).unwrap(),
        &["/bin/mkdir", target.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("Operation not supported"), "{stderr}");
    assert!(!target.exists());
    // Everything else still works.
    let output = run_filtered(compile(&profile).unwrap(), &["/bin/ls", "/"]);
    assert!(output.status.success());
}

#[test]
fn remove_set_without_errno_kills_with_sigsys() {
    require_root();
    let profile = appc_profile(AppcSeccompMode::RemoveSet, &["uname"], None)
        .unwrap()
        .unwrap();
    let output = run_filtered(compile(&profile).unwrap(), &["/bin/uname"]);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSYS),
        "{:?}",
        output.status
    );
}

#[test]
fn retain_set_allows_only_what_it_lists() {
    require_root();
    let whitelist = appc_profile(
        AppcSeccompMode::RetainSet,
        &["@docker/default-whitelist"],
        None,
    )
    .unwrap()
    .unwrap();
    let output = run_filtered(compile(&whitelist).unwrap(), &["/bin/sh", "-c", "echo ok"]);
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ok\n");

    // Exec is allowed, but the dynamic loader's first mmap is not.
    let tiny = appc_profile(AppcSeccompMode::RetainSet, &["write"], None)
        .unwrap()
        .unwrap();
    let output = run_filtered(compile(&tiny).unwrap(), &["/bin/true"]);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSYS),
        "{:?}",
        output.status
    );

    // With an errno, calls outside the set fail instead of killing.
    let whitelist_errno = appc_profile(
        AppcSeccompMode::RetainSet,
        &["@docker/default-whitelist"],
        Some("EPERM"),
    )
    .unwrap()
    .unwrap();
    let output = run_filtered(
        compile(&whitelist_errno).unwrap(),
        &["/usr/bin/unshare", "--uts", "/bin/true"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{:?}", output.status);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
}
