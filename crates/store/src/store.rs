//! The store's directory layout, its locks, and temporary work areas.
//!
//! ```text
//! store/blobs/{sha256,sha512}/<hex>   immutable content (manifests, configs, ACIs)
//! store/images/<id>/                  record.json, manifest, config, last-used
//! store/layers/<key>/                 rootfs/ (read-only once committed), tree, meta.json
//! store/rendered/<id>/rootfs          flattened trees, only where overlay cannot serve
//! store/refs/<escaped name:tag>       image ID a tag points at
//! store/tmp/  store/locks/
//! ```

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest};
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::lock::{FileLock, Mode};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store under `dir` (the global `--dir`), creating its layout. The store is
    /// readable by root only: image content (setuid files among it) must never be
    /// reachable by other host users.
    ///
    /// The data dir and every directory of the store must be the caller's alone, never
    /// symlinks (`datadir`): root deletes what lies there.
    pub fn open(dir: &Path) -> Result<Store> {
        let dir = crate::datadir::prepare(dir)?;
        let root = dir.join("store");
        let found = crate::datadir::ensure(&root, 0o700)?;
        if found.mode() & 0o7777 != 0o700 {
            fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).at(&root)?;
        }
        let store = Store { root };
        // Parents before their children.
        for sub in [
            "blobs",
            "blobs/sha256",
            "blobs/sha512",
            "images",
            "layers",
            "rendered",
            "refs",
            "tmp",
            "locks",
        ] {
            crate::datadir::ensure(&store.root.join(sub), 0o755)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    pub fn image_dir(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(id.key())
    }

    pub fn layer_dir(&self, key: &Digest) -> PathBuf {
        self.root.join("layers").join(key.key())
    }

    pub fn rendered_dir(&self, id: &Digest) -> PathBuf {
        self.root.join("rendered").join(id.key())
    }

    pub(crate) fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(name)
    }

    /// Held (shared) by anything that adds to the store or pins images for a pod; held
    /// exclusively by gc, so gc never removes what is being added or about to be used.
    pub fn lock_shared(&self) -> Result<FileLock> {
        FileLock::acquire(&self.lock_path("store"), Mode::Shared)
    }

    pub fn lock_exclusive(&self) -> Result<FileLock> {
        FileLock::acquire(&self.lock_path("store"), Mode::Exclusive)
    }

    /// Serialises work on one key (a layer being extracted, an image being committed).
    pub fn lock_key(&self, kind: &str, key: &Digest) -> Result<FileLock> {
        FileLock::acquire(
            &self.lock_path(&format!("{kind}-{}", key.key())),
            Mode::Exclusive,
        )
    }

    /// A fresh temporary directory, locked for as long as the returned value lives, and
    /// removed when it is dropped. A process killed mid-import leaves one behind, unlocked:
    /// `clean_tmp` removes those.
    pub fn tmp_dir(&self, purpose: &str) -> Result<TmpDir> {
        let base = self.root.join("tmp");
        loop {
            let path = base.join(format!("{purpose}-{}", fsutil::random_suffix()));
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).at(&path),
            }
            let lock = FileLock::on(fs::File::open(&path).at(&path)?, Mode::Exclusive, &path)?;
            return Ok(TmpDir { path, _lock: lock });
        }
    }

    /// Removes temporary directories whose owner is gone.
    pub fn clean_tmp(&self) -> Result<usize> {
        let base = self.root.join("tmp");
        let mut removed = 0;
        for ent in fs::read_dir(&base).at(&base)? {
            let ent = ent.at(&base)?;
            let path = ent.path();
            let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                let f = match fs::File::open(&path) {
                    Ok(f) => f,
                    Err(_) => continue,
                };
                if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                    .is_err()
                {
                    continue; // its owner is still at work
                }
            }
            fsutil::remove_tree(&path)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Writes an immutable blob unless it is already there.
    pub fn put_blob(&self, data: &[u8], algo: Algorithm) -> Result<Digest> {
        let mut h = crate::digest::Hasher::new(algo);
        h.update(data);
        let d = h.finish();
        let p = self.blob_path(&d);
        if !p.exists() {
            fsutil::write_atomic(&p, data)?;
        }
        Ok(d)
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).at(&p)
    }

    /// Commits a finished directory by renaming it to `dest`. If another process committed
    /// the same content first, ours is discarded: both imports succeed, one copy is kept.
    pub(crate) fn commit_dir(&self, from: &Path, dest: &Path) -> Result<bool> {
        match fs::rename(from, dest) {
            Ok(()) => {
                fsutil::fsync_dir(dest.parent().expect("dest has a parent"))?;
                Ok(true)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
                Ok(false)
            }
            Err(e) => Err(e).at(dest),
        }
    }
}

pub struct TmpDir {
    path: PathBuf,
    _lock: FileLock,
}

impl TmpDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fsutil::remove_tree(&self.path);
    }
}
