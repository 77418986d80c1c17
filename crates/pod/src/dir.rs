//! Pod directories and their states (rkt's model). A pod's state is the directory it sits
//! in plus a flock on it: the process that prepares or supervises a pod holds the lock, so
//! the kernel releasing it when that process dies is the exit event. Moves between states
//! are atomic renames; the loser of a race sees ENOENT and treats it as normal.
//!
//! Only root may enter a pod's directory (mode 0700; see `PASSAGE_MODE`): a pod's root owns
//! its writable layer, where it can leave setuid-root binaries, and the plan and logs hold
//! its environment and output.
//!
//! A pod's directory is opened with O_NOFOLLOW (a symlink in its place is never a pod) and,
//! once locked, acted on through that descriptor: `gc` marks it and `rm`/`gc` delete it by
//! descriptor, then remove its name only if the name still is that directory (hardening
//! finding 6: a directory swapped for a symlink is never followed).
//!
//! `is_locked` probes the lock by taking it shared for a moment; only probes take it
//! shared. So an exclusive attempt that finds the lock taken but can take it shared has
//! met probes only, and tries again (briefly) rather than report the pod in use.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::error::{PodError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dir {
    Embryo,
    Prepare,
    Prepared,
    Run,
    ExitedGarbage,
    Garbage,
}

impl Dir {
    pub const ALL: [Dir; 6] = [
        Dir::Embryo,
        Dir::Prepare,
        Dir::Prepared,
        Dir::Run,
        Dir::ExitedGarbage,
        Dir::Garbage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dir::Embryo => "embryo",
            Dir::Prepare => "prepare",
            Dir::Prepared => "prepared",
            Dir::Run => "run",
            Dir::ExitedGarbage => "exited-garbage",
            Dir::Garbage => "garbage",
        }
    }
}

/// What `list` and `status` report, derived from the directory and the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Embryo,
    Preparing,
    AbortedPrepare,
    Prepared,
    Running,
    Exited,
    ExitedGarbage,
    Garbage,
}

impl State {
    pub fn of(dir: Dir, locked: bool) -> State {
        match (dir, locked) {
            (Dir::Embryo, _) => State::Embryo,
            (Dir::Prepare, true) => State::Preparing,
            (Dir::Prepare, false) => State::AbortedPrepare,
            (Dir::Prepared, _) => State::Prepared,
            (Dir::Run, true) => State::Running,
            (Dir::Run, false) => State::Exited,
            (Dir::ExitedGarbage, _) => State::ExitedGarbage,
            (Dir::Garbage, _) => State::Garbage,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Embryo => "embryo",
            State::Preparing => "preparing",
            State::AbortedPrepare => "aborted prepare",
            State::Prepared => "prepared",
            State::Running => "running",
            State::Exited => "exited",
            State::ExitedGarbage => "exited garbage",
            State::Garbage => "garbage",
        }
    }
}

/// The `pods/` tree.
#[derive(Debug, Clone)]
pub struct Pods {
    root: PathBuf,
}

/// A pod directory found at some moment; it may have moved since (see `PodDir::refresh`).
#[derive(Debug)]
pub struct PodDir {
    pub uuid: String,
    pub dir: Dir,
    pods: Pods,
    /// Held by this process: exclusive while preparing or supervising.
    lock: Option<File>,
}

/// The mode of a pod's directory, and of every directory under `--dir` holding pod data:
/// root's alone.
pub const PRIVATE_MODE: u32 = 0o700;

/// The mode of `pods/` and `pods/run/`: root's, but others may pass through (not list):
/// the first process of a `--private-users` pod, which works as the pod's root, reaches its
/// stage1 mount point and empty volumes through them. What lies below is closed: a pod's
/// directory is 0700 (0710 for the group of a `--private-users` pod's root).
pub const PASSAGE_MODE: u32 = 0o711;

/// Where a new pod directory is made before it is locked and renamed into embryo/: a
/// name `all` does not list, so nobody sees the pod unlocked.
const NEW_PREFIX: &str = ".new-";

/// Where a pod goes while its files are deleted in the background (`run --rm`): a name in
/// garbage/ that `all` does not list, so `list`, `status` and every other command see the
/// pod gone at once.
const DELETING_PREFIX: &str = ".deleting-";

