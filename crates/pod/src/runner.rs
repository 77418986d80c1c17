//! Preparing a pod (stage0) and supervising it while it runs.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use exec::plan::{AppPlan, NetMode, PodPlan, RootfsPlan};
use exec::proto::{Event, ExitStatus};
use exec::supervisor::launch::{launch_with, LaunchOptions};
use exec::supervisor::supervise::{self, Observer, Stream};
use schema::ImageManifest;

use crate::dir::{Dir, PodDir, Pods};
use crate::error::{PodError, Result};
use crate::request::PodRequest;
use crate::state::{process_start_time, AppState, PodState};

/// An image resolved from the store for one app.
pub struct ResolvedImage {
    pub id: String,
    pub name: String,
    pub manifest: ImageManifest,
    /// Overlay lower directories, topmost first.
    pub lower: Vec<PathBuf>,
    /// Layer keys and IDs to keep from gc while the pod exists.
    pub pinned: Vec<String>,
}

pub const PLAN_FILE: &str = "plan.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PodError + '_ {
    move |e| PodError::io(path, e)
}

/// An app, checked and translated, before anything is written.
struct PlannedApp {
    name: String,
    spec: crate::spec::AppSpec,
    runtime: schema::RuntimeApp,
    state: AppState,
    lower: Vec<PathBuf>,
    hooks: Hooks,
}

/// The appc event handlers of an app.
#[derive(Default)]
struct Hooks {
    pre_start: Option<Vec<String>>,
    post_stop: Option<Vec<String>>,
}

fn hooks_of(app: Option<&schema::App>) -> Hooks {
    let mut h = Hooks::default();
    for e in app.iter().flat_map(|a| a.event_handlers.iter()) {
        let argv = e.exec.argv().to_vec();
        match e.name {
            schema::EventHandlerName::PreStart => h.pre_start = Some(argv),
            schema::EventHandlerName::PostStop => h.post_stop = Some(argv),
        }
    }
    h
}

fn ident(s: &str) -> Option<schema::AcIdentifier> {
    s.parse()
        .ok()
        .or_else(|| schema::AcIdentifier::sanitize(s).ok())
}

