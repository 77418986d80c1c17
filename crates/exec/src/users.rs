//! User and group names resolved in the app's own /etc/passwd and /etc/group, read inside
//! its root (so the image's files are read, never the host's).

use std::io;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub uid: u32,
    pub gid: u32,
    pub home: Option<String>,
}

/// The most of /etc/passwd or /etc/group read from an image (a hostile one could point
/// them at /dev/zero).
const MAX_DB: u64 = 4 << 20;

/// Reads a user database inside an app's root (`root`, opened O_PATH), resolving inside
/// it and following no magic link; empty if absent. Only a regular file is read, and at
/// most [`MAX_DB`] of it: a FIFO or a device would hang or flood the reader.
pub fn read_in(root: std::os::fd::BorrowedFd<'_>, path: &str) -> crate::error::Result<String> {
    use crate::error::{Context, Error};
    use std::io::Read;
    let fd = match rustix::fs::openat2(
        root,
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(String::new()),
        Err(e) => return Err(e).with_ctx(|| format!("the image's /{path}")),
    };
    let st = rustix::fs::fstat(&fd).with_ctx(|| format!("the image's /{path}"))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Error::msg(
            format!("the image's /{path}"),
            "not a regular file",
        ));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_DB)
        .read_to_string(&mut text)
        .with_ctx(|| format!("the image's /{path}"))?;
    Ok(text)
}

/// The owner of a file inside an app's root (`root`, opened O_PATH): appc lets `user` and
/// `group` name a file (an absolute path) whose owner the app runs as. Resolved inside the
/// root, as the image sees it, following no magic link; the file itself may be a symlink
/// only to somewhere inside the root.
pub fn owner_in(root: std::os::fd::BorrowedFd<'_>, path: &str) -> crate::error::Result<(u32, u32)> {
    use crate::error::Context;
    let what = || format!("the image's {path} (named as the app's user or group)");
    let fd = rustix::fs::openat2(
        root,
        path.trim_start_matches('/'),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .with_ctx(what)?;
    let st = rustix::fs::fstat(&fd).with_ctx(what)?;
    Ok((st.st_uid, st.st_gid))
}

/// A passwd entry by name or, for a number, by its uid field only: an image must not be
/// able to turn `--user=1000` into root with a line named "1000" whose uid is 0.
fn passwd_lookup(passwd: &str, user: &str) -> Option<(u32, u32, String)> {
    let numeric: Option<u32> = user.parse().ok();
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let (uid, gid): (u32, u32) = (f[2].parse().ok()?, f[3].parse().ok()?);
        let matches = match numeric {
            Some(n) => uid == n,
            None => f[0] == user,
        };
        matches.then(|| (uid, gid, f[5].to_string()))
    })
}

fn group_lookup(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        (f[0] == name).then(|| f[2].parse().ok()).flatten()
    })
}

/// Resolves `user` and `group` (names or numbers) in the text of an image's
/// /etc/passwd and /etc/group. With no group, the user's primary group from passwd (0 for
/// a bare uid without an entry).
pub fn resolve_in(
    passwd: &str,
    groups: &str,
    user: &str,
    group: Option<&str>,
) -> io::Result<Resolved> {
    let entry = passwd_lookup(passwd, user);
    let (uid, primary, home) = match (user.parse::<u32>(), entry) {
        (_, Some((uid, gid, home))) => (uid, gid, Some(home)),
        (Ok(uid), None) => (uid, 0, None),
        (Err(_), None) => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("user {user:?} is not in the image's /etc/passwd"),
            ));
        }
    };
    let gid = match group {
        None | Some("") => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_lookup(groups, g).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("group {g:?} is not in the image's /etc/group"),
                )
            })?,
        },
    };
    for (what, id, file) in [("uid", uid, "passwd"), ("gid", gid, "passwd or group")] {
        if id == NO_ID {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "user {user:?}: the image's /etc/{file} gives {what} 4294967295, which is (uid_t)-1, not an id"
                ),
            ));
        }
    }
    Ok(Resolved { uid, gid, home })
}

/// `(uid_t)-1`: setresuid, setresgid and setgroups read it as "unchanged" (or fail), so an
/// app asked to run as it would keep the root identity it starts with.
pub const NO_ID: u32 = u32::MAX;

/// The last check before an app (or an entered process) switches ids, whatever they came
/// from: none is (uid_t)-1, and each is mapped in this user namespace (the maps of the
/// initial namespace cover every id but -1; a `--private-users` pod's cover its range).
pub fn check_ids(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").ok();
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").ok();
    check_ids_in(uid, gid, groups, uid_map.as_deref(), gid_map.as_deref())
}

