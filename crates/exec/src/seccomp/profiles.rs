//! Profiles as OCI `LinuxSeccomp` values: Vessel's default (Docker's spirit, widened by
//! the capabilities an app keeps), and appc's retain-set and remove-set isolators, either
//! as the operator's profile or narrowing the default (what an image may ask for itself).

use std::collections::BTreeSet;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::tables::*;
use super::SeccompError;
use crate::caps::{Capability, CapabilitySet};

pub(super) fn rule(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(action)
        .build()
        .expect("a syscall rule with names and an action is complete")
}

fn rule_with_arg(
    name: &str,
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSyscall {
    let mut arg = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    if let Some(two) = value_two {
        arg = arg.value_two(two);
    }
    let mut syscall = rule(&[name], LinuxSeccompAction::ScmpActAllow);
    syscall.set_args(Some(vec![arg.build().expect("a complete argument")]));
    syscall
}

/// Vessel's default profile, in the spirit of Docker's: deny with EPERM
/// unless allowed; allow what ordinary programs use; allow more for the
/// capabilities in `retained` (normally the app's bounding set).
pub fn default_profile(retained: CapabilitySet) -> LinuxSeccomp {
    let allowed = flatten(
        &DEFAULT_ALLOWED_GROUPS
            .iter()
            .map(|(_, l)| *l)
            .collect::<Vec<_>>(),
    );
    let mut syscalls = vec![rule(&allowed, LinuxSeccompAction::ScmpActAllow)];

    let sys_admin = retained.contains(Capability::SYS_ADMIN);
    if sys_admin {
        syscalls.push(rule(&["clone", "clone3"], LinuxSeccompAction::ScmpActAllow));
    } else {
        // Plain fork and threads, but no new namespaces.
        syscalls.push(rule_with_arg(
            "clone",
            CLONE_FLAGS_ARG,
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            CLONE_NAMESPACE_FLAGS,
            Some(0),
        ));
        // clone3 passes its flags in memory seccomp cannot read. ENOSYS
        // makes libcs fall back to clone, whose flags are checked above.
        let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno);
        clone3.set_errno_ret(Some(libc::ENOSYS as u32));
        syscalls.push(clone3);
    }
    for &persona in PERSONALITIES {
        syscalls.push(rule_with_arg(
            "personality",
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            persona,
            None,
        ));
    }
    // AF_VSOCK reaches the hypervisor, outside the pod's network namespace.
    syscalls.push(rule_with_arg(
        "socket",
        0,
        LinuxSeccompOperator::ScmpCmpNe,
        libc::AF_VSOCK as u64,
        None,
    ));

    let granted: BTreeSet<&str> = capability_grants()
        .into_iter()
        .filter(|(cap, _)| retained.contains(*cap))
        .flat_map(|(_, names)| names.iter().copied())
        .filter(|name| !allowed.contains(name))
        .collect();
    if !granted.is_empty() {
        syscalls.push(rule(
            &granted.into_iter().collect::<Vec<_>>(),
            LinuxSeccompAction::ScmpActAllow,
        ));
    }

    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(native_architecture())
        .syscalls(syscalls)
        .build()
        .expect("the default profile is complete")
}

/// The two appc seccomp isolators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppcSeccompMode {
    /// `os/linux/seccomp-retain-set`: only the set (plus the calls needed to
    /// exec and exit) is allowed.
    RetainSet,
    /// `os/linux/seccomp-remove-set`: the set (plus
    /// `@vessel/default-blacklist`) is blocked.
    RemoveSet,
}

/// An appc seccomp isolator's set, resolved, and what a call it blocks gets: `errno` (a
/// name such as `ENOTSUP`), or the app killed when it is absent or empty.
fn appc_set<S: AsRef<str>>(
    set: &[S],
    errno: Option<&str>,
) -> Result<(SyscallSet, LinuxSeccompAction, Option<u32>), SeccompError> {
    if set.is_empty() {
        return Err(SeccompError::InvalidSet(
            "an appc seccomp set must not be empty".to_string(),
        ));
    }
    let names = resolve_names(set)?;
    Ok(match errno.filter(|e| !e.is_empty()) {
        Some(name) => (
            names,
            LinuxSeccompAction::ScmpActErrno,
            Some(errno_from_name(name)? as u32),
        ),
        None => (names, LinuxSeccompAction::ScmpActKillProcess, None),
    })
}

