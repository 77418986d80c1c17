//! Rootless mode as the command line sees it: the defaults a user without root gets (XDG
//! directories, pod::layout::user_dirs), the user namespace entered before any command
//! touches the data directory (exec::rootless), and what `vessel info` reports.

use anyhow::{Context as _, Result};
use exec::rootless::Identity;

use crate::cli::Global;

/// The calling user, if not root.
pub fn identity() -> Option<Identity> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } != 0).then(Identity::current)
}

/// The user's XDG directories.
pub fn user_dirs(who: &Identity) -> Result<pod::layout::UserDirs> {
    pod::layout::user_dirs(|k| std::env::var_os(k), who.uid).context(
        "rootless mode needs $HOME (or $XDG_DATA_HOME and $XDG_CONFIG_HOME) to place its data and configuration",
    )
}

/// Rootless defaults: the user configuration directory, unless given.
pub fn apply_defaults(g: &mut Global, who: &Identity) -> Result<()> {
    if g.user_config.is_none() {
        g.user_config = Some(user_dirs(who)?.config);
    }
    Ok(())
}

/// Checks the data dir as the user, from the host's view, where owners are real (in the
/// user namespace, root's and other users' show as the overflow id).
pub fn check_dir(dir: &std::path::Path) -> Result<()> {
    store::datadir::prepare(dir)
        .with_context(|| format!("rootless: the data directory {}", dir.display()))?;
    Ok(())
}

/// Checks the data dir ([`check_dir`]), then enters the user's namespace. `note`: say
/// what a single-id mapping limits.
pub fn enter(dir: &std::path::Path, who: &Identity, note: bool) -> Result<()> {
    check_dir(dir)?;
    exec::rootless::enter(who).context("rootless: entering the user namespace")?;
    if note && !who.full_mapping() {
        crate::output::say!("note: {}", who.single_id_note());
    }
    Ok(())
}

/// What `vessel info` says: who runs, where things are, and what is enforced.
pub fn info(g: &Global, dir: &std::path::Path, who: Option<&Identity>) -> serde_json::Value {
    let runtime = who.and_then(|w| user_dirs(w).ok());
    let (cgroups, cgroup_reason, networks, devices) = match who {
        None => (
            true,
            None,
            vec![
                "none",
                "host",
                "CNI networks (default, default-restricted, net.d)",
            ],
            "a tmpfs /dev with the standard device nodes",
        ),
        Some(_) => (
            cgroup_reason().is_none(),
            cgroup_reason(),
            if net::slirp::binary().is_some() {
                vec![
                    "slirp4netns (the default: user-mode, --port forwarded)",
                    "none",
                    "host",
                ]
            } else {
                vec!["none (the default: slirp4netns is not installed)", "host"]
            },
            "the standard device nodes bound from the host (no mknod in a user namespace)",
        ),
    };
    serde_json::json!({
        "rootless": who.is_some(),
        "uid": who.map(|w| w.uid).unwrap_or(0),
        "user": who.and_then(|w| w.user.clone()),
        "dataDir": dir,
        "configDirs": {
            "system": g.system_config,
            "local": g.local_config,
            "user": g.user_config,
        },
        "runtimeDir": runtime.as_ref().map(|r| r.runtime.clone()),
        "runtimeDirNote": runtime.as_ref().filter(|r| r.runtime_fallback).map(|r| format!(
            "$XDG_RUNTIME_DIR is not set: {} is used", r.runtime.display())),
        "userNamespace": who.map(|w| serde_json::json!({
            "subuids": w.subuids,
            "subgids": w.subgids,
            "mappedIds": w.mapped_ids(),
            "newuidmap": w.newuidmap,
            "newgidmap": w.newgidmap,
            "note": (!w.full_mapping()).then(|| w.single_id_note()),
        })),
        "enforced": {
            "namespaces": "pid, mount, uts, ipc and network (unless --net=host) of the pod's own",
            "capabilities": true,
            "seccomp": true,
            "noNewPrivileges": true,
            "cgroupLimits": cgroups,
            "cgroupLimitsNote": cgroup_reason,
            "networks": networks,
            "devices": devices,
        },
    })
}

/// Why a rootless pod has no cgroup limits here, if it has none.
pub fn cgroup_reason() -> Option<String> {
    exec::rootless::no_cgroups_reason()
}

/// Prints [`info`] as a table.
pub fn print_table(v: &serde_json::Value) {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!("rootless\t{}", v["rootless"]);
    if let Some(u) = v["user"].as_str() {
        println!("user\t{u} (uid {})", v["uid"]);
    }
    println!("data dir\t{}", s(&v["dataDir"]));
    for k in ["system", "local", "user"] {
        println!("{k} config\t{}", s(&v["configDirs"][k]));
    }
    if v["rootless"] == true {
        println!("runtime dir\t{}", s(&v["runtimeDir"]));
        if let Some(n) = v["runtimeDirNote"].as_str() {
            println!("\t{n}");
        }
        let u = &v["userNamespace"];
        let range = |r: &serde_json::Value| match (r["start"].as_u64(), r["count"].as_u64()) {
            (Some(a), Some(n)) => format!("{a}-{}", a + n - 1),
            _ => "none".into(),
        };
        println!(
            "subordinate ids\tuids {}, gids {} ({} ids mapped)",
            range(&u["subuids"]),
            range(&u["subgids"]),
            u["mappedIds"]
        );
        if let Some(n) = u["note"].as_str() {
            println!("\t{n}");
        }
    }
    let e = &v["enforced"];
    println!("namespaces\t{}", s(&e["namespaces"]));
    println!("capabilities, seccomp, no_new_privs\tyes");
    println!(
        "cgroup limits\t{}",
        if e["cgroupLimits"] == true {
            "yes"
        } else {
            "no"
        }
    );
    if let Some(n) = e["cgroupLimitsNote"].as_str() {
        println!("\t{n}");
    }
    let nets: Vec<String> = e["networks"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    println!("networks\t{}", nets.join(", "));
    println!("devices\t{}", s(&e["devices"]));
}