/// Creates the pod's directory with its manifest, plan, state, the apps' writable layers
/// and empty volumes. Everything is checked first: bad input leaves nothing behind.
/// Returns the pod in prepared/, still locked by us.
pub fn prepare(pods: &Pods, req: &PodRequest, images: Vec<ResolvedImage>) -> Result<PodDir> {
    if req.apps.is_empty() {
        return Err(PodError::Invalid("no image given".into()));
    }
    if req.interactive && req.apps.len() > 1 {
        return Err(PodError::Invalid(format!(
            "--interactive needs a pod of one app; this one has {}",
            req.apps.len()
        )));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let hostname = req
        .hostname
        .clone()
        .unwrap_or_else(|| format!("vessel-{uuid}"));
    let mut names = HashSet::new();
    let mut implicit = Vec::new();
    let mut planned = Vec::new();
    let mut pinned = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for (req_app, image) in req.apps.iter().zip(images) {
        let name = match &req_app.name {
            Some(n) => n
                .parse::<schema::AcName>()
                .map_err(|e| PodError::Invalid(format!("--name {n:?}: {e}")))?
                .to_string(),
            None => schema::app_name_for_image(&image.name)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "app".into()),
        };
        if !names.insert(name.clone()) {
            return Err(PodError::Invalid(format!(
                "two apps are named {name:?}; name them apart with --name"
            )));
        }
        let mounts = crate::volumes::app_mounts(
            &name,
            &req.volumes,
            req_app,
            &image.manifest,
            &mut implicit,
        )?;
        let mut with_volumes = Vec::new();
        for m in &mounts {
            used.insert(m.volume.clone());
            let v = req
                .volumes
                .iter()
                .chain(implicit.iter())
                .find(|v| v.name.as_str() == m.volume)
                .cloned()
                .expect("mounts name known volumes");
            with_volumes.push((m.clone(), v));
        }
        let spec = crate::spec::build(
            &image.manifest,
            req_app,
            req,
            &name,
            &hostname,
            &with_volumes,
        )?;
        let app = crate::spec::app_of(&image.manifest, req_app).cloned();
        let mut runtime = schema::RuntimeApp::new(
            name.parse().expect("checked above"),
            schema::RuntimeImage {
                name: ident(&image.name),
                id: image.id.parse().ok(),
                labels: Default::default(),
            },
        );
        runtime.read_only_root_fs = req_app.readonly_rootfs;
        runtime.mounts = mounts
            .iter()
            .filter_map(|m| {
                Some(schema::Mount {
                    volume: m.volume.parse().ok()?,
                    path: m.target.clone(),
                    app_volume: None,
                })
            })
            .collect();
        for (k, v) in &req_app.annotations {
            let key = k
                .parse()
                .map_err(|e| PodError::Invalid(format!("--annotation {k:?}: {e}")))?;
            runtime.annotations.set(key, v.clone());
        }
        let mut app_with_labels = app.clone();
        if let Some(a) = app_with_labels.as_mut() {
            for (k, v) in &req_app.labels {
                a.user_labels.insert(k.clone(), v.clone());
            }
        }
        runtime.app =
            app_with_labels.filter(|_| req_app.app.is_some() || !req_app.labels.is_empty());
        let state = AppState {
            name: name.clone(),
            image_id: image.id.clone(),
            image_name: image.name.clone(),
            annotations: req_app.annotations.iter().cloned().collect(),
            labels: req_app.labels.iter().cloned().collect(),
            ..Default::default()
        };
        for key in image.pinned {
            if !pinned.contains(&key) {
                pinned.push(key);
            }
        }
        planned.push(PlannedApp {
            name,
            spec,
            runtime,
            state,
            lower: image.lower,
            hooks: hooks_of(app.as_ref()),
        });
    }
    crate::volumes::check_volumes(&req.volumes, &used)?;
    let mut volumes = req.volumes.clone();
    volumes.extend(implicit);
    let mut manifest = schema::PodManifest::new();
    manifest.apps = planned.iter().map(|p| p.runtime.clone()).collect();
    manifest.volumes = volumes.clone();
    for (k, v) in &req.annotations {
        if let Ok(key) = k.parse() {
            manifest.annotations.set(key, v.clone());
        }
    }
    let manifest_bytes = manifest
        .to_vec()
        .map_err(|e| PodError::Invalid(format!("pod manifest: {e}")))?;

    if req.private_users {
        crate::volumes::check_userns_owners(&volumes, crate::userns::RANGE)?;
    }
    for p in &planned {
        for w in &p.spec.warnings {
            eprintln!("vessel: warning: app {}: {w}", p.name);
        }
    }

    // Checked: now write.
    let userns_slot = if req.private_users {
        Some(crate::userns::allocate(pods.vessel_dir(), &uuid)?)
    } else {
        None
    };
    let userns = userns_slot.map(|s| exec::plan::UserNamespace {
        base: crate::userns::base_of(s),
        size: crate::userns::RANGE,
    });
    // Until the pod's state records it, a failure gives the range back.
    let mut slot_guard = crate::userns::SlotGuard::new(pods.vessel_dir(), userns_slot, &uuid);
    // The pod's root in its user namespace (host gid `base`) must pass through the pod's
    // directory to reach its stage1 mount point and empty volumes.
    let mut pod = pods.create_with(&uuid, userns.map(|u| u.base))?;
    pod.move_to(Dir::Prepare)?;
    let dir = pod.path();
    let mut apps = Vec::new();
    let mut app_states = Vec::new();
    for p in planned {
        let app_dir = dir.join("apps").join(&p.name);
        for sub in ["upper", "work"] {
            fs::create_dir_all(app_dir.join(sub)).map_err(io(&app_dir))?;
        }
        apps.push(AppPlan {
            name: p.name.clone(),
            // Relative to the pod directory, which moves between states; made absolute at run.
            rootfs: RootfsPlan {
                lower: p.lower,
                upper: PathBuf::from(format!("apps/{}/upper", p.name)),
                work: PathBuf::from(format!("apps/{}/work", p.name)),
            },
            spec: p.spec.spec,
            user: Some(p.spec.user),
            group: p.spec.group,
            terminal: req.interactive,
            pre_start: p.hooks.pre_start,
            post_stop: p.hooks.post_stop,
            seccomp_bpf: None,
            stdio: [-1; 3],
            cgroup_fds: Vec::new(),
            cgroup_v2_dir: None,
            cgroup_v2_procs: None,
        });
        app_states.push(p.state);
    }
    for v in volumes
        .iter()
        .filter(|v| v.kind == schema::VolumeKind::Empty)
    {
        let vdir = dir.join("volumes").join(v.name.as_str());
        fs::create_dir_all(&vdir).map_err(io(&vdir))?;
        // In a user namespace, the volume's owner is the host id the pod's id maps to
        // (checked above to lie in the pod's range).
        let shift = userns.map(|u| u.base).unwrap_or(0);
        let owner = |id: u32, what: &str| {
            shift.checked_add(id).ok_or_else(|| {
                PodError::Invalid(format!(
                    "volume {:?}: {what} {id} does not fit the pod's user namespace",
                    v.name.as_str()
                ))
            })
        };
        std::os::unix::fs::chown(
            &vdir,
            Some(owner(v.uid_or_default(), "uid")?),
            Some(owner(v.gid_or_default(), "gid")?),
        )
        .map_err(io(&vdir))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&vdir, fs::Permissions::from_mode(v.mode_or_default()))
            .map_err(io(&vdir))?;
    }
    let manifest_path = dir.join("pod");
    fs::write(&manifest_path, manifest_bytes).map_err(io(&manifest_path))?;
    fs::create_dir(dir.join("stage1")).map_err(io(&dir))?;
    fs::create_dir(dir.join("logs")).map_err(io(&dir))?;
    let resolv_conf = if req.net == NetMode::Host {
        fs::read_to_string("/etc/resolv.conf").ok()
    } else {
        None
    };
    let plan = PodPlan {
        uuid: pod.uuid.clone(),
        hostname: hostname.clone(),
        net: req.net,
        ipc_private: req.ipc == crate::request::IpcMode::Private,
        // Recorded relative: the pod moves between state directories.
        stage1_dir: PathBuf::from("stage1"),
        apps,
        init_cgroup_fds: Vec::new(),
        userns,
        trace_origin: None,
        cpus: None,
        resolv_conf,
    };
    let plan_path = dir.join(PLAN_FILE);
    fs::write(&plan_path, serde_json::to_vec(&plan).expect("serialisable"))
        .map_err(io(&plan_path))?;
    let state = PodState {
        uuid: pod.uuid.clone(),
        created: Some(chrono::Utc::now()),
        hostname,
        net: match req.net {
            NetMode::None => "none".into(),
            NetMode::Host => "host".into(),
        },
        apps: app_states,
        userns_slot,
        pinned,
        ..Default::default()
    };
    state.save(&dir)?;
    slot_guard.disarm();
    pod.move_to(Dir::Prepared)?;
    Ok(pod)
}

