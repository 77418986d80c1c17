//! Finding the cgroup hierarchies in `/proc/self/mountinfo`.
//!
//! Nothing here assumes `/sys/fs/cgroup`: the mount table says where each v1
//! hierarchy and the v2 (unified) tree live, which is what makes the same code
//! work on v1-only, v2-only and hybrid hosts, and inside containers.

use std::path::{Path, PathBuf};

use super::CgroupError;

/// v1 controllers Vessel knows by name; other mount options are not controllers.
const KNOWN_V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// How the host arranges its cgroup hierarchies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 controller hierarchies.
    V1,
    /// Only the unified (v2) tree.
    V2,
    /// v1 controller hierarchies plus a unified tree (usually with few or no
    /// controllers of its own, used for process tracking).
    Hybrid,
}

/// One mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Mount {
    pub mount_point: PathBuf,
    /// The cgroup shown at the mount point, relative to the hierarchy's root
    /// (not `/` inside a cgroup namespace or for a bind mount).
    pub root: PathBuf,
    /// Controllers bound to this hierarchy, e.g. `["cpu", "cpuacct"]`.
    pub controllers: Vec<String>,
    /// The `name=` of a named hierarchy such as `name=systemd`.
    pub name: Option<String>,
}

/// Every cgroup hierarchy mounted in this mount namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    pub v1: Vec<V1Mount>,
    /// Mount point of the cgroup2 tree, if any.
    pub unified: Option<PathBuf>,
}

impl CgroupMounts {
    /// Reads the current process's mount table.
    pub fn read() -> Result<Self, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::MountTable {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text))
    }

    /// Parses the text of a `mountinfo` file. Lines that are not cgroup
    /// mounts, or are malformed, are ignored. When one hierarchy is mounted
    /// more than once, the first mount wins.
    pub fn parse(text: &str) -> Self {
        let mut mounts = CgroupMounts::default();
        for entry in text.lines().filter_map(MountEntry::parse) {
            match entry.fs_type {
                "cgroup2" if mounts.unified.is_none() => {
                    mounts.unified = Some(entry.mount_point);
                }
                "cgroup" => {
                    let mut controllers = Vec::new();
                    let mut name = None;
                    for option in entry.super_options.split(',') {
                        if let Some(n) = option.strip_prefix("name=") {
                            name = Some(n.to_string());
                        } else if KNOWN_V1_CONTROLLERS.contains(&option) {
                            controllers.push(option.to_string());
                        }
                    }
                    let duplicate = mounts
                        .v1
                        .iter()
                        .any(|m| m.controllers == controllers && m.name == name);
                    if !duplicate {
                        mounts.v1.push(V1Mount {
                            mount_point: entry.mount_point,
                            root: entry.root,
                            controllers,
                            name,
                        });
                    }
                }
                _ => {}
            }
        }
        mounts
    }

    /// The layout these mounts form, or `None` when no cgroup fs is mounted.
    pub fn layout(&self) -> Option<Layout> {
        let v1_controllers = self.v1.iter().any(|m| !m.controllers.is_empty());
        match (v1_controllers, self.unified.is_some()) {
            (true, true) => Some(Layout::Hybrid),
            (true, false) => Some(Layout::V1),
            (false, true) => Some(Layout::V2),
            (false, false) => None,
        }
    }

    /// The v1 hierarchy that has `controller`, if it is mounted.
    pub fn v1_with(&self, controller: &str) -> Option<&V1Mount> {
        self.v1
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
    }
}

/// The fields of one mountinfo line that matter here.
struct MountEntry<'a> {
    root: PathBuf,
    mount_point: PathBuf,
    fs_type: &'a str,
    super_options: &'a str,
}

impl<'a> MountEntry<'a> {
    /// `36 35 98:0 /root /mnt opts [optional...] - fstype source superopts`
    fn parse(line: &'a str) -> Option<Self> {
        let (before, after) = line.split_once(" - ")?;
        let mut fields = before.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        let mut after = after.split(' ');
        let fs_type = after.next()?;
        let _source = after.next()?;
        let super_options = after.next().unwrap_or("");
        Some(MountEntry {
            root: PathBuf::from(unescape(root)),
            mount_point: PathBuf::from(unescape(mount_point)),
            fs_type,
            super_options,
        })
    }
}

/// Undoes the kernel's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(value) = u8::try_from(value) {
                    out.push(value);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V1_ONLY: &str = "\
25 18 0:21 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:14 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid shared:15 - cgroup cgroup rw,pids
";

    const V2_ONLY: &str = "\
24 18 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_host() {
        let mounts = CgroupMounts::parse(HYBRID);
        assert_eq!(mounts.layout(), Some(Layout::Hybrid));
        assert_eq!(
            mounts.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            mounts.v1_with("cpuacct").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        let systemd = mounts
            .v1
            .iter()
            .find(|m| m.name.as_deref() == Some("systemd"));
        assert!(systemd.unwrap().controllers.is_empty());
        assert_eq!(mounts.v1.len(), 7);
    }

    #[test]
    fn v1_only_host_with_comounted_controllers() {
        let mounts = CgroupMounts::parse(V1_ONLY);
        assert_eq!(mounts.layout(), Some(Layout::V1));
        let cpu = mounts.v1_with("cpu").unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(mounts.v1_with("cpuacct").unwrap(), cpu);
        assert!(mounts.v1_with("freezer").is_none());
    }

    #[test]
    fn v2_only_host() {
        let mounts = CgroupMounts::parse(V2_ONLY);
        assert_eq!(mounts.layout(), Some(Layout::V2));
        assert!(mounts.v1.is_empty());
        assert_eq!(mounts.unified.as_deref(), Some(Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn no_cgroups_and_garbage() {
        let mounts = CgroupMounts::parse("garbage\n\n1 2 3\n22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
        assert_eq!(mounts.layout(), None);
    }

    #[test]
    fn escaped_paths_and_namespaced_root() {
        let line = "50 40 0:29 /docker/abc /mnt/my\\040cgroups rw - cgroup cgroup rw,memory\n";
        let mounts = CgroupMounts::parse(line);
        let memory = mounts.v1_with("memory").unwrap();
        assert_eq!(memory.mount_point, Path::new("/mnt/my cgroups"));
        assert_eq!(memory.root, Path::new("/docker/abc"));
    }

    #[test]
    fn first_mount_of_a_hierarchy_wins() {
        let text = "\
32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
90 22 0:29 /sub /mnt/again rw - cgroup cgroup rw,memory
91 22 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
92 22 0:38 / /mnt/cg2 rw - cgroup2 cgroup2 rw
";
        let mounts = CgroupMounts::parse(text);
        assert_eq!(mounts.v1.len(), 1);
        assert_eq!(
            mounts.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
    }
}
