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
    Ok(Resolved { uid, gid, home })
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
    fn unknown_names_say_so() {
        let e = resolve_in(PASSWD, GROUP, "nobody2", None).unwrap_err();
        assert!(e.to_string().contains("nobody2"));
        let e = resolve_in(PASSWD, GROUP, "user", Some("wheel")).unwrap_err();
        assert!(e.to_string().contains("wheel"));
    }
}