fn check_ids_in(
    uid: u32,
    gid: u32,
    groups: &[u32],
    uid_map: Option<&str>,
    gid_map: Option<&str>,
) -> io::Result<()> {
    let ids = std::iter::once(("uid", uid, uid_map))
        .chain(std::iter::once(("gid", gid, gid_map)))
        .chain(groups.iter().map(|&g| ("supplementary gid", g, gid_map)));
    for (what, id, map) in ids {
        let refused = if id == NO_ID {
            "(uid_t)-1 is not an id"
        } else if map.is_some_and(|m| !mapped(m, id)) {
            "not mapped in the pod's user namespace"
        } else {
            continue;
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {id}: {refused}"),
        ));
    }
    Ok(())
}

/// Whether `id` lies inside one extent of a /proc/PID/{uid,gid}_map.
fn mapped(map: &str, id: u32) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        matches!(f[..], [inside, _, count] if (inside..inside + count).contains(&u64::from(id)))
    })
}

/// Supplementary groups of a user name from /etc/group (for images that list them).
pub fn supplementary(groups: &str, user: &str) -> Vec<u32> {
    groups
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            f[3].split(',')
                .any(|m| m == user)
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nuser:x:1000:\nstaff:x:50:user\n";

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            resolve_in(PASSWD, GROUP, "user", None).unwrap(),
            Resolved {
                uid: 1000,
                gid: 1000,
                home: Some("/home/user".into())
            }
        );
        assert_eq!(
            resolve_in(PASSWD, GROUP, "user", Some("staff"))
                .unwrap()
                .gid,
            50
        );
        assert_eq!(
            resolve_in(PASSWD, GROUP, "4242", None).unwrap(),
            Resolved {
                uid: 4242,
                gid: 0,
                home: None
            }
        );
        assert_eq!(resolve_in(PASSWD, GROUP, "1000", Some("7")).unwrap().gid, 7);
        assert_eq!(supplementary(GROUP, "user"), vec![50]);
    }

    #[test]
    fn a_number_matches_only_the_uid_field() {
        // A hostile image names a root entry "1000": --user=1000 stays uid 1000.
        let hostile = "1000:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
        let r = resolve_in(hostile, GROUP, "1000", None).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        let only_hostile = "1000:x:0:0::/root:/bin/sh\n";
        let r = resolve_in(only_hostile, GROUP, "1000", None).unwrap();
        assert_eq!((r.uid, r.gid, r.home), (1000, 0, None));
    }

    #[test]
    fn minus_one_from_passwd_or_group_is_refused() {
        let passwd = "ghost:x:4294967295:0::/:/bin/sh\nplain:x:1000:4294967295::/:/bin/sh\n";
        let group = "ghosts:x:4294967295:\n";
        for (user, grp) in [("ghost", None), ("plain", None), ("1000", Some("ghosts"))] {
            let e = resolve_in(passwd, group, user, grp).unwrap_err();
            assert!(e.to_string().contains("4294967295"), "{user}: {e}");
        }
    }

    #[test]
    fn the_last_check_refuses_minus_one_and_unmapped_ids() {
        let host = "         0          0 4294967295\n";
        let pod = "         0 2147549184      65536\n";
        check_ids_in(0, 0, &[], Some(host), Some(host)).unwrap();
        check_ids_in(4294967294, 4294967294, &[5], Some(host), Some(host)).unwrap();
        for (uid, gid, groups) in [
            (NO_ID, 0, vec![]),
            (0, NO_ID, vec![]),
            (0, 0, vec![1, NO_ID]),
        ] {
            let e = check_ids_in(uid, gid, &groups, Some(host), Some(host)).unwrap_err();
            assert!(e.to_string().contains("(uid_t)-1"), "{e}");
            // Without the maps (no /proc), -1 is still refused.
            assert!(check_ids_in(uid, gid, &groups, None, None).is_err());
        }
        check_ids_in(65535, 65535, &[0], Some(pod), Some(pod)).unwrap();
        let e = check_ids_in(65536, 0, &[], Some(pod), Some(pod)).unwrap_err();
        assert!(e.to_string().contains("not mapped"), "{e}");
        assert!(check_ids_in(0, 0, &[70000], Some(pod), Some(pod)).is_err());
    }

    #[test]
    fn unknown_names_say_so() {
        let e = resolve_in(PASSWD, GROUP, "nobody2", None).unwrap_err();
        assert!(e.to_string().contains("nobody2"));
        let e = resolve_in(PASSWD, GROUP, "user", Some("wheel")).unwrap_err();
        assert!(e.to_string().contains("wheel"));
    }
}
