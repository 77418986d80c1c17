//! The user namespace the store is written from. As root of the host every owner an
//! archive names is written as it is. Rootless (exec::rootless), the process is root of a
//! user namespace of its own, and two things change:
//!
//! - an owner the namespace does not map cannot be given to a file: with a single-id
//!   mapping (a user without subordinate ids) every owner becomes the namespace's root,
//!   that is the user; with a subordinate range, an owner beyond it is refused, naming it;
//! - `trusted.*` xattrs need root of the host, so opaque directories are marked with
//!   `user.overlay.opaque` and the pods' overlays are mounted with `userxattr`.
//!
//! Layers written in one mode are read in that mode only: a rootless store is the user's
//! own, under their home.

use std::sync::OnceLock;

/// What this process's user namespace maps (read once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdView {
    /// Ranges (first inside id, count) of the uid and gid maps.
    uids: Vec<(u32, u32)>,
    gids: Vec<(u32, u32)>,
    nested: bool,
}

fn parse_map(map: &str) -> Vec<(u32, u32)> {
    map.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<u32>().ok());
            let (inside, _outside, count) = (f.next()??, f.next()??, f.next()??);
            Some((inside, count))
        })
        .collect()
}

fn maps(ranges: &[(u32, u32)], id: u32) -> bool {
    ranges
        .iter()
        .any(|&(first, count)| id >= first && u64::from(id) < u64::from(first) + u64::from(count))
}

impl IdView {
    /// From the content of a uid_map and a gid_map.
    pub fn from_maps(uid_map: &str, gid_map: &str) -> IdView {
        let uids = parse_map(uid_map);
        let gids = parse_map(gid_map);
        let nested = uids != [(0, u32::MAX)];
        IdView { uids, gids, nested }
    }

    /// This process's, read once: call it only once the process is in the user namespace
    /// it writes from (rootless: after exec::rootless::enter).
    pub fn current() -> &'static IdView {
        static VIEW: OnceLock<IdView> = OnceLock::new();
        VIEW.get_or_init(IdView::read_now)
    }

    /// This process's, read now.
    pub fn read_now() -> IdView {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        IdView::from_maps(&read("/proc/self/uid_map"), &read("/proc/self/gid_map"))
    }

    /// Whether the process runs in a user namespace other than the host's.
    pub fn nested(&self) -> bool {
        self.nested
    }

    /// Only the namespace's root is mapped.
    fn single(&self) -> bool {
        self.nested && self.uids.iter().map(|r| r.1).sum::<u32>() <= 1
    }

    /// The owner to give a file an archive says is `uid:gid`.
    pub fn fit(&self, uid: u32, gid: u32) -> Result<(u32, u32), String> {
        if !self.nested || (maps(&self.uids, uid) && maps(&self.gids, gid)) {
            return Ok((uid, gid));
        }
        if self.single() {
            return Ok((0, 0));
        }
        let (kind, id) = if maps(&self.uids, uid) {
            ("gid", gid)
        } else {
            ("uid", uid)
        };
        let count: u32 = self.uids.iter().map(|r| r.1).sum();
        Err(format!(
            "owner {kind} {id} is beyond the {count} ids mapped for rootless use (0 and the user's range in /etc/subuid and /etc/subgid): ask for a larger range"
        ))
    }

    /// The xattr that marks an overlay directory opaque, as this process can write it.
    pub fn opaque_xattr(&self) -> &'static str {
        if self.nested {
            "user.overlay.opaque"
        } else {
            "trusted.overlay.opaque"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_maps_everything() {
        let v = IdView::from_maps("0 0 4294967295\n", "0 0 4294967295\n");
        assert!(!v.nested());
        assert_eq!(v.fit(70000, 5), Ok((70000, 5)));
        assert_eq!(v.opaque_xattr(), "trusted.overlay.opaque");
    }

    #[test]
    fn subordinate_range_maps_its_ids_and_refuses_beyond() {
        let v = IdView::from_maps("0 1001 1\n1 100000 65536\n", "0 1001 1\n1 100000 65536\n");
        assert!(v.nested());
        assert_eq!(v.fit(1000, 1000), Ok((1000, 1000)));
        assert_eq!(v.fit(65536, 0), Ok((65536, 0)));
        let e = v.fit(0, 70000).unwrap_err();
        assert!(e.contains("gid 70000") && e.contains("65537"), "{e}");
        assert_eq!(v.opaque_xattr(), "user.overlay.opaque");
    }

    #[test]
    fn single_id_gives_everything_to_root() {
        let v = IdView::from_maps("0 1001 1\n", "0 1001 1\n");
        assert_eq!(v.fit(1000, 50), Ok((0, 0)));
        assert_eq!(v.fit(0, 0), Ok((0, 0)));
    }
}
