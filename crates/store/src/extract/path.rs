//! Validation of entry names from an archive. Names are relative paths inside the image's
//! root; anything that tries to climb out of it is hostile and refused.

/// A normalised relative path: components joined by '/', none empty, '.' or '..'.
/// The empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryPath(Vec<u8>);

impl EntryPath {
    /// Accepts `a/b`, `./a/b`, `a//b/`, `a/./b`; refuses `..` components and NUL bytes. A
    /// leading `/` is dropped, as GNU tar does (real producers write `/` for the root entry):
    /// an absolute name lands inside the root, never on the host. `strip` removes a required leading directory (an ACI's `rootfs/`); names
    /// outside it give `Ok(None)`.
    pub fn parse(raw: &[u8], strip: Option<&[u8]>) -> Result<Option<EntryPath>, String> {
        if raw.contains(&0) {
            return Err("name contains a NUL byte".into());
        }
        let mut parts: Vec<&[u8]> = Vec::new();
        for comp in raw.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => continue,
                b".." => return Err("name climbs out of the root with '..'".into()),
                c => parts.push(c),
            }
        }
        if let Some(prefix) = strip {
            if parts.first() != Some(&prefix) {
                return Ok(None);
            }
            parts.remove(0);
        }
        Ok(Some(EntryPath(parts.join(&b'/'))))
    }

    pub fn root() -> EntryPath {
        EntryPath(Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// (parent, last component). The root has no last component.
    pub fn split_last(&self) -> (&[u8], &[u8]) {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => (&self.0[..i], &self.0[i + 1..]),
            None => (&[], &self.0),
        }
    }

    pub fn join(&self, name: &[u8]) -> EntryPath {
        if self.0.is_empty() {
            EntryPath(name.to_vec())
        } else {
            let mut v = self.0.clone();
            v.push(b'/');
            v.extend_from_slice(name);
            EntryPath(v)
        }
    }

    pub fn display(&self) -> String {
        if self.0.is_empty() {
            "/".to_string()
        } else {
            String::from_utf8_lossy(&self.0).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        EntryPath::parse(raw.as_bytes(), None)
            .unwrap()
            .unwrap()
            .display()
    }

    #[test]
    fn normalises() {
        assert_eq!(ok("./a/b"), "a/b");
        assert_eq!(ok("a//b/"), "a/b");
        assert_eq!(ok("a/./b"), "a/b");
        assert_eq!(ok("./"), "/");
    }

    #[test]
    fn refuses_climbing_and_absolute() {
        for bad in ["../x", "a/../../x", "a/..", "/../x", "a\0b"] {
            assert!(EntryPath::parse(bad.as_bytes(), None).is_err(), "{bad:?}");
        }
        assert_eq!(ok("/etc/passwd"), "etc/passwd");
        assert_eq!(ok("//x"), "x");
        assert_eq!(ok("/"), "/");
    }

    #[test]
    fn strips_rootfs_prefix() {
        let p = EntryPath::parse(b"rootfs/bin/sh", Some(b"rootfs")).unwrap();
        assert_eq!(p.unwrap().display(), "bin/sh");
        assert_eq!(
            EntryPath::parse(b"manifest", Some(b"rootfs")).unwrap(),
            None
        );
        let root = EntryPath::parse(b"rootfs/", Some(b"rootfs"))
            .unwrap()
            .unwrap();
        assert!(root.is_root());
    }

    #[test]
    fn splits() {
        let p = ok("a/b/c");
        let p = EntryPath::parse(p.as_bytes(), None).unwrap().unwrap();
        assert_eq!(p.split_last(), (&b"a/b"[..], &b"c"[..]));
        let q = EntryPath::parse(b"c", None).unwrap().unwrap();
        assert_eq!(q.split_last(), (&b""[..], &b"c"[..]));
    }
}
