//! Pod directories and their states (rkt's model). A pod's state is the directory it sits
//! in plus a flock on it: the process that prepares or supervises a pod holds the lock, so
//! the kernel releasing it when that process dies is the exit event. Moves between states
//! are atomic renames; the loser of a race sees ENOENT and treats it as normal.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

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

impl Pods {
    pub fn open(dir: &Path) -> Result<Pods> {
        let root = dir.join("pods");
        for d in Dir::ALL {
            let p = root.join(d.name());
            if !p.is_dir() {
                fs::create_dir_all(&p).map_err(|e| PodError::io(&p, e))?;
            }
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
        self.create_with(&uuid::Uuid::new_v4().to_string())
    }

    /// A new pod with a UUID chosen beforehand.
    pub fn create_with(&self, uuid: &str) -> Result<PodDir> {
        let uuid = uuid.to_string();
        let path = self.path(Dir::Embryo, &uuid);
        fs::create_dir(&path).map_err(|e| PodError::io(&path, e))?;
        let lock = lock_dir(&path, true)?.expect("a new directory is not locked by anyone");
        Ok(PodDir {
            uuid,
            dir: Dir::Embryo,
            pods: self.clone(),
            lock: Some(lock),
        })
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
                if uuid::Uuid::parse_str(&name).is_ok() {
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

    /// Finds a pod by UUID or unique prefix.
    pub fn find(&self, query: &str) -> Result<PodDir> {
        let q = query.trim();
        if q.is_empty() {
            return Err(PodError::NotFound(query.to_string()));
        }
        let mut hits: Vec<PodDir> = self
            .all()?
            .into_iter()
            .filter(|p| p.uuid.starts_with(q))
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

fn lock_dir(path: &Path, exclusive: bool) -> Result<Option<File>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Err(PodError::io(path, e)),
    };
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(&f, op) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(PodError::io(path, e.into())),
    }
}

impl PodDir {
    pub fn vessel_dir(&self) -> &Path {
        self.pods.vessel_dir()
    }

    pub fn path(&self) -> PathBuf {
        self.pods.path(self.dir, &self.uuid)
    }

    /// Looks for the pod again (it may have moved since it was listed).
    pub fn refresh(&mut self) -> Result<()> {
        for d in Dir::ALL {
            if self.pods.path(d, &self.uuid).is_dir() {
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
        State::of(self.dir, self.is_locked())
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

    /// Gives the lock's file to the caller (a supervisor that outlives this value).
    pub fn take_lock(&mut self) -> Option<File> {
        self.lock.take()
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
    fn prefixes() {
        let t = tempfile::tempdir().unwrap();
        let pods = Pods::open(t.path()).unwrap();
        assert!(matches!(pods.find("abc"), Err(PodError::NotFound(_))));
        let a = pods.create().unwrap();
        assert_eq!(pods.find(&a.uuid[..4]).unwrap().uuid, a.uuid);
        assert!(matches!(pods.find(""), Err(PodError::NotFound(_))));
    }
}