/// Where the apps' output goes besides the logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Copy to our stdout and stderr (a foreground `run`).
    Terminal,
    /// Logs only (a detached pod).
    None,
}

struct PodObserver<'a> {
    dir: PathBuf,
    state: &'a mut PodState,
    logs: Vec<Log>,
    attach: Attach,
    init_pid: i32,
    /// Told once every app has started (or one failed): for --detach.
    on_started: Option<OnStarted<'a>>,
    started: usize,
}

impl PodObserver<'_> {
    fn notify(&mut self, r: std::result::Result<(), String>) {
        if let Some(f) = self.on_started.take() {
            f(r);
        }
    }
}

impl Observer for PodObserver<'_> {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Started { app, pid } => {
                exec::trace::mark("app started");
                if let Some(a) = self.state.apps.get_mut(*app) {
                    a.pid = host_pid(self.init_pid, *pid);
                }
                self.started += 1;
                // One write once every app runs (with their pids), not one per app.
                if self.started == self.state.apps.len() {
                    let _ = self.state.save(&self.dir);
                    self.notify(Ok(()));
                }
            }
            Event::Failed { app, message } => {
                let name = self
                    .state
                    .apps
                    .get(*app)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                if let Some(a) = self.state.apps.get_mut(*app) {
                    a.error = Some(message.clone());
                    a.exit_code = Some(start_failure_code(message));
                }
                self.state.error = Some(format!("app {name}: {message}"));
                let _ = self.state.save(&self.dir);
                self.notify(Err(format!("app {name}: {message}")));
            }
            Event::Exited { app, status } => {
                exec::trace::mark("app exited");
                let st = ExitStatus::from_wait(*status);
                if let Some(a) = self.state.apps.get_mut(*app) {
                    a.exit_code = Some(st.code);
                    a.signal = st.signal;
                    a.pid = None;
                }
                // The last exit is recorded with the pod's end; earlier ones now, so
                // `status` shows them while the other apps run.
                if self.state.apps.iter().any(|a| a.pid.is_some()) {
                    let _ = self.state.save(&self.dir);
                }
            }
            Event::Warning { message } => eprintln!("vessel: warning: {message}"),
            // The supervisor's own business.
            Event::Done => {}
            Event::Error { message } => {
                self.state.error = Some(message.clone());
                let _ = self.state.save(&self.dir);
                self.notify(Err(message.clone()));
            }
        }
    }

    fn output(&mut self, app: usize, stream: Stream, data: &[u8]) {
        // Log files are made on first output: a silent app leaves none to create or delete.
        if let Some(slot) = self.logs.get_mut(app) {
            if let Log::Pending(path) = slot {
                *slot = match fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&*path)
                {
                    Ok(f) => Log::Open(f),
                    Err(_) => Log::Failed,
                };
            }
            if let Log::Open(f) = slot {
                let _ = f.write_all(data);
            }
        }
        if self.attach == Attach::Terminal {
            let _ = match stream {
                Stream::Stdout => std::io::stdout().write_all(data),
                Stream::Stderr => std::io::stderr().write_all(data),
            };
        }
    }
}

