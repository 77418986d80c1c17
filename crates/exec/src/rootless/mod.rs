//! Rootless mode: a user without root runs Vessel inside a user namespace of their own, as
//! podman does. Before any command touches the store or a pod, the vessel process
//! ([`enter`]) unshares a user namespace, has its id maps written, and becomes that
//! namespace's root, then unshares a mount namespace the new root owns. Everything after
//! (extraction chowning to the image's owners, the pod's namespaces, overlayfs, the
//! detached mount of the binary) then runs on the root path, with what a user namespace
//! cannot do (cgroups on this host, real device nodes, CNI) switched off by the caller.
//!
//! The maps: the user's own id becomes 0, and the user's first range of /etc/subuid
//! (/etc/subgid) becomes 1..=COUNT, written by shadow's setuid helpers newuidmap and
//! newgidmap (Debian's uidmap). Every invocation maps the same ranges, so files written
//! by one (layers, pods' upper layers) keep their owners for the next. Without a range the
//! process maps only its own id (a process may write that map itself): every file then
//! belongs to the user and no app can run as another user.

pub mod subids;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use subids::SubRange;

use crate::error::{Error, Result};

/// newuidmap and newgidmap, unless `$VESSEL_NEWUIDMAP` / `$VESSEL_NEWGIDMAP` name others.
pub const NEWUIDMAP: &str = "/usr/bin/newuidmap";
pub const NEWGIDMAP: &str = "/usr/bin/newgidmap";
pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// Who runs rootless and what their user namespace maps.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    /// The subordinate uids mapped to 1.., if the user has some.
    pub subuids: Option<SubRange>,
    pub subgids: Option<SubRange>,
    pub newuidmap: PathBuf,
    pub newgidmap: PathBuf,
}

impl Identity {
    /// The calling user, from the process's real ids, /etc/passwd, /etc/subuid and
    /// /etc/subgid.
    pub fn current() -> Identity {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let user = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|p| subids::user_name(&p, uid));
        let env_path = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        Identity {
            uid,
            gid,
            subuids: subids::first_range(Path::new(SUBUID), user.as_deref(), uid),
            subgids: subids::first_range(Path::new(SUBGID), user.as_deref(), uid),
            user,
            newuidmap: env_path("VESSEL_NEWUIDMAP", NEWUIDMAP),
            newgidmap: env_path("VESSEL_NEWGIDMAP", NEWGIDMAP),
        }
    }

    /// Both a subordinate uid range and a gid range: the full mapping. Otherwise only the
    /// user's own ids are mapped.
    pub fn full_mapping(&self) -> bool {
        self.subuids.is_some() && self.subgids.is_some()
    }

    /// How many ids the namespace maps (0 included).
    pub fn mapped_ids(&self) -> u32 {
        match (self.subuids, self.subgids) {
            (Some(u), Some(g)) => 1 + u.count.min(g.count),
            _ => 1,
        }
    }

    /// What a single-id mapping limits, said once when it is used.
    pub fn single_id_note(&self) -> String {
        format!(
            "no subordinate ids for {} in {SUBUID} and {SUBGID}: only your own id is mapped (to root of the pods), so every file of an image becomes yours and an app that names another user cannot start; ask an administrator for a range (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {0})",
            self.user.clone().unwrap_or_else(|| self.uid.to_string())
        )
    }
}

