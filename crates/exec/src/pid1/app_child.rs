//! One app process, forked by the pod init. Before the fork the init describes the app
//! ([`prepare`]: its user read in the app's own /etc/passwd and /etc/group, never the
//! host's); the child then joins its cgroups, enters its own cgroup and mount namespaces
//! and root, takes its stdio, and becomes the app (`crate::app`). Any failure is written
//! to the error pipe (close-on-exec, so a successful exec closes it empty) and ends the
//! child.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use crate::app::{AppDescription, AppExec};
use crate::caps::CapSets;
use crate::error::{Context, Error, Result};
use crate::plan::{AppHandover, AppPlan};

/// An app ready to fork: everything its child needs, made beforehand.
pub struct AppChild {
    exec: AppExec,
    /// `/apps/<app>/rootfs`, in the stage1 root the init pivoted into.
    root: CString,
    stdio: [RawFd; 3],
    terminal: bool,
    cgroup_fds: Vec<RawFd>,
    /// Passed sockets, to be put at 3, 4, ... (socket activation).
    listen_fds: Vec<RawFd>,
}

/// In the init, before the fork: the app's description, its user resolved in its root.
pub fn prepare(app: &AppPlan, ours: &AppHandover) -> Result<AppChild> {
    let root_path = format!("/{}", crate::pid1::stage1::app_root(&app.name));
    let process = app
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::msg("the spec", "it has no process"))?;
    let mut d = AppDescription::from_process(process);
    if let Some(user) = &app.user {
        let root = rustix::fs::open(
            root_path.as_str(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx("the app's root")?;
        let passwd = crate::users::read_in(root.as_fd(), "etc/passwd")?;
        let group = crate::users::read_in(root.as_fd(), "etc/group")?;
        // A path stands for its owner (appc): the user's uid, the group's gid.
        let user = match user.starts_with('/') {
            true => crate::users::owner_in(root.as_fd(), user)?.0.to_string(),
            false => user.clone(),
        };
        let app_group = match app.group.as_deref() {
            Some(g) if g.starts_with('/') => {
                Some(crate::users::owner_in(root.as_fd(), g)?.1.to_string())
            }
            g => g.map(str::to_string),
        };
        let r =
            crate::users::resolve_in(&passwd, &group, &user, app_group.as_deref()).ctx("user")?;
        (d.uid, d.gid) = (r.uid, r.gid);
        d.groups.extend(crate::users::supplementary(&group, &user));
        if !d.env.iter().any(|e| e.starts_with("HOME=")) {
            d.env
                .push(format!("HOME={}", r.home.unwrap_or_else(|| "/".into())));
        }
    }
    if !d.env.iter().any(|e| e.starts_with("HOME=")) {
        d.env.push("HOME=/".into());
    }
    d.caps = match process.capabilities() {
        Some(c) => {
            let mut sets =
                CapSets::from_oci(c).map_err(|e| Error::msg("capabilities", e.to_string()))?;
            sets.restrict_to(crate::caps::available_capabilities());
            sets
        }
        None => CapSets::default(),
    };
    d.seccomp = ours.seccomp_bpf.clone();
    d.pre_start = app.pre_start.clone();
    d.post_stop = app.post_stop.clone();
    d.listen_fds = (0..ours.listen_fds.len())
        .map(|i| {
            ours.listen_names
                .get(i)
                .cloned()
                .unwrap_or_else(|| "unknown".into())
        })
        .collect();
    Ok(AppChild {
        exec: AppExec::prepare(&d)?,
        root: CString::new(root_path).map_err(|_| Error::msg("the app's name", "a NUL byte"))?,
        stdio: ours
            .stdio
            .ok_or_else(|| Error::msg("the app's stdio", "none was handed over"))?,
        terminal: app.terminal,
        cgroup_fds: ours.cgroup_fds.clone(),
        listen_fds: ours.listen_fds.clone(),
    })
}

/// In the forked child: becomes the app, or reports why not on `err` and exits.
pub fn run(child: &AppChild, err: OwnedFd, go: OwnedFd) -> ! {
    let mut err = err;
    let e = enter_and_exec(child, &mut err, go);
    let _ = rustix::io::write(&err, &e.encode());
    // SAFETY: leave without the parent's destructors.
    unsafe { libc::_exit(127) }
}

fn enter_and_exec(child: &AppChild, err: &mut OwnedFd, go: OwnedFd) -> Error {
    match enter(child, go).and_then(|()| place_listen_fds(&child.listen_fds, err)) {
        Err(e) => e,
        Ok(()) => child.exec.exec(Some(err.as_raw_fd())),
    }
}

/// Its cgroups, namespaces, root and stdio.
fn enter(child: &AppChild, go: OwnedFd) -> Result<()> {
    // Our v1 cgroups, before anything else (single-threaded: see cgroups::join).
    crate::cgroups::join_with_fds(&child.cgroup_fds).ctx("joining the app's cgroup")?;
    // Wait until the init has placed us in v2 too: it writes a byte per app then. A close
    // without one means it failed, and an app outside its cgroup must not run.
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&go, &mut byte) {
            Ok(1) => break,
            Err(rustix::io::Errno::INTR) => continue,
            _ => {
                return Err(Error::msg(
                    "joining the app's cgroup",
                    "the pod's init did not place the app in it",
                ))
            }
        }
    }
    drop(go);
    // Our cgroup is the root of what we see.
    unshare(rustix::thread::UnshareFlags::NEWCGROUP).ctx("unshare(CLONE_NEWCGROUP)")?;
    let _ = rustix::process::setsid();
    unshare(rustix::thread::UnshareFlags::NEWNS).ctx("unshare(CLONE_NEWNS)")?;
    rustix::process::chdir(child.root.as_c_str()).ctx("entering the app's root")?;
    rustix::process::pivot_root(c".", c".").ctx("pivot_root")?;
    rustix::mount::unmount(c".", rustix::mount::UnmountFlags::DETACH)
        .ctx("detaching the stage1 root")?;
    rustix::process::chdir(c"/").ctx("chdir /")?;
    for (i, fd) in child.stdio.iter().enumerate() {
        // SAFETY: dup2 of inherited descriptors onto 0, 1, 2.
        if unsafe { libc::dup2(*fd, i as i32) } < 0 {
            return Err(Error::last_os("setting up stdio"));
        }
    }
    if child.terminal {
        // The pty is our controlling terminal (we lead a new session).
        rustix::process::ioctl_tiocsctty(std::io::stdin()).ctx("taking the terminal")?;
    }
    Ok(())
}

