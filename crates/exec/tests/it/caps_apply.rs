//! Root integration tests: apply capability sets in a forked child just
//! before exec and read the result from the exec'd program's
//! /proc/self/status.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::Command;

use exec::caps::{set_no_new_privs, CapSets, CapabilitySet, Credentials};

use crate::require_root;

/// Runs `sh -c 'grep ... /proc/self/status; id -u'` with `sets` applied
/// (and `user` switched to) after fork; returns the status fields and uid.
fn status_after_apply(
    sets: CapSets,
    user: Option<Credentials>,
    no_new_privs: bool,
) -> (HashMap<String, String>, String) {
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; id -u"])
        .current_dir("/");
    // SAFETY: apply and set_no_new_privs are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if no_new_privs {
                set_no_new_privs()?;
            }
            sets.apply(user.as_ref())?;
            Ok(())
        });
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut fields = HashMap::new();
    let mut uid = String::new();
    for line in text.lines() {
        match line.split_once(':') {
            Some((key, value)) => {
                fields.insert(key.to_string(), value.trim().to_string());
            }
            None => uid = line.to_string(),
        }
    }
    (fields, uid)
}

fn mask(set: CapabilitySet) -> String {
    format!("{:016x}", set.bits())
}

#[test]
fn root_keeps_exactly_the_reduced_set() {
    require_root();
    let set = CapabilitySet::parse(["CAP_CHOWN", "net_bind_service", "KILL"]).unwrap();
    let (status, uid) = status_after_apply(CapSets::retaining(set), None, false);
    assert_eq!(uid, "0");
    assert_eq!(status["CapBnd"], mask(set));
    assert_eq!(status["CapEff"], mask(set));
    assert_eq!(status["CapPrm"], mask(set));
    assert_eq!(status["CapInh"], mask(CapabilitySet::EMPTY));
    assert_eq!(status["CapAmb"], mask(CapabilitySet::EMPTY));
    assert_eq!(status["NoNewPrivs"], "0");
}

#[test]
fn docker_default_for_root_with_no_new_privs() {
    require_root();
    let set = CapabilitySet::docker_default();
    let (status, _) = status_after_apply(CapSets::retaining(set), None, true);
    assert_eq!(status["CapBnd"], "00000000a80425fb");
    assert_eq!(status["CapEff"], "00000000a80425fb");
    assert_eq!(status["NoNewPrivs"], "1");
}

#[test]
fn non_root_user_keeps_ambient_capabilities() {
    require_root();
    let set = CapabilitySet::parse(["NET_BIND_SERVICE", "NET_RAW"]).unwrap();
    let nobody = Credentials {
        uid: 65534,
        gid: 65534,
        supplementary_groups: vec![65534],
        keep_groups: false,
    };
    let (status, uid) =
        status_after_apply(CapSets::retaining(set).with_ambient(), Some(nobody), true);
    assert_eq!(uid, "65534");
    assert_eq!(status["CapAmb"], mask(set));
    assert_eq!(status["CapInh"], mask(set));
    assert_eq!(status["CapPrm"], mask(set));
    assert_eq!(status["CapEff"], mask(set));
    assert_eq!(status["CapBnd"], mask(set));
}

#[test]
fn non_root_user_without_ambient_has_none() {
    require_root();
    let set = CapabilitySet::docker_default();
    let user = Credentials {
        uid: 1000,
        gid: 1000,
        supplementary_groups: vec![],
        keep_groups: false,
    };
    let (status, uid) = status_after_apply(CapSets::retaining(set), Some(user), false);
    assert_eq!(uid, "1000");
    assert_eq!(status["CapEff"], mask(CapabilitySet::EMPTY));
    assert_eq!(status["CapPrm"], mask(CapabilitySet::EMPTY));
    assert_eq!(status["CapBnd"], mask(set));
}

#[test]
fn everything_available_runs_on_a_host_missing_some() {
    require_root();
    // This host's own bounding set lacks CAP_SYS_RESOURCE; asking for every
    // capability must still work once restricted to what is available.
    let mut sets = CapSets::retaining(CapabilitySet::all());
    let available = exec::caps::available_capabilities();
    let removed = sets.restrict_to(available);
    assert_eq!(removed, CapabilitySet::all().difference(available));
    let (status, _) = status_after_apply(sets, None, false);
    assert_eq!(status["CapBnd"], mask(available));
}