/// A setuid helper that can write the maps: present, root's, setuid.
pub fn check_helper(path: &Path) -> Result<()> {
    let m = std::fs::metadata(path).map_err(|e| {
        Error::msg(
            format!("rootless mode needs {}", path.display()),
            format!("{e} (install Debian's uidmap package)"),
        )
    })?;
    if m.uid() != 0 || m.mode() & 0o4000 == 0 || m.mode() & 0o111 == 0 {
        return Err(Error::msg(
            format!("rootless mode needs {}", path.display()),
            format!(
                "it is not a setuid-root executable (owner uid {}, mode {:o}), so it cannot write a user namespace's id map",
                m.uid(),
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Makes the calling process root of a new user namespace mapping `who`'s ids (see the
/// module's comment), then gives it a mount namespace of that user namespace. Must be
/// called while the process is single-threaded.
pub fn enter(who: &Identity) -> Result<()> {
    if who.full_mapping() {
        check_helper(&who.newuidmap)?;
        check_helper(&who.newgidmap)?;
        enter_mapped(who)?;
    } else {
        unshare(libc::CLONE_NEWUSER, "creating a user namespace")?;
        let w = |file: &str, data: String| {
            std::fs::write(file, data).map_err(|e| {
                Error::os(
                    format!("writing {file} of the user namespace"),
                    e.raw_os_error().unwrap_or(libc::EIO),
                )
            })
        };
        w("/proc/self/setgroups", "deny".into())?;
        w("/proc/self/uid_map", format!("0 {} 1\n", who.uid))?;
        w("/proc/self/gid_map", format!("0 {} 1\n", who.gid))?;
    }
    unshare(libc::CLONE_NEWNS, "creating a mount namespace")?;
    ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn unshare(flags: libc::c_int, what: &str) -> Result<()> {
    // SAFETY: unshare takes flags only; the caller is single-threaded.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(Error::last_os(what));
    }
    Ok(())
}

/// The maps written by the setuid helpers: a child forked before the unshare (so still in
/// the host's user namespace, where the helpers' setuid bit counts) runs them on this
/// process once it has unshared, and reports their errors through a pipe.
fn enter_mapped(who: &Identity) -> Result<()> {
    let (go_r, go_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    let parent = std::process::id();
    // SAFETY: the process is single-threaded (the caller's contract); the child only runs
    // the helpers and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("forking the id map writer"));
    }
    if pid == 0 {
        drop(go_w);
        drop(res_r);
        let code = map_writer(who, parent, go_r, res_w);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(go_r);
    drop(res_w);
    let unshared = unshare(libc::CLONE_NEWUSER, "creating a user namespace");
    let mut go_w = go_w;
    if unshared.is_ok() {
        let _ = go_w.write_all(b"g");
    }
    drop(go_w);
    let mut report = String::new();
    let mut res_r = res_r;
    let _ = res_r.read_to_string(&mut report);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    unshared?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(Error::msg(
            "writing the user namespace's id maps",
            if report.is_empty() {
                "the map writer failed".to_string()
            } else {
                report.trim().to_string()
            },
        ));
    }
    Ok(())
}

fn map_writer(who: &Identity, parent: u32, go: std::fs::File, mut res: std::fs::File) -> i32 {
    let mut go = go;
    let mut b = [0u8; 1];
    if go.read(&mut b).unwrap_or(0) != 1 {
        return 1;
    }
    let (Some(u), Some(g)) = (who.subuids, who.subgids) else {
        return 1;
    };
    let count = u.count.min(g.count);
    for (helper, id, range) in [
        (&who.newuidmap, who.uid, u.start),
        (&who.newgidmap, who.gid, g.start),
    ] {
        let out = std::process::Command::new(helper)
            .args([
                parent.to_string(),
                "0".into(),
                id.to_string(),
                "1".into(),
                "1".into(),
                range.to_string(),
                count.to_string(),
            ])
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let _ = write!(
                    res,
                    "{} failed ({}): {}",
                    helper.display(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return 1;
            }
            Err(e) => {
                let _ = write!(res, "running {}: {e}", helper.display());
                return 1;
            }
        }
    }
    0
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::os("making a pipe", e.raw_os_error()))?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// Whether this process runs in a user namespace other than the host's (its uid map is
/// not the identity over every id).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// The cgroup v2 subtree delegated to the user, where rootless pods get their cgroups and
/// limits, or why there is none (`crate::cgroups::delegated`).
pub fn delegated_cgroups() -> std::result::Result<crate::cgroups::delegated::Delegated, String> {
    crate::cgroups::delegated::detect()
}

/// Why a rootless pod runs without cgroup limits (none delegated), or None when it may
/// have them.
pub fn no_cgroups_reason() -> Option<String> {
    delegated_cgroups()
        .err()
        .map(|why| format!("rootless pods run without cgroup limits: {why}"))
}

/// Set once the process has entered its user namespace ([`enter`]).
static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process runs rootless (it entered the user's namespace).
pub fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Joins the user namespace of process `pid` (a running rootless pod's init) instead of
/// making a new one: a namespace made by another vessel process is a sibling of a new one,
/// where our capabilities would not reach the pod's processes. The user owns it, so the
/// kernel lets them in. Then a mount namespace of its own, as [`enter`] makes.
pub fn join(pid: i32) -> Result<()> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::new("no pod init pid"))?,
        rustix::process::PidfdFlags::empty(),
    )
    .map_err(|e| Error::os(format!("opening process {pid}"), e.raw_os_error()))?;
    // SAFETY: setns on a pidfd we own; the caller is single-threaded.
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&pidfd), libc::CLONE_NEWUSER) } != 0 {
        return Err(Error::last_os(format!(
            "joining the user namespace of the pod's init (pid {pid})"
        )));
    }
    unshare(libc::CLONE_NEWNS, "creating a mount namespace")?;
    ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}