/// How long an exclusive lock attempt waits for probes (shared holders) to let go. A probe
/// holds the lock for microseconds, unless its process is descheduled meanwhile.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// Makes `path` a directory of `mode` (no group or other bits but those of `mode`): created
/// with it from the start, or set to it if it exists with another (as older versions left
/// it, 0755). Its parent must exist.
pub fn ensure_dir(path: &Path, mode: u32) -> Result<()> {
    if set_mode(path, mode)? {
        return Ok(());
    }
    match fs::DirBuilder::new().mode(mode).create(path) {
        // The umask may have taken bits away.
        Ok(()) => set_mode(path, mode).map(|_| ()),
        // Made by another process meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => set_mode(path, mode).map(|_| ()),
        Err(e) => Err(PodError::io(path, e)),
    }
}

/// `ensure_dir` with mode 0700.
pub fn private_dir(path: &Path) -> Result<()> {
    ensure_dir(path, PRIVATE_MODE)
}

/// Gives an existing directory exactly `mode`. False if it does not exist.
pub fn set_mode(path: &Path, mode: u32) -> Result<bool> {
    // Not a directory (a symlink to one among them), another user's directory, or one
    // others could write to: refused, not narrowed, as what lies in it may be theirs.
    let meta = match store::datadir::check_owned(path) {
        Ok(m) => m,
        Err(store::StoreError::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
            return Ok(false)
        }
        Err(e) => return Err(PodError::Invalid(e.to_string())),
    };
    if meta.mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| PodError::io(path, e))?;
    }
    Ok(true)
}

/// Whether data dir `vessel_dir` holds pod `uuid` in any state, including one being made
/// or deleted (without opening the data dir: it may be another store's, or gone).
pub fn pod_exists(vessel_dir: &Path, uuid: &str) -> bool {
    let root = crate::layout::pods(vessel_dir);
    Dir::ALL
        .iter()
        .map(|d| root.join(d.name()).join(uuid))
        .chain([
            root.join(Dir::Embryo.name())
                .join(format!("{NEW_PREFIX}{uuid}")),
            root.join(Dir::Garbage.name())
                .join(format!("{DELETING_PREFIX}{uuid}")),
        ])
        .any(|p| fs::symlink_metadata(p).is_ok())
}