/// docker's convention for a command that could not run: 127 not found, 126 not
/// executable, 125 any other failure to start.
fn start_failure_code(message: &str) -> i32 {
    if message.contains("No such file or directory") {
        127
    } else if message.contains("Permission denied") || message.contains("Exec format error") {
        126
    } else {
        125
    }
}

/// Maps a pid inside the pod to the host's, through the NSpid lines of the init's children.
fn host_pid(init_pid: i32, ns_pid: i32) -> Option<i32> {
    let children = fs::read_to_string(format!("/proc/{init_pid}/task/{init_pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|hp| {
            fs::read_to_string(format!("/proc/{hp}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("NSpid:"))
                        .map(|l| l.split_whitespace().last() == Some(&ns_pid.to_string()))
                })
                .unwrap_or(false)
        })
}

/// Told once whether every app started (Ok) or why not.
pub type OnStarted<'a> = Box<dyn FnOnce(std::result::Result<(), String>) + 'a>;

enum Log {
    Pending(PathBuf),
    Open(fs::File),
    Failed,
}

pub struct RunOptions {
    pub attach: Attach,
    pub cgroup_parent: String,
    /// `<dir>/cache`: compiled seccomp filters and the base layer.
    pub cache_dir: PathBuf,
    /// `run --rm`: once the pod has ended, it is moved to garbage/ and a child process
    /// removes its cgroups and files once the init is gone, while the caller returns.
    pub discard: bool,
}

