//! `ListenEvents`' source: the pod and image directories watched with inotify, and each
//! running pod's init watched with a pidfd. Nothing is polled. A pod moves between state
//! directories by rename and rewrites its `state.json` by rename, so every step is an
//! inotify event:
//!
//! | seen | event |
//! |---|---|
//! | a pod appears in `pods/prepared/` | POD_PREPARED |
//! | a pod appears in `pods/run/` | POD_STARTED |
//! | its `state.json` records an app's pid / exit status | APP_STARTED / APP_EXITED |
//! | its `state.json` records the end, its init exits (pidfd), or it reaches `exited-garbage/` or `garbage/` | POD_EXITED (once) |
//! | its directory is deleted from `exited-garbage/` or `garbage/` | POD_GARBAGE_COLLECTED |
//! | an image directory appears in / leaves `store/images/` | IMAGE_IMPORTED / IMAGE_REMOVED |
//!
//! An event's `from` is the app's name for app events, the image's name for image events,
//! and the pod's app names joined by `,` for pod events (pods have no name of their own).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use pod::state::PodState as Recorded;
use pod::Dir;
use tokio::sync::{broadcast, mpsc};

use crate::v1alpha::{Event, EventFilter, EventType, KeyValue};

/// Room for bursts; a subscriber that falls further behind loses events (and is told).
const CAPACITY: usize = 4096;

enum Watched {
    PodState(Dir),
    Pod(String),
    Images,
}

#[derive(Default)]
struct Tracked {
    started: HashSet<String>,
    exited_apps: HashSet<String>,
    exited: bool,
    watching_init: bool,
    from: String,
}

struct Watcher {
    vessel_dir: PathBuf,
    tx: broadcast::Sender<Event>,
    pods: HashMap<String, Tracked>,
    wds: HashMap<WatchDescriptor, Watched>,
    image_names: HashMap<String, String>,
    init_exits: mpsc::UnboundedSender<String>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Watcher {
    fn emit(&self, kind: EventType, id: &str, from: &str, data: Vec<(&str, String)>) {
        let _ = self.tx.send(Event {
            r#type: kind as i32,
            id: id.to_string(),
            from: from.to_string(),
            time: now(),
            data: data
                .into_iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: v,
                })
                .collect(),
        });
    }

    fn pod_path(&self, uuid: &str) -> Option<PathBuf> {
        let pods = pod::layout::pods(&self.vessel_dir);
        [Dir::Run, Dir::ExitedGarbage, Dir::Garbage, Dir::Prepared]
            .iter()
            .map(|d| pods.join(d.name()).join(uuid))
            .find(|p| p.is_dir())
    }

    /// Compares the pod's recorded state with what was already told.
    fn refresh(&mut self, uuid: &str) {
        let Some(dir) = self.pod_path(uuid) else {
            return;
        };
        let Ok(rec) = Recorded::load(&dir) else {
            return;
        };
        let mut out = Vec::new();
        let t = self.pods.entry(uuid.to_string()).or_default();
        t.from = rec
            .apps
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        for a in &rec.apps {
            if (a.pid.is_some() || a.exit_code.is_some()) && t.started.insert(a.name.clone()) {
                out.push((EventType::AppStarted, a.name.clone(), vec![]));
            }
            if let Some(code) = a.exit_code {
                if t.exited_apps.insert(a.name.clone()) {
                    out.push((
                        EventType::AppExited,
                        a.name.clone(),
                        vec![("exit_code", code.to_string())],
                    ));
                }
            }
        }
        let mut watch_init = None;
        if rec.finished.is_some() && !t.exited {
            t.exited = true;
            out.push((
                EventType::PodExited,
                t.from.clone(),
                vec![("exit_code", rec.exit_code().to_string())],
            ));
        } else if !t.exited && !t.watching_init {
            if let Some(pid) = rec.pid {
                t.watching_init = true;
                watch_init = Some((pid, rec.pid_start));
            }
        }
        for (kind, from, data) in out {
            self.emit(kind, uuid, &from, data);
        }
        if let Some((pid, start)) = watch_init {
            let tx = self.init_exits.clone();
            let uuid = uuid.to_string();
            tokio::spawn(async move {
                wait_for_exit(pid, start).await;
                let _ = tx.send(uuid);
            });
        }
    }

    /// The init is gone: the pod has ended, whether or not its state says so yet.
    fn init_exited(&mut self, uuid: &str) {
        self.refresh(uuid);
        let t = self.pods.entry(uuid.to_string()).or_default();
        if !t.exited {
            t.exited = true;
            let from = t.from.clone();
            self.emit(EventType::PodExited, uuid, &from, vec![]);
        }
    }

    fn on_event(&mut self, watches: &mut inotify::Watches, ev: inotify::Event<std::ffi::OsString>) {
        let Some(what) = self.wds.get(&ev.wd) else {
            return;
        };
        let name = ev
            .name
            .as_ref()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let arrived = ev.mask.intersects(EventMask::MOVED_TO | EventMask::CREATE);
        let left = ev
            .mask
            .intersects(EventMask::MOVED_FROM | EventMask::DELETE);
        match what {
            Watched::PodState(dir) => {
                let dir = *dir;
                if name.len() != 36 {
                    return;
                }
                match (dir, arrived, left) {
                    (Dir::Prepared, true, _) => {
                        let from = self.app_names_of(&name);
                        self.emit(EventType::PodPrepared, &name, &from, vec![]);
                    }
                    (Dir::Run, true, _) => {
                        let from = self.app_names_of(&name);
                        self.emit(EventType::PodStarted, &name, &from, vec![]);
                        self.watch_pod(watches, &name);
                        self.refresh(&name);
                    }
                    (Dir::ExitedGarbage | Dir::Garbage, true, _) => {
                        self.refresh(&name);
                        let t = self.pods.entry(name.clone()).or_default();
                        if !t.exited && t.started.len() + t.exited_apps.len() > 0 {
                            t.exited = true;
                            let from = t.from.clone();
                            self.emit(EventType::PodExited, &name, &from, vec![]);
                        }
                    }
                    (Dir::ExitedGarbage | Dir::Garbage, _, true)
                        if ev.mask.contains(EventMask::DELETE) =>
                    {
                        let from = self.pods.remove(&name).map(|t| t.from).unwrap_or_default();
                        self.emit(EventType::PodGarbageCollected, &name, &from, vec![]);
                    }
                    _ => {}
                }
            }
            Watched::Pod(uuid) => {
                if name == "state.json" && arrived {
                    let uuid = uuid.clone();
                    self.refresh(&uuid);
                }
                if ev.mask.contains(EventMask::IGNORED) {
                    self.wds.remove(&ev.wd);
                }
            }
            Watched::Images => {
                if arrived {
                    let from = image_name(&self.vessel_dir, &name).unwrap_or_default();
                    self.image_names.insert(name.clone(), from.clone());
                    self.emit(EventType::ImageImported, &name, &from, vec![]);
                } else if left {
                    let from = self.image_names.remove(&name).unwrap_or_default();
                    self.emit(EventType::ImageRemoved, &name, &from, vec![]);
                }
            }
        }
    }

    fn app_names_of(&self, uuid: &str) -> String {
        self.pod_path(uuid)
            .and_then(|d| Recorded::load(&d).ok())
            .map(|r| {
                r.apps
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }

    fn watch_pod(&mut self, watches: &mut inotify::Watches, uuid: &str) {
        let dir = pod::layout::pods(&self.vessel_dir)
            .join(Dir::Run.name())
            .join(uuid);
        if let Ok(wd) = watches.add(&dir, WatchMask::MOVED_TO | WatchMask::CREATE) {
            self.wds.insert(wd, Watched::Pod(uuid.to_string()));
        }
    }
}

fn image_name(vessel_dir: &Path, id: &str) -> Option<String> {
    let store = store::Store::open(vessel_dir).ok()?;
    let d: store::Digest = id.parse().ok()?;
    store.image_record(&d).ok().map(|r| r.name)
}

/// Resolves when the process `pid` (started at `start`) has exited.
async fn wait_for_exit(pid: i32, start: Option<u64>) {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::NONBLOCK) else {
        return;
    };
    // A recycled pid is not the pod's init: treat as gone.
    if start.is_some() && pod::state::process_start_time(pid) != start {
        return;
    }
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same.
    if let Ok(afd) = unsafe { tokio::io::unix::AsyncFd::register(fd) } {
        let _ = afd.readable().await;
    }
}

