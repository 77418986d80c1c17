//! Compiling an OCI profile into classic BPF with libseccomp, before fork; the program
//! it yields is plain data (see `program.rs`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};

use super::program::{SeccompProgram, SockFilter, MAX_INSTRUCTIONS};
use super::tables::{host_architectures, resolve_syscall, Resolution};
use super::SeccompError;

fn scmp_arch(arch: Arch) -> Result<ScmpArch, SeccompError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::native(),
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    })
}

fn scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<ScmpAction, SeccompError> {
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno_ret.map_or(libc::EPERM, |e| e as i32))
        }
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno_ret.map_or(0, |e| e as u16)),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction(
                "SCMP_ACT_NOTIFY".to_string(),
            ))
        }
    })
}

fn lets_through(action: ScmpAction) -> bool {
    matches!(action, ScmpAction::Allow | ScmpAction::Log)
}

fn kernel_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32, SeccompError> {
    let mut bits = 0u32;
    for flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            other => return Err(SeccompError::UnsupportedFlag(other.to_string())),
        } as u32;
    }
    Ok(bits)
}

fn libseccomp_error(
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |source| SeccompError::Libseccomp { what, source }
}

fn conditions(rule: &LinuxSyscall) -> Result<Vec<(usize, ScmpArgCompare)>, SeccompError> {
    let args = rule.args().as_deref().unwrap_or_default();
    args.iter()
        .map(|arg| {
            if arg.index() > 5 {
                return Err(SeccompError::ArgumentIndex(arg.index()));
            }
            let op = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                // OCI puts the mask in `value` and the expected result in `valueTwo`.
                LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(arg.value()),
            };
            let datum = match arg.op() {
                LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
                _ => arg.value(),
            };
            Ok((
                arg.index(),
                ScmpArgCompare::new(arg.index() as u32, op, datum),
            ))
        })
        .collect()
}

/// Compiles `profile` into a BPF program with libseccomp. Run before fork.
pub fn compile(profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let default = scmp_action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(libseccomp_error("create a filter"))?;
    ctx.set_act_badarch(ScmpAction::KillProcess)
        .map_err(libseccomp_error("set the bad-architecture action"))?;
    // A binary tree of syscall numbers, not libseccomp's default linear list. Loading a
    // filter, the kernel runs it for every syscall number of every architecture to fill
    // its allow-cache, so the load costs the length of the paths, not the size: the
    // default profile loads in 0.18 ms as a tree (408 instructions), 0.5 ms as a list
    // (330), on the critical path of every app's start (bench/results/run.md).
    ctx.set_ctl_optimize(2)
        .map_err(libseccomp_error("ask for a binary tree"))?;
    let architectures = match profile.architectures().as_deref() {
        Some(list) if !list.is_empty() => list.to_vec(),
        _ => host_architectures(),
    };
    for arch in architectures {
        let scmp = scmp_arch(arch)?;
        ctx.add_arch(scmp)
            .map_err(|_| SeccompError::UnsupportedArch(arch.to_string()))?;
    }

    let mut skipped = Vec::new();
    for rule in profile.syscalls().as_deref().unwrap_or_default() {
        let action = scmp_action(rule.action(), rule.errno_ret())?;
        let conditions = conditions(rule)?;
        for name in rule.names() {
            let syscall = match resolve_syscall(name)? {
                Resolution::Known(syscall) => syscall,
                Resolution::TooNew if lets_through(action) || !lets_through(default) => {
                    skipped.push(name.clone());
                    continue;
                }
                Resolution::TooNew => return Err(SeccompError::SyscallTooNew(name.clone())),
            };
            if action == default {
                // libseccomp refuses rules that change nothing.
                continue;
            }
            add_rule(&mut ctx, action, syscall, &conditions)
                .map_err(libseccomp_error(format!("add a rule for {name}")))?;
        }
    }
    let instructions = export(&ctx)?;
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong(instructions.len()));
    }
    skipped.sort();
    skipped.dedup();
    Ok(SeccompProgram {
        instructions,
        flags: kernel_flags(profile.flags().as_deref().unwrap_or_default())?,
        skipped,
    })
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    action: ScmpAction,
    syscall: ScmpSyscall,
    conditions: &[(usize, ScmpArgCompare)],
) -> Result<(), libseccomp::error::SeccompError> {
    let mut indices: Vec<usize> = conditions.iter().map(|(i, _)| *i).collect();
    indices.sort_unstable();
    indices.dedup();
    let compares: Vec<ScmpArgCompare> = conditions.iter().map(|(_, c)| *c).collect();
    if compares.is_empty() {
        ctx.add_rule(action, syscall)?;
    } else if indices.len() == compares.len() {
        ctx.add_rule_conditional(action, syscall, &compares)?;
    } else {
        // Several conditions on one argument cannot all hold: one rule each.
        for compare in &compares {
            ctx.add_rule_conditional(action, syscall, std::slice::from_ref(compare))?;
        }
    }
    Ok(())
}