/// Puts the passed sockets at 3, 4, ... for the app. Each of them, and the error pipe, is
/// first copied above that range (close-on-exec), so that no dup2 lands on a descriptor
/// still to be placed; the copies go with the exec.
fn place_listen_fds(fds: &[RawFd], err: &mut OwnedFd) -> Result<()> {
    if fds.is_empty() {
        return Ok(());
    }
    let floor = 3 + fds.len() as i32;
    let moved = fds
        .iter()
        .map(|fd| {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) of a descriptor the init handed us.
            let new = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, floor) };
            if new < 0 {
                Err(Error::last_os("moving a passed socket"))
            } else {
                Ok(new)
            }
        })
        .collect::<Result<Vec<RawFd>>>()?;
    *err = rustix::io::fcntl_dupfd_cloexec(&*err, floor).ctx("moving the error pipe")?;
    for (i, fd) in moved.iter().enumerate() {
        // SAFETY: dup2 onto the numbers the app expects; the copy has no close-on-exec.
        if unsafe { libc::dup2(*fd, 3 + i as i32) } < 0 {
            return Err(Error::last_os("placing a passed socket"));
        }
    }
    Ok(())
}

/// unshare(2) for this single-threaded process.
fn unshare(flags: rustix::thread::UnshareFlags) -> rustix::io::Result<()> {
    // SAFETY: the caller is single-threaded, so no other thread sees its namespaces change.
    unsafe { rustix::thread::unshare_unsafe(flags) }
}
