//! Checks that the host outside the store was not touched.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, safe to use under /tmp.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("vessel-{tag}-{}-{n}", std::process::id())
}

/// Enough `..` to climb from any directory to `/`.
pub const CLIMB: &str = "../../../../../../../../../../../../../../../../../../../..";

/// A path under /tmp that must never come to exist: a hostile archive aims at it.
pub struct Sentinel {
    path: PathBuf,
}

impl Sentinel {
    pub fn new(tag: &str) -> Sentinel {
        let path = Path::new("/tmp").join(unique_name(tag));
        assert!(!path.exists(), "{} exists before the test", path.display());
        Sentinel { path }
    }

    /// The file name alone (`vessel-...`), for archives that place it under `tmp/`.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// The absolute name as a string: `/tmp/vessel-...`.
    pub fn absolute(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// The same path reached by climbing from wherever the archive is extracted.
    pub fn climbing(&self) -> String {
        format!("{CLIMB}{}", self.absolute())
    }

    pub fn assert_absent(&self) {
        assert!(
            std::fs::symlink_metadata(&self.path).is_err(),
            "a hostile archive reached the host: {} was created",
            self.path.display()
        );
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        // Leave /tmp as it was even when the product failed the test.
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A host file a hostile archive tries to delete or overwrite; it must stay as it is.
pub struct Victim {
    path: PathBuf,
    content: Vec<u8>,
}

impl Victim {
    pub fn new(tag: &str) -> Victim {
        let path = Path::new("/tmp").join(unique_name(tag));
        let content = format!("victim {}\n", path.display()).into_bytes();
        std::fs::write(&path, &content).unwrap();
        Victim { path, content }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    pub fn assert_intact(&self) {
        let now = std::fs::read(&self.path).unwrap_or_else(|e| {
            panic!(
                "a hostile archive reached the host: {} is gone ({e})",
                self.path.display()
            )
        });
        assert_eq!(
            now,
            self.content,
            "a hostile archive rewrote {}",
            self.path.display()
        );
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A host directory a hostile archive tries to chmod, chown or fill; it must stay as it is.
pub struct VictimDir {
    path: PathBuf,
    before: FileSnapshot,
}

impl VictimDir {
    pub fn new(tag: &str) -> VictimDir {
        let path = Path::new("/tmp").join(unique_name(tag));
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("resident"), b"resident").unwrap();
        let before = FileSnapshot::take(&path);
        VictimDir { path, before }
    }

    pub fn absolute(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Same mode, owner and times, and still only its one resident.
    pub fn assert_intact(&self) {
        self.before.assert_unchanged();
        let names: Vec<String> = std::fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["resident"],
            "a hostile archive wrote into {}",
            self.path.display()
        );
    }
}

impl Drop for VictimDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a host file looked like: content, times, links, owner, mode.
#[derive(Debug, PartialEq, Eq)]
pub struct FileSnapshot {
    path: PathBuf,
    content: Vec<u8>,
    mtime: (i64, i64),
    ctime: (i64, i64),
    nlink: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl FileSnapshot {
    pub fn take(path: &Path) -> FileSnapshot {
        let m =
            std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        FileSnapshot {
            path: path.to_path_buf(),
            content: if m.is_dir() {
                Vec::new()
            } else {
                std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            },
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            nlink: m.nlink(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    /// Panics if the file changed in any way, a new hard link to it included.
    pub fn assert_unchanged(&self) {
        let now = FileSnapshot::take(&self.path);
        assert!(
            now == *self,
            "host file {} changed: before {:?}, after {:?}",
            self.path.display(),
            self.summary(),
            now.summary()
        );
    }

    fn summary(&self) -> String {
        format!(
            "{} bytes, mtime {:?}, ctime {:?}, {} links, mode {:o}, owner {}:{}",
            self.content.len(),
            self.mtime,
            self.ctime,
            self.nlink,
            self.mode,
            self.uid,
            self.gid
        )
    }
}