/// Exports the filter through a memfd (libseccomp 2.5 has no in-memory export).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, SeccompError> {
    // SAFETY: memfd_create with a static name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"vessel-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SeccompError::Export(std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a new descriptor we own.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(libseccomp_error("export the filter"))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(SeccompError::Export)?;
    if bytes.len() % 8 != 0 {
        return Err(SeccompError::Export(std::io::Error::other(
            "truncated BPF program",
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::profiles::rule;
    use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSeccompBuilder};

    fn profile(
        default: LinuxSeccompAction,
        names: &[&str],
        action: LinuxSeccompAction,
    ) -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(default)
            .syscalls(vec![rule(names, action)])
            .build()
            .unwrap()
    }

    #[test]
    fn compile_rejects_typos_and_unsupported_actions() {
        let typo = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid", "mkdri"],
            LinuxSeccompAction::ScmpActErrno,
        );
        assert_eq!(
            compile(&typo).unwrap_err().to_string(),
            "unknown syscall \"mkdri\""
        );
        let notify = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid"],
            LinuxSeccompAction::ScmpActNotify,
        );
        assert!(matches!(
            compile(&notify),
            Err(SeccompError::UnsupportedAction(_))
        ));
        let mut flagged = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid"],
            LinuxSeccompAction::ScmpActErrno,
        );
        flagged.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
        assert_eq!(
            compile(&flagged).unwrap().flags(),
            libc::SECCOMP_FILTER_FLAG_LOG as u32
        );
        // A rule repeating the default action is dropped, not an error.
        let same = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["getpid"],
            LinuxSeccompAction::ScmpActAllow,
        );
        compile(&same).unwrap();
    }

    #[test]
    fn too_new_syscalls_are_skipped_only_when_safe() {
        let allow_new = profile(
            LinuxSeccompAction::ScmpActErrno,
            &["read", "mseal"],
            LinuxSeccompAction::ScmpActAllow,
        );
        assert_eq!(compile(&allow_new).unwrap().skipped(), ["mseal"]);
        let deny_new = profile(
            LinuxSeccompAction::ScmpActAllow,
            &["mseal"],
            LinuxSeccompAction::ScmpActErrno,
        );
        assert_eq!(
            compile(&deny_new).unwrap_err().to_string(),
            "syscall \"mseal\" is too new for the installed libseccomp, so it cannot be denied"
        );
        let kill_new_over_errno = profile(
            LinuxSeccompAction::ScmpActErrno,
            &["mseal"],
            LinuxSeccompAction::ScmpActKillProcess,
        );
        assert_eq!(compile(&kill_new_over_errno).unwrap().skipped(), ["mseal"]);
    }

    #[test]
    fn same_argument_conditions_become_separate_rules() {
        let mut personality = rule(&["personality"], LinuxSeccompAction::ScmpActAllow);
        let eq = |v: u64| {
            LinuxSeccompArgBuilder::default()
                .index(0usize)
                .op(LinuxSeccompOperator::ScmpCmpEq)
                .value(v)
                .build()
                .unwrap()
        };
        personality.set_args(Some(vec![eq(0), eq(8)]));
        // Everything else the child below calls after loading the filter.
        let rest = rule(&["exit_group", "exit"], LinuxSeccompAction::ScmpActAllow);
        let profile = LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .syscalls(vec![personality, rest])
            .build()
            .unwrap();
        let program = compile(&profile).unwrap();
        // Two conditions on one argument can only mean "either": each must let its own
        // value through (one rule ANDing them would let none), and no other value passes.
        // Loaded in a child, which reports in its exit code which calls passed.
        // SAFETY: the child makes raw syscalls only, then _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if program.load().is_err() {
                unsafe { libc::_exit(100) };
            }
            let passes = |persona: libc::c_ulong| unsafe { libc::personality(persona) } >= 0;
            let code = i32::from(passes(0)) | i32::from(passes(8)) << 1 | i32::from(passes(3)) << 2;
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: our own child, a valid out pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0b011,
            "personality(0), personality(8) pass and personality(3) does not"
        );
    }
}
