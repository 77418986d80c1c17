//! The kernel's per-process attributes a config asks for: `process.ioPriority`
//! (ioprio_set), `process.scheduler` (sched_setattr) and `linux.personality`. Applied by
//! the process itself just before it becomes the container's process (create and exec
//! alike), so its children inherit them.

use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process,
    Scheduler, Spec,
};

use super::plan::Failure;

/// The kernel's `struct sched_attr`, first version (48 bytes): enough for every field the
/// OCI config carries; utilisation clamps (the later fields) are not in it.
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

fn policy_number(p: LinuxSchedulerPolicy) -> u32 {
    use LinuxSchedulerPolicy::*;
    match p {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    }
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    use LinuxSchedulerFlag::*;
    match f {
        SchedResetOnFork => 0x01,
        SchedFlagReclaim => 0x02,
        SchedFlagDLOverrun => 0x04,
        SchedFlagKeepPolicy => 0x08,
        SchedFlagKeepParams => 0x10,
        SchedFlagUtilClampMin => 0x20,
        SchedFlagUtilClampMax => 0x40,
    }
}

/// The attributes for `sched_setattr`, with the checks runc makes before asking the
/// kernel (which would only say EINVAL): which fields each policy takes.
pub fn sched_attr(s: &Scheduler) -> Result<SchedAttr, String> {
    use LinuxSchedulerPolicy::*;
    let policy = *s.policy();
    let nice = s.nice().unwrap_or(0);
    let priority = s.priority().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(format!("nice {nice} is outside -20..19"));
    }
    if nice != 0 && !matches!(policy, SchedOther | SchedBatch) {
        return Err(format!(
            "nice is for SCHED_OTHER and SCHED_BATCH, not {policy:?}"
        ));
    }
    match policy {
        SchedFifo | SchedRr if !(1..=99).contains(&priority) => {
            return Err(format!(
                "{policy:?} needs a priority in 1..99 (got {priority})"
            ))
        }
        SchedFifo | SchedRr => {}
        _ if priority != 0 => {
            return Err(format!(
                "priority is for SCHED_FIFO and SCHED_RR, not {policy:?}"
            ))
        }
        _ => {}
    }
    let deadline_fields = [s.runtime(), s.deadline(), s.period()];
    if policy == SchedDeadline {
        if s.runtime().unwrap_or(0) == 0 || s.deadline().unwrap_or(0) == 0 {
            return Err("SCHED_DEADLINE needs a runtime and a deadline".into());
        }
    } else if deadline_fields.iter().any(|f| f.is_some()) {
        return Err(format!(
            "runtime, deadline and period are for SCHED_DEADLINE, not {policy:?}"
        ));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy_number(policy),
        flags: s
            .flags()
            .iter()
            .flatten()
            .fold(0, |bits, f| bits | flag_bit(*f)),
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// Applies the three attributes to the calling process.
pub fn apply(process: &Process, spec: &Spec) -> Result<(), Failure> {
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        // SAFETY: ioprio_set for this process (who 0: the caller).
        if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (class << 13) | io.priority()) } != 0
        {
            return Err(Failure::io(
                "process.ioPriority",
                std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(s) = process.scheduler() {
        let attr = sched_attr(s).map_err(|m| Failure::msg("process.scheduler", m))?;
        // SAFETY: sched_setattr for this thread (pid 0) with a filled attribute struct
        // whose size field is its own size.
        if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
            return Err(Failure::io(
                format!("process.scheduler {:?}", s.policy()),
                std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        let persona = match p.domain() {
            LinuxPersonalityDomain::PerLinux => 0,
            LinuxPersonalityDomain::PerLinux32 => 8,
        };
        // SAFETY: personality(2) with a plain value.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(Failure::io(
                "linux.personality",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(json: &str) -> Scheduler {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn policies_take_their_own_fields() {
        let a = sched_attr(&scheduler(
            r#"{"policy":"SCHED_FIFO","priority":10,"flags":["SCHED_RESET_ON_FORK"]}"#,
        ))
        .unwrap();
        assert_eq!((a.size, a.policy, a.priority, a.flags), (48, 1, 10, 1));
        let a = sched_attr(&scheduler(r#"{"policy":"SCHED_BATCH","nice":5}"#)).unwrap();
        assert_eq!((a.policy, a.nice), (3, 5));
        let a = sched_attr(&scheduler(
            r#"{"policy":"SCHED_DEADLINE","runtime":10000000,"deadline":20000000,"period":20000000}"#,
        ))
        .unwrap();
        assert_eq!(
            (a.policy, a.runtime, a.deadline, a.period),
            (6, 10_000_000, 20_000_000, 20_000_000)
        );
    }

    #[test]
    fn fields_of_another_policy_are_refused_naming_them() {
        for (json, says) in [
            (r#"{"policy":"SCHED_FIFO"}"#, "priority in 1..99"),
            (
                r#"{"policy":"SCHED_RR","priority":100}"#,
                "priority in 1..99",
            ),
            (
                r#"{"policy":"SCHED_OTHER","priority":3}"#,
                "priority is for",
            ),
            (
                r#"{"policy":"SCHED_FIFO","priority":3,"nice":2}"#,
                "nice is for",
            ),
            (r#"{"policy":"SCHED_OTHER","nice":40}"#, "outside -20..19"),
            (
                r#"{"policy":"SCHED_DEADLINE","runtime":5}"#,
                "needs a runtime and a deadline",
            ),
            (
                r#"{"policy":"SCHED_IDLE","period":5}"#,
                "are for SCHED_DEADLINE",
            ),
        ] {
            let e = sched_attr(&scheduler(json)).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }
}