/// Builds the profile of an appc seccomp isolator. Blocked calls fail with
/// `errno` (an all-uppercase name such as `ENOTSUP`) or, when it is absent
/// or empty, kill the app with SIGSYS. Returns `None` for a retain-set
/// containing `@appc.io/all`, which opts out of filtering.
pub fn appc_profile<S: AsRef<str>>(
    mode: AppcSeccompMode,
    set: &[S],
    errno: Option<&str>,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    let (names, blocked_action, errno_ret) = appc_set(set, errno)?;
    let mut builder = LinuxSeccompBuilder::default().architectures(host_architectures());
    let listed: Vec<String>;
    let action;
    match mode {
        AppcSeccompMode::RetainSet => {
            if names.all {
                return Ok(None);
            }
            builder = builder.default_action(blocked_action);
            if let Some(errno) = errno_ret {
                builder = builder.default_errno_ret(errno);
            }
            listed = names
                .syscalls
                .into_iter()
                .chain(LIFECYCLE.iter().map(|s| s.to_string()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            action = LinuxSeccompAction::ScmpActAllow;
        }
        AppcSeccompMode::RemoveSet => {
            if names.all {
                return Err(SeccompError::InvalidSet(
                    "@appc.io/all cannot be removed".to_string(),
                ));
            }
            let empty_named = set.iter().any(|s| s.as_ref() == "@appc.io/empty");
            let mut blocked: BTreeSet<String> = if empty_named {
                // The spec: @appc.io/empty masks every other value.
                BTreeSet::new()
            } else {
                names.syscalls
            };
            blocked.extend(
                flatten(VESSEL_DEFAULT_BLACKLIST)
                    .into_iter()
                    .map(String::from),
            );
            builder = builder.default_action(LinuxSeccompAction::ScmpActAllow);
            listed = blocked.into_iter().collect();
            action = blocked_action;
        }
    }
    let mut syscall = LinuxSyscallBuilder::default().names(listed).action(action);
    if let (AppcSeccompMode::RemoveSet, Some(errno)) = (mode, errno_ret) {
        syscall = syscall.errno_ret(errno);
    }
    let syscall = syscall.build().expect("a complete syscall rule");
    Ok(Some(
        builder
            .syscalls(vec![syscall])
            .build()
            .expect("a complete appc profile"),
    ))
}

/// A profile narrowed by an appc seccomp isolator (see [`narrow_profile`]).
#[derive(Clone, Debug)]
pub struct Narrowed {
    pub profile: LinuxSeccomp,
    /// What a retain-set asked to allow that the base profile does not: still blocked
    /// (`@appc.io/all` among them when it was named).
    pub not_granted: Vec<String>,
}

/// Narrows `base` (the default profile) by an appc seccomp isolator, never allowing a call
/// `base` blocks: what an image may ask for itself, where [`appc_profile`] (which replaces
/// the default) is for the operator.
/// - retain-set: of the calls `base` allows (with its conditions), only those of the set
///   and those needed to exec and exit stay allowed; `@appc.io/all` keeps `base` whole.
/// - remove-set: the set, plus `@vessel/default-blacklist`, is blocked as well.
///
/// Calls the isolator blocks fail with `errno` or, when it is absent or empty, kill the
/// app (for a retain-set, so do the calls `base` blocks).
pub fn narrow_profile<S: AsRef<str>>(
    base: &LinuxSeccomp,
    mode: AppcSeccompMode,
    set: &[S],
    errno: Option<&str>,
) -> Result<Narrowed, SeccompError> {
    let (names, blocked_action, errno_ret) = appc_set(set, errno)?;
    let allows = |r: &LinuxSyscall| {
        matches!(
            r.action(),
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let rules = base.syscalls().clone().unwrap_or_default();
    let mut profile = base.clone();
    match mode {
        AppcSeccompMode::RetainSet => {
            if names.all {
                return Ok(Narrowed {
                    profile,
                    not_granted: vec!["@appc.io/all".to_string()],
                });
            }
            let granted: BTreeSet<&str> = rules
                .iter()
                .filter(|r| allows(r))
                .flat_map(|r| r.names().iter().map(String::as_str))
                .collect();
            let not_granted = names
                .syscalls
                .iter()
                .filter(|n| !granted.contains(n.as_str()))
                .cloned()
                .collect();
            let keep: BTreeSet<&str> = names
                .syscalls
                .iter()
                .map(String::as_str)
                .chain(LIFECYCLE.iter().copied())
                .collect();
            let narrowed = rules
                .into_iter()
                .filter_map(|mut r| {
                    if allows(&r) {
                        let kept: Vec<String> = r
                            .names()
                            .iter()
                            .filter(|n| keep.contains(n.as_str()))
                            .cloned()
                            .collect();
                        if kept.is_empty() {
                            return None;
                        }
                        r.set_names(kept);
                    }
                    Some(r)
                })
                .collect();
            profile.set_syscalls(Some(narrowed));
            profile.set_default_action(blocked_action);
            profile.set_default_errno_ret(errno_ret);
            Ok(Narrowed {
                profile,
                not_granted,
            })
        }
        AppcSeccompMode::RemoveSet => {
            if names.all {
                return Err(SeccompError::InvalidSet(
                    "@appc.io/all cannot be removed".to_string(),
                ));
            }
            let mut blocked: BTreeSet<String> =
                if set.iter().any(|s| s.as_ref() == "@appc.io/empty") {
                    BTreeSet::new()
                } else {
                    names.syscalls
                };
            blocked.extend(
                flatten(VESSEL_DEFAULT_BLACKLIST)
                    .into_iter()
                    .map(String::from),
            );
            // The blocked calls leave every rule of the base (one rule per call), then get
            // one of their own.
            let mut narrowed: Vec<LinuxSyscall> = rules
                .into_iter()
                .filter_map(|mut r| {
                    let kept: Vec<String> = r
                        .names()
                        .iter()
                        .filter(|n| !blocked.contains(n.as_str()))
                        .cloned()
                        .collect();
                    if kept.is_empty() {
                        return None;
                    }
                    r.set_names(kept);
                    Some(r)
                })
                .collect();
            let mut rule = LinuxSyscallBuilder::default()
                .names(blocked.into_iter().collect::<Vec<_>>())
                .action(blocked_action);
            if let Some(errno) = errno_ret {
                rule = rule.errno_ret(errno);
            }
            narrowed.push(rule.build().expect("a complete syscall rule"));
            profile.set_syscalls(Some(narrowed));
            Ok(Narrowed {
                profile,
                not_granted: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::compile;
    use crate::seccomp::program::MAX_INSTRUCTIONS;

    fn allowed_unconditionally(profile: &LinuxSeccomp) -> BTreeSet<String> {
        profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
            .flat_map(|r| r.names().iter().cloned())
            .collect()
    }

    fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn default_profile_without_extra_capabilities() {
        let profile = default_profile(CapabilitySet::docker_default());
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(profile.default_errno_ret(), Some(libc::EPERM as u32));
        let allowed = allowed_unconditionally(&profile);
        for name in ["read", "openat", "getpid", "futex", "chroot", "ptrace"] {
            assert!(allowed.contains(name), "{name}");
        }
        for name in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "kexec_load",
            "reboot",
            "clone",
            "bpf",
        ] {
            assert!(!allowed.contains(name), "{name}");
        }
        let clone = rules_for(&profile, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(arg.value(), 0x7e02_0000);
        assert_eq!(arg.value_two(), Some(0));
        let clone3 = rules_for(&profile, "clone3");
        assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
        assert_eq!(
            rules_for(&profile, "personality").len(),
            PERSONALITIES.len()
        );
        let socket = rules_for(&profile, "socket")[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (socket.op(), socket.value()),
            (LinuxSeccompOperator::ScmpCmpNe, 40)
        );
    }

    #[test]
    fn retained_capabilities_widen_the_default_profile() {
        let caps =
            CapabilitySet::parse(["SYS_ADMIN", "SYS_TIME", "SYS_MODULE", "SYS_PTRACE"]).unwrap();
        let profile = default_profile(caps);
        let allowed = allowed_unconditionally(&profile);
        for name in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "clock_settime",
            "init_module",
            "userfaultfd",
        ] {
            assert!(allowed.contains(name), "{name}");
        }
        // Never, whatever the capabilities.
        for name in ["keyctl", "kexec_load", "io_uring_setup", "chroot"] {
            assert!(!allowed.contains(name), "{name}");
        }
        assert!(rules_for(&profile, "clone")
            .iter()
            .all(|r| r.args().is_none()));
        let everything = allowed_unconditionally(&default_profile(CapabilitySet::all()));
        for name in ALWAYS_DENIED.iter().flat_map(|l| l.iter()) {
            assert!(!everything.contains(*name), "{name}");
        }
    }

    #[test]
    fn appc_isolators() {
        assert_eq!(
            appc_profile(AppcSeccompMode::RetainSet, &["@appc.io/all", "read"], None).unwrap(),
            None
        );
        let retain = appc_profile(
            AppcSeccompMode::RetainSet,
            &["read", "write"],
            Some("EACCES"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(retain.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(retain.default_errno_ret(), Some(libc::EACCES as u32));
        let names = retain.syscalls().as_ref().unwrap()[0].names();
        assert!(names.contains(&"execve".to_string()) && names.contains(&"read".to_string()));

        let remove = appc_profile(AppcSeccompMode::RemoveSet, &["mkdir"], None)
            .unwrap()
            .unwrap();
        assert_eq!(remove.default_action(), LinuxSeccompAction::ScmpActAllow);
        let rule = &remove.syscalls().as_ref().unwrap()[0];
        assert_eq!(rule.action(), LinuxSeccompAction::ScmpActKillProcess);
        assert!(rule.names().contains(&"mkdir".to_string()));
        assert!(rule.names().contains(&"kexec_load".to_string()));

        let only_default = appc_profile(
            AppcSeccompMode::RemoveSet,
            &["@appc.io/empty", "mkdir"],
            Some("ENOTSUP"),
        )
        .unwrap()
        .unwrap();
        let rule = &only_default.syscalls().as_ref().unwrap()[0];
        assert!(!rule.names().contains(&"mkdir".to_string()));
        assert_eq!(rule.errno_ret(), Some(libc::EOPNOTSUPP as u32));

        let empty: &[&str] = &[];
        assert!(appc_profile(AppcSeccompMode::RemoveSet, empty, None).is_err());
        assert!(appc_profile(AppcSeccompMode::RemoveSet, &["@appc.io/all"], None).is_err());
        assert!(appc_profile(AppcSeccompMode::RemoveSet, &["mkdri"], None).is_err());
        assert!(appc_profile(AppcSeccompMode::RemoveSet, &["mkdir"], Some("ENOPE")).is_err());
    }

    #[test]
    fn narrowing_never_allows_what_the_base_denies() {
        let base = default_profile(CapabilitySet::docker_default());
        let all =
            narrow_profile(&base, AppcSeccompMode::RetainSet, &["@appc.io/all"], None).unwrap();
        assert_eq!(all.profile, base);
        assert_eq!(all.not_granted, ["@appc.io/all"]);

        let retain = narrow_profile(
            &base,
            AppcSeccompMode::RetainSet,
            &["read", "unshare", "keyctl", "clone"],
            Some("EACCES"),
        )
        .unwrap();
        assert_eq!(retain.not_granted, ["keyctl", "unshare"]);
        let p = &retain.profile;
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(libc::EACCES as u32));
        let allowed = allowed_unconditionally(p);
        assert!(allowed.contains("read") && allowed.contains("execve"));
        for name in ["write", "unshare", "keyctl", "mount"] {
            assert!(!allowed.contains(name), "{name}");
        }
        // clone keeps its condition: no new namespaces.
        let clone = rules_for(p, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_some());
        compile(p).unwrap();

        let remove = narrow_profile(&base, AppcSeccompMode::RemoveSet, &["mkdir"], None)
            .unwrap()
            .profile;
        assert_eq!(remove.default_action(), base.default_action());
        let allowed = allowed_unconditionally(&remove);
        assert!(!allowed.contains("mkdir") && allowed.contains("read"));
        assert!(!allowed.contains("unshare"));
        let rule = remove.syscalls().as_ref().unwrap().last().unwrap();
        assert_eq!(rule.action(), LinuxSeccompAction::ScmpActKillProcess);
        assert!(rule.names().contains(&"mkdir".to_string()));
        compile(&remove).unwrap();

        let empty: &[&str] = &[];
        assert!(narrow_profile(&base, AppcSeccompMode::RetainSet, empty, None).is_err());
        assert!(
            narrow_profile(&base, AppcSeccompMode::RemoveSet, &["@appc.io/all"], None).is_err()
        );
        assert!(narrow_profile(&base, AppcSeccompMode::RetainSet, &["mkdri"], None).is_err());
    }

    #[test]
    fn the_default_covers_the_native_abi_and_an_operators_profile_the_compat_ones_too() {
        let default = default_profile(CapabilitySet::docker_default());
        assert_eq!(
            default.architectures().as_deref(),
            Some(&native_architecture()[..])
        );
        let operator = appc_profile(AppcSeccompMode::RemoveSet, &["mkdir"], None)
            .unwrap()
            .unwrap();
        assert_eq!(
            operator.architectures().as_deref(),
            Some(&host_architectures()[..])
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host_architectures().len(), 3);
            // One ABI: a third of the instructions to check and compile at each start.
            let one = compile(&default).unwrap().to_bytes().len();
            let mut all = default.clone();
            all.set_architectures(Some(host_architectures()));
            let three = compile(&all).unwrap().to_bytes().len();
            assert!(one * 2 < three, "{one} vs {three} bytes");
        }
    }

    /// How many instructions `program` runs for syscall `nr` of architecture `arch`
    /// before it returns or reads anything but the number and the architecture: what the
    /// kernel runs per syscall number to fill its allow-cache at load.
    fn constant_path(program: &crate::seccomp::SeccompProgram, arch: u32, nr: u32) -> usize {
        let code = program.instructions();
        let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
        while let Some(i) = code.get(pc) {
            steps += 1;
            pc += 1;
            match i.code {
                // BPF_LD|BPF_W|BPF_ABS of seccomp_data.nr, .arch; anything else depends
                // on the call's arguments or address.
                0x20 if i.k == 0 => a = nr,
                0x20 if i.k == 4 => a = arch,
                0x05 => pc += i.k as usize,
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let taken = match i.code {
                        0x15 => a == i.k,
                        0x25 => a > i.k,
                        0x35 => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
                _ => break,
            }
        }
        steps
    }

    #[test]
    fn the_default_filter_is_a_tree_not_a_list() {
        // The kernel runs a new filter for every syscall number of each architecture as
        // it loads it: as libseccomp's default linear list, the default profile cost
        // hundreds of steps a number (0.5 ms a start).
        let program = compile(&default_profile(CapabilitySet::docker_default())).unwrap();
        for (arch, name) in [(0xC000_003E_u32, "x86_64"), (0x4000_0003, "i386")] {
            let steps: Vec<usize> = (0..460)
                .map(|nr| constant_path(&program, arch, nr))
                .collect();
            let longest = steps.iter().max().unwrap();
            assert!(*longest <= 40, "{name}: {longest} steps (17 as a tree)");
        }
    }

    #[test]
    fn default_profile_compiles_for_every_capability_set() {
        for caps in [
            CapabilitySet::EMPTY,
            CapabilitySet::docker_default(),
            CapabilitySet::all(),
        ] {
            let program = compile(&default_profile(caps)).unwrap();
            assert!(program.instructions().len() > 100);
            assert!(program.instructions().len() <= MAX_INSTRUCTIONS);
            assert_eq!(program.flags(), 0);
        }
    }
}
