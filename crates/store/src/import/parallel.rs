//! An image's layers imported side by side, all or nothing: every missing layer is staged
//! (downloaded or read, decompressed, hashed, extracted into tmp/) on a few threads, and
//! only when all of them are sound are they committed. A failing layer stops the others
//! early, and nothing of a refused image reaches the store.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::oci::BlobSource;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::layers::{Kind, LayerMeta, StagedLayer};
use crate::store::Store;

/// One layer of a manifest: its key (the uncompressed digest) and the blob it comes from.
#[derive(Debug, Clone)]
pub struct LayerJob {
    pub key: Digest,
    pub blob: Digest,
}

/// Layers staged at once (override: VESSEL_PARALLEL_LAYERS). Each already uses two
/// threads; more than a few in flight only helps when the network is the bottleneck.
const DEFAULT_PARALLEL: usize = 3;

fn parallelism() -> usize {
    std::env::var("VESSEL_PARALLEL_LAYERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PARALLEL)
}

/// Imports every layer of `jobs` that the store lacks; returns their metadata in order.
pub fn import_layers(
    store: &Store,
    src: &dyn BlobSource,
    image: &str,
    jobs: &[LayerJob],
) -> Result<Vec<LayerMeta>> {
    // A layer listed twice is imported once.
    let mut unique: Vec<&LayerJob> = Vec::new();
    for j in jobs {
        if !unique.iter().any(|u| u.key == j.key) && !store.has_layer(&j.key) {
            unique.push(j);
        }
    }
    let mut committed: HashMap<Digest, LayerMeta> = HashMap::new();
    if let [only] = unique.as_slice() {
        // A single missing layer is committed under the key lock it was staged under, so
        // a second process importing it at the same time waits and then skips it.
        let _lock = store.lock_key("layer", &only.key)?;
        if !store.has_layer(&only.key) {
            let staged = stage(store, src, image, only, &Arc::new(AtomicBool::new(false)))?;
            committed.insert(only.key.clone(), store.commit_layer(staged)?);
        }
    } else {
        for layer in stage_all(store, src, image, &unique)?.into_iter().flatten() {
            let key = layer.key.clone();
            let _lock = store.lock_key("layer", &key)?;
            committed.insert(key, store.commit_layer(layer)?);
        }
    }
    jobs.iter()
        .map(|j| match committed.get(&j.key) {
            Some(m) => Ok(m.clone()),
            None => store.layer_meta(&j.key),
        })
        .collect()
}

/// Stages the layers on up to `parallelism()` threads. `None` for a layer another process
/// committed meanwhile.
fn stage_all(
    store: &Store,
    src: &dyn BlobSource,
    image: &str,
    jobs: &[&LayerJob],
) -> Result<Vec<Option<StagedLayer>>> {
    let next = AtomicUsize::new(0);
    let abort = Arc::new(AtomicBool::new(false));
    let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
    let results: Mutex<Vec<Option<StagedLayer>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let threads = parallelism().min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || abort.load(Ordering::SeqCst) {
                    return;
                }
                match stage_one(store, src, image, jobs[i], &abort) {
                    Ok(staged) => results.lock().unwrap()[i] = staged,
                    Err(e) => {
                        let was_aborted = abort.swap(true, Ordering::SeqCst);
                        let mut first = first_error.lock().unwrap();
                        if !was_aborted && first.is_none() {
                            *first = Some(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e); // the staged layers are dropped with their tmp dirs
    }
    Ok(results.into_inner().unwrap())
}

fn stage_one(
    store: &Store,
    src: &dyn BlobSource,
    image: &str,
    job: &LayerJob,
    abort: &Arc<AtomicBool>,
) -> Result<Option<StagedLayer>> {
    // The key lock makes a second process importing the same layer wait, then skip it
    // if the first one has committed it by then.
    let _lock = store.lock_key("layer", &job.key)?;
    if store.has_layer(&job.key) {
        return Ok(None);
    }
    stage(store, src, image, job, abort).map(Some)
}

fn stage(
    store: &Store,
    src: &dyn BlobSource,
    image: &str,
    job: &LayerJob,
    abort: &Arc<AtomicBool>,
) -> Result<StagedLayer> {
    let input = Abortable {
        inner: src.open(&job.blob)?,
        abort: abort.clone(),
    };
    store.stage_layer(
        image,
        input,
        Kind::Oci {
            key: &job.key,
            blob: Some(&job.blob),
        },
    )
}

/// Stops reading as soon as another layer of the same image has failed.
struct Abortable {
    inner: Box<dyn Read + Send>,
    abort: Arc<AtomicBool>,
}

impl Read for Abortable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(io::Error::other(
                "stopped: another layer of the image failed",
            ));
        }
        self.inner.read(buf)
    }
}
