//! /etc/subuid and /etc/subgid: the subordinate ids a user may map into a user namespace
//! of their own (shadow's subuid(5)). Each line is `USER:START:COUNT`, USER a name or a
//! numeric id.

use std::path::Path;

/// One range of subordinate ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `user` (or of its numeric `id`) in the content of a subuid/subgid file,
/// in file order; malformed lines and empty ranges are skipped, as shadow skips them.
pub fn ranges_in(content: &str, user: Option<&str>, id: u32) -> Vec<SubRange> {
    let id = id.to_string();
    content
        .lines()
        .filter_map(|line| {
            let mut f = line.trim().splitn(3, ':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != id && Some(who) != user {
                return None;
            }
            let start = start.trim().parse::<u32>().ok()?;
            let count = count.trim().parse::<u32>().ok()?;
            (count > 0 && start.checked_add(count).is_some()).then_some(SubRange { start, count })
        })
        .collect()
}

/// The first range of `user` in `file`; `None` when the file is missing or names none.
pub fn first_range(file: &Path, user: Option<&str>, id: u32) -> Option<SubRange> {
    let content = std::fs::read_to_string(file).ok()?;
    ranges_in(&content, user, id).into_iter().next()
}

/// The name of the user with id `uid` in `passwd` content (`name:x:uid:...`).
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_name_or_id_in_file_order() {
        let file = "alice:100000:65536\n# comment\nbob:x:1\n1001:300000:1000\nalice:500000:0\nalice:4294967295:2\ncarol:200000:65536\n";
        assert_eq!(
            ranges_in(file, Some("alice"), 1001),
            [
                SubRange {
                    start: 100000,
                    count: 65536
                },
                SubRange {
                    start: 300000,
                    count: 1000
                }
            ]
        );
        assert_eq!(ranges_in(file, Some("bob"), 7), []);
        assert_eq!(ranges_in(file, None, 42), []);
    }

    #[test]
    fn user_names_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 1001).as_deref(), Some("alice"));
        assert_eq!(user_name(passwd, 5), None);
    }
}