/// Starts watching; the returned sender hands out receivers for subscribers.
pub fn start(vessel_dir: &Path) -> std::io::Result<broadcast::Sender<Event>> {
    let (tx, _) = broadcast::channel(CAPACITY);
    let inotify = Inotify::init()?;
    let mut watches = inotify.watches();
    let mut wds = HashMap::new();
    let pods = pod::layout::pods(vessel_dir);
    let mask = WatchMask::MOVED_TO | WatchMask::MOVED_FROM | WatchMask::CREATE | WatchMask::DELETE;
    for d in [Dir::Prepared, Dir::Run, Dir::ExitedGarbage, Dir::Garbage] {
        let wd = watches.add(pods.join(d.name()), mask)?;
        wds.insert(wd, Watched::PodState(d));
    }
    let images = vessel_dir.join("store").join("images");
    let wd = watches.add(
        &images,
        WatchMask::MOVED_TO | WatchMask::MOVED_FROM | WatchMask::DELETE,
    )?;
    wds.insert(wd, Watched::Images);
    let (init_tx, mut init_rx) = mpsc::unbounded_channel();
    let mut w = Watcher {
        vessel_dir: vessel_dir.to_path_buf(),
        tx: tx.clone(),
        pods: HashMap::new(),
        wds,
        image_names: HashMap::new(),
        init_exits: init_tx,
    };
    // What already runs: watched from now on, without events for the past.
    if let Ok(rd) = std::fs::read_dir(pods.join(Dir::Run.name())) {
        for e in rd.flatten() {
            if let Some(uuid) = e.file_name().to_str().map(str::to_string) {
                w.watch_pod(&mut watches, &uuid);
                let (tx, _rx) = broadcast::channel(1);
                let real = std::mem::replace(&mut w.tx, tx);
                w.refresh(&uuid);
                w.tx = real;
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(&images) {
        for e in rd.flatten() {
            if let Some(id) = e.file_name().to_str() {
                if let Some(n) = image_name(vessel_dir, id) {
                    w.image_names.insert(id.to_string(), n);
                }
            }
        }
    }
    let mut stream = inotify.into_event_stream(vec![0u8; 16384])?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(Ok(ev)) => w.on_event(&mut watches, ev),
                    Some(Err(e)) => eprintln!("api-service: inotify: {e}"),
                    None => break,
                },
                Some(uuid) = init_rx.recv() => w.init_exited(&uuid),
            }
        }
    });
    Ok(tx)
}

/// Whether a subscriber with `filter` wants `e` (conditions ANDed).
pub fn wanted(e: &Event, f: &EventFilter) -> bool {
    (f.types.is_empty() || f.types.contains(&e.r#type))
        && (f.ids.is_empty() || f.ids.contains(&e.id))
        && (f.names.is_empty() || f.names.contains(&e.from))
        && (f.since_time == 0 || e.time >= f.since_time)
        && (f.until_time == 0 || e.time <= f.until_time)
}