/// Runs a prepared pod that this process holds locked, until it exits. Returns its final
/// state. `on_started` hears once whether every app started. `embryo`: the pod's first
/// process, cloned early by a caller that knew the pod's namespaces (see
/// `exec::supervisor::launch::launch_with`).
pub fn run_prepared(
    mut pod: PodDir,
    opts: &RunOptions,
    on_started: Option<OnStarted<'_>>,
    embryo: Option<exec::crossing::embryo::Embryo>,
) -> Result<PodState> {
    if pod.dir != Dir::Prepared {
        return Err(PodError::WrongState {
            uuid: pod.uuid.clone(),
            state: pod.state().name().into(),
            reason: "only a prepared pod can run".into(),
        });
    }
    // Block SIGINT/SIGTERM first so none is lost while the pod starts.
    let mask = supervise::block_signals()
        .map_err(|e| PodError::Invalid(format!("blocking signals: {e}")))?;
    pod.move_to(Dir::Run)?;
    let dir = pod.path();
    let mut state = PodState::load(&dir)?;
    let plan_path = dir.join(PLAN_FILE);
    let mut plan: PodPlan = serde_json::from_slice(&fs::read(&plan_path).map_err(io(&plan_path))?)
        .map_err(|e| PodError::Invalid(format!("{}: {e}", plan_path.display())))?;
    plan.stage1_dir = dir.join("stage1");
    // Root's alone: the base layer, and compiled filters every pod trusts.
    crate::dir::private_dir(&opts.cache_dir)?;
    let base = exec::supervisor::base::ensure(&opts.cache_dir)
        .map_err(|e| PodError::io(&opts.cache_dir, e))?;
    for a in plan.apps.iter_mut() {
        a.rootfs.upper = dir.join(&a.rootfs.upper);
        a.rootfs.work = dir.join(&a.rootfs.work);
        a.rootfs.lower.push(base.clone());
        // Empty volumes live in the pod directory, recorded relative to it.
        if let Some(mounts) = a.spec.mounts_mut() {
            for m in mounts.iter_mut() {
                if let Some(src) = m.source().clone().filter(|s| s.is_relative()) {
                    m.set_source(Some(dir.join(src)));
                }
            }
        }
    }
    let logs: Vec<Log> = plan
        .apps
        .iter()
        .map(|a| Log::Pending(dir.join("logs").join(format!("{}.log", a.name))))
        .collect();
    let launch_opts = LaunchOptions {
        cgroup_parent: opts.cgroup_parent.clone(),
        seccomp_cache: Some(opts.cache_dir.join("seccomp")),
        stdin: None,
    };
    let mut launched = match launch_with(plan, launch_opts, embryo) {
        Ok(l) => l,
        Err(e) => {
            state.error = Some(e.to_string());
            state.finished = Some(chrono::Utc::now());
            state.save(&dir)?;
            if let Some(f) = on_started {
                f(Err(e.to_string()));
            }
            return Err(PodError::Invalid(e.to_string()));
        }
    };
    exec::trace::mark("launched");
    state.started = Some(chrono::Utc::now());
    state.pid = Some(launched.init_pid);
    state.pid_start = process_start_time(launched.init_pid);
    let init_pid = launched.init_pid;
    let cgroups = launched.cgroups.clone();
    let finish = {
        let mut observer = PodObserver {
            dir: dir.clone(),
            state: &mut state,
            logs,
            attach: opts.attach,
            init_pid,
            on_started,
            started: 0,
        };
        let finish = supervise::supervise(&mut launched, &mut observer, &mask);
        observer.notify(Err("the pod ended before all its apps started".into()));
        finish
    };
    let init_status = {
        match finish {
            Ok(supervise::Finish::Done) => None,
            Ok(supervise::Finish::Exited(st)) => Some(ExitStatus::from_wait(st)),
            Err(e) => {
                // Whatever happened, the pod must not outlive its supervisor's watch.
                let _ = rustix::process::pidfd_send_signal(
                    &launched.pidfd,
                    rustix::process::Signal::KILL,
                );
                supervise::wait_for_exit(&launched);
                let _ = cgroups.remove_pod(&state.uuid);
                state.error = Some(format!("supervising the pod: {e}"));
                state.finished = Some(chrono::Utc::now());
                let _ = state.save(&dir);
                return Err(PodError::Invalid(format!("supervising the pod: {e}")));
            }
        }
    };
    // Apps still running when the init died (`stop --force`, SIGKILL) died with it.
    if let Some(init_status) = init_status {
        for a in state.apps.iter_mut() {
            if a.exit_code.is_none() && a.error.is_none() && a.pid.is_some() {
                let sig = init_status.signal.unwrap_or(libc::SIGKILL);
                a.exit_code = Some(128 + sig);
                a.signal = Some(sig);
            }
        }
    }
    exec::trace::mark("pod exited");
    for a in state.apps.iter_mut() {
        if cgroups
            .app(&state.uuid, &a.name)
            .ok()
            .and_then(|c| c.oom_killed().ok())
            == Some(true)
        {
            a.oom_killed = true;
        }
        a.pid = None;
    }
    exec::trace::mark("oom checked");
    state.finished = Some(chrono::Utc::now());
    if opts.discard {
        // Nobody reads the state of a pod about to go.
        crate::ops::discard_after_exit(pod, launched.pidfd, &opts.cgroup_parent)?;
        exec::trace::mark("discarding");
        return Ok(state);
    }
    if init_status.is_none() {
        supervise::wait_for_exit(&launched);
    }
    let _ = cgroups.remove_pod(&state.uuid);
    exec::trace::mark("cgroups removed");
    state.save(&dir)?;
    Ok(state)
}