impl Pods {
    /// Opens (and makes, if need be) `<dir>/pods`, root's alone; directories of pod data
    /// an older vessel left open to other users are narrowed on the way.
    /// The data dir and the directories kept in it must be the caller's alone and never
    /// symlinks (`store::datadir`): root deletes what lies there in `rm` and `gc`.
    /// `<dir>/pods`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn open(dir: &Path) -> Result<Pods> {
        let dir = &store::datadir::prepare(dir).map_err(|e| PodError::Invalid(e.to_string()))?;
        let root = crate::layout::pods(dir);
        ensure_dir(&root, PASSAGE_MODE)?;
        for d in Dir::ALL {
            let mode = if d == Dir::Run {
                PASSAGE_MODE
            } else {
                PRIVATE_MODE
            };
            ensure_dir(&root.join(d.name()), mode)?;
        }
        // The pods' user namespace ranges, and the base layer and compiled filters.
        for other in [crate::layout::userns_slots(dir), crate::layout::cache(dir)] {
            set_mode(&other, PRIVATE_MODE)?;
        }
        Ok(Pods { root })
    }

    pub fn path(&self, dir: Dir, uuid: &str) -> PathBuf {
        self.root.join(dir.name()).join(uuid)
    }

    /// The `--dir` the pods live under.
    pub fn vessel_dir(&self) -> &Path {
        self.root.parent().expect("pods/ has a parent")
    }

    /// A new pod in embryo/, locked by us.
    pub fn create(&self) -> Result<PodDir> {
        self.create_with(&uuid::Uuid::new_v4().to_string(), None)
    }

    /// A new pod with a UUID chosen beforehand, in embryo/ and locked by us. Its directory
    /// is root's alone (0700); with `group` (the host gid of a pod's root in its user
    /// namespace), that group may also pass through it (0710), which the pod's first
    /// process needs to reach its stage1 mount point and empty volumes.
    ///
    /// The directory is made under a name nobody lists, locked, then renamed into place:
    /// no other process ever sees the pod unlocked.
    pub fn create_with(&self, uuid: &str, group: Option<u32>) -> Result<PodDir> {
        let uuid = uuid.to_string();
        let path = self.path(Dir::Embryo, &uuid);
        let tmp = self
            .root
            .join(Dir::Embryo.name())
            .join(format!("{NEW_PREFIX}{uuid}"));
        fs::DirBuilder::new()
            .mode(PRIVATE_MODE)
            .create(&tmp)
            .map_err(|e| PodError::io(&tmp, e))?;
        let made = (|| {
            let lock = File::open(&tmp).map_err(|e| PodError::io(&tmp, e))?;
            flock(&lock, FlockOperation::NonBlockingLockExclusive)
                .map_err(|e| PodError::io(&tmp, e.into()))?;
            if let Some(gid) = group {
                rustix::fs::fchown(&lock, None, Some(rustix::fs::Gid::from_raw_unchecked(gid)))
                    .map_err(|e| PodError::io(&tmp, e.into()))?;
                rustix::fs::fchmod(&lock, rustix::fs::Mode::from_raw_mode(0o710))
                    .map_err(|e| PodError::io(&tmp, e.into()))?;
            }
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &tmp,
                rustix::fs::CWD,
                &path,
                rustix::fs::RenameFlags::NOREPLACE,
            )
            .map_err(|e| PodError::io(&path, e.into()))?;
            Ok(lock)
        })();
        match made {
            Ok(lock) => Ok(PodDir {
                uuid,
                dir: Dir::Embryo,
                pods: self.clone(),
                lock: Some(lock),
            }),
            Err(e) => {
                let _ = fs::remove_dir(&tmp);
                Err(e)
            }
        }
    }

    /// Directories of pods whose making was cut short (their process died between the
    /// `mkdir` and the rename into embryo/) and that nobody holds: removed by `gc` after
    /// `grace`.
    /// Each comes with its lock, held, for [`delete_tree`].
    pub fn abandoned_new(&self, grace: Duration) -> Vec<(PathBuf, File)> {
        let base = self.root.join(Dir::Embryo.name());
        let Ok(rd) = fs::read_dir(&base) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(NEW_PREFIX))
            .filter(is_directory)
            .map(|e| e.path())
            .filter_map(|p| {
                let young = fs::symlink_metadata(&p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_none_or(|age| age < grace);
                if young {
                    return None;
                }
                let lock = lock_dir(&p, true).ok()??;
                Some((p, lock))
            })
            .collect()
    }

    /// Pods whose deletion in the background was cut short (see
    /// [`PodDir::hide_for_deletion`]) and that nobody holds: their UUIDs, paths and locks
    /// (held, for [`delete_tree`]).
    pub fn abandoned_deletions(&self) -> Vec<(String, PathBuf, File)> {
        let base = self.root.join(Dir::Garbage.name());
        let Ok(rd) = fs::read_dir(&base) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(is_directory)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let uuid = name.strip_prefix(DELETING_PREFIX)?.to_string();
                let path = e.path();
                let lock = lock_dir(&path, true).ok()??;
                Some((uuid, path, lock))
            })
            .collect()
    }

    /// Entries of the state directories named like pods that are not directories (a
    /// symlink planted or swapped in): never pods, never followed; `gc` names them.
    pub fn strays(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in Dir::ALL {
            let Ok(rd) = fs::read_dir(self.root.join(d.name())) else {
                continue;
            };
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().into_owned();
                let named_like_a_pod = uuid::Uuid::parse_str(&name).is_ok()
                    || name.starts_with(DELETING_PREFIX)
                    || name.starts_with(NEW_PREFIX);
                if named_like_a_pod && !is_directory(&ent) {
                    out.push(ent.path());
                }
            }
        }
        out
    }

    /// Every pod, in whatever state.
    pub fn all(&self) -> Result<Vec<PodDir>> {
        let mut out = Vec::new();
        for d in Dir::ALL {
            let base = self.root.join(d.name());
            let rd = match fs::read_dir(&base) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(PodError::io(&base, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| PodError::io(&base, e))?;
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                // A symlink (or file) in a pod's place is no pod: see `strays`.
                if uuid::Uuid::parse_str(&name).is_ok() && is_directory(&ent) {
                    out.push(PodDir {
                        uuid: name,
                        dir: d,
                        pods: self.clone(),
                        lock: None,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Finds a pod by UUID or unique prefix (not one being deleted).
    pub fn find(&self, query: &str) -> Result<PodDir> {
        self.find_in(query, false)
    }

    /// [`PodDirs::find`] for `rm`, which also takes a pod left in garbage/ by a deletion
    /// that failed half-way (a disk error): `rm` again finishes it, as rkt's did. One that
    /// a child is deleting right now is locked, and `rm` says it is in use.
    pub fn find_for_removal(&self, query: &str) -> Result<PodDir> {
        self.find_in(query, true)
    }

    fn find_in(&self, query: &str, with_garbage: bool) -> Result<PodDir> {
        let q = query.trim();
        if q.is_empty() {
            return Err(PodError::NotFound(query.to_string()));
        }
        // A pod in garbage/ is being deleted (`run --rm` returns while a child deletes it,
        // its networks' DEL included): no longer anyone's to look at or act on; gc (or rm)
        // finishes what a killed or failed deleter left.
        let mut hits: Vec<PodDir> = self
            .all()?
            .into_iter()
            .filter(|p| p.uuid.starts_with(q) && (with_garbage || p.dir != Dir::Garbage))
            .collect();
        match hits.len() {
            0 => Err(PodError::NotFound(query.to_string())),
            1 => Ok(hits.pop().unwrap()),
            _ => {
                let mut uuids: Vec<String> = hits.iter().map(|p| p.uuid.clone()).collect();
                uuids.sort();
                uuids.dedup();
                if uuids.len() == 1 {
                    // The same pod seen twice while it moved: take where it is now.
                    let mut p = hits.pop().unwrap();
                    p.refresh()?;
                    Ok(p)
                } else {
                    Err(PodError::Ambiguous {
                        query: query.to_string(),
                        candidates: uuids,
                    })
                }
            }
        }
    }
}

/// The entry is a directory itself (d_type, or lstat: a symlink to one is not).
fn is_directory(ent: &fs::DirEntry) -> bool {
    ent.file_type().is_ok_and(|t| t.is_dir())
}

/// Opens a pod's directory, never what a symlink in its place points to.
fn open_dir_nofollow(path: &Path) -> Result<File> {
    use rustix::fs::OFlags;
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map(File::from)
    .map_err(|e| PodError::io(path, e.into()))
}

/// Deletes the pod directory open as `dir` (locked by us), now named `at`: its contents
/// by descriptor, never leaving it (`store::fsutil::remove_children`), then the name `at`
/// if it still is that directory. A name swapped for something else meanwhile is left
/// alone, and said.
pub fn delete_tree(dir: &File, at: &Path) -> Result<()> {
    use rustix::fs::{AtFlags, OFlags};
    store::fsutil::remove_children(dir, at).map_err(|e| PodError::Invalid(e.to_string()))?;
    let (Some(parent), Some(name)) = (at.parent(), at.file_name()) else {
        return Err(PodError::Invalid(format!(
            "{}: not a pod directory",
            at.display()
        )));
    };
    let parent_fd = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| PodError::io(parent, e.into()))?;
    let ours = rustix::fs::fstat(dir).map_err(|e| PodError::io(at, e.into()))?;
    match rustix::fs::statat(&parent_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino) => {
            match rustix::fs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                Err(e) => Err(PodError::io(at, e.into())),
            }
        }
        Ok(_) => Err(PodError::Invalid(format!(
            "{}: no longer the pod's directory (replaced while it was deleted): left alone",
            at.display()
        ))),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(PodError::io(at, e.into())),
    }
}

/// Takes a pod directory's lock without blocking: exclusive (to own the pod), or shared (a
/// probe: see `is_locked`). None if another process holds it.
fn lock_dir(path: &Path, exclusive: bool) -> Result<Option<File>> {
    let f = open_dir_nofollow(path)?;
    if !exclusive {
        return match flock(&f, FlockOperation::NonBlockingLockShared) {
            Ok(()) => Ok(Some(f)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(PodError::io(path, e.into())),
        };
    }
    let deadline = Instant::now() + PROBE_WAIT;
    loop {
        match flock(&f, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Some(f)),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => return Err(PodError::io(path, e.into())),
        }
        // Taken. By an owner (exclusive), or only by probes (shared)? A second open of the
        // same directory (flocks belong to open files) can tell: it gets the lock shared
        // only if nobody holds it exclusive.
        let second = rustix::fs::openat(
            &f,
            ".",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| PodError::io(path, e.into()))?;
        match flock(&second, FlockOperation::NonBlockingLockShared) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(PodError::io(path, e.into())),
        }
        drop(second);
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

impl PodDir {
    pub fn vessel_dir(&self) -> &Path {
        self.pods.vessel_dir()
    }

    pub fn path(&self) -> PathBuf {
        self.pods.path(self.dir, &self.uuid)
    }

    /// The paths inside the pod's directory, where it is now.
    pub fn paths(&self) -> crate::layout::PodPaths {
        crate::layout::PodPaths::new(self.path())
    }

    /// Looks for the pod again (it may have moved since it was listed).
    pub fn refresh(&mut self) -> Result<()> {
        for d in Dir::ALL {
            let p = self.pods.path(d, &self.uuid);
            if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                self.dir = d;
                return Ok(());
            }
        }
        Err(PodError::NotFound(self.uuid.clone()))
    }

    /// Whether some process holds the pod's lock (we count, if we hold it).
    pub fn is_locked(&self) -> bool {
        if self.lock.is_some() {
            return true;
        }
        match lock_dir(&self.path(), false) {
            Ok(Some(_)) => false,
            Ok(None) => true,
            Err(_) => false,
        }
    }

    pub fn state(&self) -> State {
        // Only prepare/ and run/ hold two states apart by the lock: elsewhere it is not
        // asked (three syscalls saved per pod when listing many prepared pods).
        let locked = matches!(self.dir, Dir::Prepare | Dir::Run) && self.is_locked();
        State::of(self.dir, locked)
    }

    /// Takes the exclusive lock without waiting; false if another process holds it.
    pub fn try_lock(&mut self) -> Result<bool> {
        if self.lock.is_some() {
            return Ok(true);
        }
        match lock_dir(&self.path(), true) {
            Ok(Some(f)) => {
                self.lock = Some(f);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(PodError::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// The descriptor of the lock we hold, for processes that must hold the pod locked
    /// while they run (CNI plugins: see `net::plugin`).
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.lock.as_ref().map(|f| f.as_raw_fd())
    }

    /// The directory we hold locked, by descriptor (`/proc/self/fd/N`): what is read
    /// through it is the locked pod's, whatever its name has become meanwhile.
    pub fn locked_path(&self) -> Option<PathBuf> {
        self.lock_fd()
            .map(|fd| PathBuf::from(format!("/proc/self/fd/{fd}")))
    }

    /// Makes an empty file `name` in the pod's directory, locked by us, through its
    /// descriptor.
    pub fn touch_locked(&self, name: &str) -> Result<()> {
        use rustix::fs::OFlags;
        let lock = self.lock.as_ref().ok_or_else(|| self.not_locked())?;
        rustix::fs::openat(
            lock,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .map(drop)
        .map_err(|e| PodError::io(&self.path().join(name), e.into()))
    }

    /// Deletes the pod's directory, locked by us and now at `at` (see [`delete_tree`]).
    pub fn delete_locked(&self, at: &Path) -> Result<()> {
        let lock = self.lock.as_ref().ok_or_else(|| self.not_locked())?;
        delete_tree(lock, at)
    }

    fn not_locked(&self) -> PodError {
        PodError::WrongState {
            uuid: self.uuid.clone(),
            state: self.state().name().into(),
            reason: "it is not locked by this process".into(),
        }
    }

    /// Moves the pod, locked by us, out of every listing before its files are deleted:
    /// from then on it is not found. Returns its new path; the value must not be used
    /// as a pod any more, only to hold the lock until the files are gone.
    pub fn hide_for_deletion(&mut self) -> Result<PathBuf> {
        let from = self.path();
        let dest = self
            .pods
            .root
            .join(Dir::Garbage.name())
            .join(format!("{DELETING_PREFIX}{}", self.uuid));
        fs::rename(&from, &dest).map_err(|e| PodError::io(&from, e))?;
        Ok(dest)
    }

    /// Moves the pod to another state directory. The caller holds the lock (the lock
    /// follows the directory: it is on the inode, not the name).
    pub fn move_to(&mut self, to: Dir) -> Result<()> {
        let from = self.path();
        let dest = self.pods.path(to, &self.uuid);
        fs::rename(&from, &dest).map_err(|e| PodError::io(&from, e))?;
        self.dir = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves_and_locks() {
        let t = tempfile::tempdir().unwrap();
        let pods = Pods::open(t.path()).unwrap();
        let mut p = pods.create().unwrap();
        assert_eq!(p.state(), State::Embryo);
        p.move_to(Dir::Prepare).unwrap();
        let seen = pods.find(&p.uuid[..8]).unwrap();
        assert_eq!(seen.state(), State::Preparing);
        p.unlock();
        assert_eq!(pods.find(&p.uuid).unwrap().state(), State::AbortedPrepare);
        assert!(p.try_lock().unwrap());
        p.move_to(Dir::Run).unwrap();
        assert_eq!(pods.find(&p.uuid).unwrap().state(), State::Running);
        drop(p);
        assert_eq!(pods.all().unwrap()[0].state(), State::Exited);
    }

    #[test]
    fn a_pod_swapped_for_a_symlink_is_deleted_by_descriptor_and_the_link_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let pods = Pods::open(t.path()).unwrap();
        let p = pods.create().unwrap();
        let path = p.path();
        fs::create_dir_all(path.join("apps/a/upper")).unwrap();
        fs::write(path.join("apps/a/upper/file"), "pod's").unwrap();
        let victim = t.path().join("victim");
        fs::create_dir_all(victim.join("apps")).unwrap();
        fs::write(victim.join("precious"), "root's").unwrap();
        // Locked, then its name swapped for a symlink to the victim.
        let moved = t.path().join("moved");
        fs::rename(&path, &moved).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = p.delete_locked(&path).unwrap_err();
        assert!(
            e.to_string().contains("no longer the pod's directory"),
            "{e}"
        );
        // The locked directory lost its contents; the victim and the link kept theirs.
        assert_eq!(fs::read_dir(&moved).unwrap().count(), 0);
        assert_eq!(
            fs::read_to_string(victim.join("precious")).unwrap(),
            "root's"
        );
        assert!(victim.join("apps").is_dir());
        assert!(fs::symlink_metadata(&path).unwrap().is_symlink());
        // And a symlink in a pod's place is never a pod, nor lockable.
        let listed: Vec<String> = pods.all().unwrap().into_iter().map(|p| p.uuid).collect();
        assert!(listed.is_empty(), "{listed:?}");
        assert_eq!(pods.strays(), vec![path.clone()]);
        assert!(lock_dir(&path, true).is_err());
    }

    #[test]
    fn a_locked_pod_is_deleted_by_descriptor() {
        let t = tempfile::tempdir().unwrap();
        let pods = Pods::open(t.path()).unwrap();
        let mut p = pods.create().unwrap();
        fs::create_dir_all(p.path().join("apps/a/upper/d")).unwrap();
        std::os::unix::fs::symlink("/etc", p.path().join("apps/a/upper/etc")).unwrap();
        p.touch_locked(crate::layout::GC_MARK).unwrap();
        assert!(p.paths().gc_mark().is_file());
        p.move_to(Dir::Garbage).unwrap();
        p.delete_locked(&p.path()).unwrap();
        assert!(!p.path().exists());
        assert!(Path::new("/etc/passwd").exists());
    }

    #[test]
    fn prefixes() {
        let t = tempfile::tempdir().unwrap();
        let pods = Pods::open(t.path()).unwrap();
        assert!(matches!(pods.find("abc"), Err(PodError::NotFound(_))));
        let a = pods.create().unwrap();
        assert_eq!(pods.find(&a.uuid[..4]).unwrap().uuid, a.uuid);
        assert!(matches!(pods.find(""), Err(PodError::NotFound(_))));
    }
}
