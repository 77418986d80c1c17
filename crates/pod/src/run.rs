//! Running a prepared pod: launching it and supervising it until it ends, recording
//! what happened in its state.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use exec::plan::PodPlan;
use exec::proto::{Event, ExitStatus};
use exec::supervisor::launch::{launch_with, LaunchError, LaunchOptions};
use exec::supervisor::supervise::{self, Observer, Stream};

use crate::dir::{Dir, PodDir};
use crate::error::{PodError, Result};
use crate::logs::writer::AppLog;
use crate::network::PodNet;
use crate::notify::Readiness;
use crate::state::{process_start_time, PodState};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PodError + '_ {
    move |e| PodError::io(path, e)
}

/// Says what went wrong in a teardown that went on regardless.
fn warn(uuid: &str, problems: Vec<String>) {
    for p in problems {
        eprintln!("vessel: warning: pod {uuid}: {p}");
    }
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
    logs: Vec<AppLog>,
    attach: Attach,
    init_pid: i32,
    /// Told once every app has started (or one failed): for --detach.
    on_started: Option<OnStarted<'a>>,
    started: usize,
    /// What the service manager hears (`$NOTIFY_SOCKET`), the apps' own messages too.
    readiness: &'a mut Readiness,
}

impl PodObserver<'_> {
    fn notify(&mut self, r: std::result::Result<(), String>) {
        match &r {
            Ok(()) => self.readiness.started(),
            Err(e) => self.readiness.failed(e),
        }
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
                // A kvm pod's apps have no pid on the host.
                if self.state.stage1 != exec::plan::Flavour::Kvm {
                    if let Some(a) = self.state.apps.get_mut(*app) {
                        a.pid = host_pid(self.init_pid, *pid);
                    }
                }
                self.started += 1;
                // One write once every app runs (with their pids), not one per app.
                if self.started == self.state.apps.len() {
                    let _ = self.state.save(&self.dir);
                    self.notify(Ok(()));
                }
            }
            Event::Failed { app, error } => {
                let name = self
                    .state
                    .apps
                    .get(*app)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                let message = error.to_string();
                if let Some(a) = self.state.apps.get_mut(*app) {
                    a.error = Some(message.clone());
                    a.exit_code = Some(error.start_failure_code());
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
            Event::Warning { message } => eprintln!(
                "vessel: warning: {}",
                schema::text::escape_controls(message)
            ),
            // The supervisor's own business.
            Event::Done => {}
            Event::Error { message } => {
                self.state.error = Some(message.clone());
                let _ = self.state.save(&self.dir);
                self.notify(Err(message.clone()));
            }
        }
    }

    fn sd_notify(&mut self, app: usize, message: &[u8]) {
        self.readiness.from_app(app, message);
    }

    fn output(&mut self, app: usize, stream: Stream, data: &[u8]) {
        if let Some(log) = self.logs.get_mut(app) {
            log.write(
                match stream {
                    Stream::Stdout => crate::logs::Stream::Stdout,
                    Stream::Stderr => crate::logs::Stream::Stderr,
                },
                data,
            );
        }
        if self.attach == Attach::Terminal {
            let _ = match stream {
                Stream::Stdout => std::io::stdout().write_all(data),
                Stream::Stderr => std::io::stderr().write_all(data),
            };
        }
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

/// The passed sockets, per app of the plan (`crate::activation`).
fn listen_fds_per_app(
    opts: &RunOptions,
    paths: &crate::layout::PodPaths,
    plan: &PodPlan,
) -> Result<Vec<Vec<(std::os::fd::OwnedFd, String)>>> {
    if opts.listen_fds.is_empty() {
        return Ok(Vec::new());
    }
    let path = paths.manifest();
    let manifest =
        schema::PodManifest::from_slice(&fs::read(&path).map_err(io(&path))?).map_err(|e| {
            PodError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
    let names: Vec<String> = plan.apps.iter().map(|a| a.name.clone()).collect();
    crate::activation::per_app(&opts.listen_fds, &manifest, &names)
}

/// Told once whether every app started (Ok) or why not.
pub type OnStarted<'a> = Box<dyn FnOnce(std::result::Result<(), String>) + 'a>;

pub struct RunOptions {
    pub attach: Attach,
    /// How long one CNI plugin run may take.
    pub net_timeout: std::time::Duration,
    /// `run --rm`: once the pod has ended, it is moved to garbage/ and a child process
    /// removes its cgroups and files once the init is gone, while the caller returns.
    pub discard: bool,
    /// Register the pod with the metadata service (`--mds-register`).
    pub metadata: Option<crate::metadata::Metadata>,
    /// The service manager's `$NOTIFY_SOCKET` (`vessel run` as a `Type=notify` unit):
    /// told READY=1 once the apps run and those that speak sd_notify say they are ready.
    pub service_manager: Option<sd::NotifySocket>,
    /// Sockets the service manager passed (`$LISTEN_FDS`), for the apps' socket-activated
    /// ports (`crate::activation`).
    pub listen_fds: Vec<sd::ListenFd>,
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
    let mask = supervise::block_signals().map_err(PodError::Signals)?;
    pod.move_to(Dir::Run)?;
    let paths = pod.paths();
    let dir = pod.path();
    let mut state = PodState::load(&dir)?;
    let plan_path = paths.plan();
    let mut plan: PodPlan = serde_json::from_slice(&fs::read(&plan_path).map_err(io(&plan_path))?)
        .map_err(|e| PodError::Corrupt {
            path: plan_path.clone(),
            reason: e.to_string(),
        })?;
    plan.stage1_dir = paths.resolve(&plan.stage1_dir);
    // Root's alone: the base layer, and compiled filters every pod trusts.
    let cache = crate::layout::cache(pod.vessel_dir());
    crate::dir::private_dir(&cache)?;
    let base_layer = crate::layout::base_layer(pod.vessel_dir());
    let base =
        exec::supervisor::base::ensure(&base_layer).map_err(|e| PodError::io(&base_layer, e))?;
    for a in plan.apps.iter_mut() {
        a.rootfs.upper = paths.resolve(&a.rootfs.upper);
        a.rootfs.work = paths.resolve(&a.rootfs.work);
        a.rootfs.lower.push(base.clone());
        // Empty volumes live in the pod directory, recorded relative to it.
        if let Some(mounts) = a.spec.mounts_mut() {
            for m in mounts.iter_mut() {
                if let Some(src) = m.source().clone().filter(|s| s.is_relative()) {
                    m.set_source(Some(paths.resolve(&src)));
                }
            }
        }
    }
    let logs: Vec<AppLog> = plan
        .apps
        .iter()
        .map(|a| {
            AppLog::new(
                &a.name,
                paths.log(&a.name),
                state
                    .log_max_bytes
                    .unwrap_or(crate::logs::DEFAULT_MAX_BYTES),
            )
        })
        .collect();
    let mut readiness = Readiness::new(opts.service_manager.clone(), &state.uuid, &plan.apps);
    // A start that fails records why, and tells whoever waits for the apps to start.
    let mut on_started = on_started;
    let mut failed = |state: &mut PodState, e: PodError| -> PodError {
        let message = e.to_string();
        state.error = Some(message.clone());
        state.finished = Some(chrono::Utc::now());
        let _ = state.save_final(&dir);
        readiness.failed(&message);
        if let Some(f) = on_started.take() {
            f(Err(message));
        }
        e
    };
    let listen_fds = match listen_fds_per_app(opts, &paths, &plan) {
        Ok(l) => l,
        Err(e) => return Err(failed(&mut state, e)),
    };
    let notify_sockets = match crate::notify::bind_sockets(&paths, &plan.apps) {
        Ok(s) => s,
        Err(e) => return Err(failed(&mut state, e)),
    };
    let launch_opts = LaunchOptions {
        seccomp_cache: Some(crate::layout::seccomp_cache(pod.vessel_dir())),
        stdin: None,
        listen_fds,
        kvm: None,
    };
    let mut launch_opts = launch_opts;
    if plan.flavour == exec::plan::Flavour::Kvm {
        match crate::kvm::configure(pod.vessel_dir(), &paths, &plan) {
            Ok(k) => {
                // Said once per start, where the operator sees it, and kept in the state.
                if let Some(why) = &k.fallback {
                    warn(&state.uuid, vec![why.clone()]);
                }
                state.accelerator = Some(k.plan.accel.clone());
                state.accelerator_fallback = k.fallback;
                launch_opts.kvm = Some(k.plan);
            }
            Err(e) => return Err(failed(&mut state, e)),
        }
    }
    let mut network = match PodNet::begin(&paths, opts.net_timeout, pod.lock_fd()) {
        Ok(n) => n,
        Err(e) => return Err(failed(&mut state, e)),
    };
    // The metadata service's registration, withdrawn when dropped (the pod has ended, or
    // failed to start).
    let mut registered: Option<crate::metadata::Registered> = None;
    if opts.metadata.as_ref().is_some_and(|m| m.required) && !network.uses_cni() {
        let e = PodError::Invalid(crate::metadata::NO_ADDRESS.into());
        return Err(failed(&mut state, e));
    }
    // With CNI networks (or slirp4netns), ADD runs from the first process's clone on,
    // beside the rest of the start; the init starts no app before it has the result (`network_gate`).
    let embryo = if network.gated() {
        let flags = exec::supervisor::launch::namespace_flags(&plan);
        let embryo = match embryo {
            Some(e) if e.flags == flags => e,
            _ => match exec::crossing::embryo::Embryo::spawn(flags) {
                Ok(e) => e,
                Err(e) => {
                    let e = LaunchError::Step(e.wrap("starting the pod's first process"));
                    return Err(failed(&mut state, e.into()));
                }
            },
        };
        if let Err(e) = network.start(embryo.pid) {
            drop(embryo);
            warn(&state.uuid, network.teardown());
            return Err(failed(&mut state, e));
        }
        Some(embryo)
    } else {
        embryo
    };
    let mut launched = match launch_with(plan, launch_opts, embryo) {
        Ok(l) => l,
        Err(e) => {
            warn(&state.uuid, network.teardown());
            return Err(failed(&mut state, e.into()));
        }
    };
    launched.notify = notify_sockets;
    exec::trace::mark("launched");
    if network.gated() {
        let added = network
            .finish(&state.hostname)
            .and_then(|(mut ready, infos)| {
                // Registered before any app starts: an app may ask at once.
                if let Some(m) = &opts.metadata {
                    let manifest = fs::read_to_string(paths.manifest())
                        .map_err(|e| PodError::io(&paths.manifest(), e))?;
                    registered = crate::metadata::register(m, &state.uuid, &manifest, &infos)?;
                    if let Some(r) = &registered {
                        ready.env.push(("AC_METADATA_URL".into(), r.url.clone()));
                    }
                }
                state.networks = infos;
                // An init that cannot take them has failed already (a bad image, say) and
                // reports why on the channel, which supervise reads.
                let _ = launched.channel.send_network(&ready);
                Ok(())
            });
        exec::trace::mark("networks handed over");
        if let Err(e) = added {
            let _ =
                rustix::process::pidfd_send_signal(&launched.pidfd, rustix::process::Signal::KILL);
            supervise::wait_for_exit(&launched);
            let _ = launched.cgroups.remove_pod(&state.uuid);
            warn(&state.uuid, network.teardown());
            return Err(failed(&mut state, e));
        }
    }
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
            on_started: on_started.take(),
            started: 0,
            readiness: &mut readiness,
        };
        let finish = supervise::supervise(&mut launched, &mut observer, &mask);
        observer.notify(Err("the pod ended before all its apps started".into()));
        finish
    };
    // The apps are gone: nothing in the pod asks any more.
    drop(registered);
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
                warn(&state.uuid, network.teardown());
                state.error = Some(format!("supervising the pod: {e}"));
                state.finished = Some(chrono::Utc::now());
                let _ = state.save_final(&dir);
                return Err(PodError::Supervise(e));
            }
        }
    };
    // Apps still running when the init died (`stop --force`, SIGKILL) died with it.
    if let Some(init_status) = init_status {
        let kvm = state.stage1 == exec::plan::Flavour::Kvm;
        for a in state.apps.iter_mut() {
            if a.exit_code.is_none() && a.error.is_none() && (a.pid.is_some() || kvm) {
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
        // Nobody reads the state of a pod about to go; its networks' DEL is left to the
        // child that deletes it, after `run` returned.
        drop(network);
        crate::ops::discard_after_exit(pod, launched.pidfd)?;
        exec::trace::mark("discarding");
        return Ok(state);
    }
    if init_status.is_none() {
        supervise::wait_for_exit(&launched);
    }
    let _ = cgroups.remove_pod(&state.uuid);
    exec::trace::mark("cgroups removed");
    warn(&state.uuid, network.teardown());
    exec::trace::mark("networks deleted");
    // The apps' statuses are known whether or not they can be recorded: `run` tells them.
    if let Err(e) = state.save_final(&dir) {
        warn(&state.uuid, vec![format!("recording its final state: {e}")]);
    }
    Ok(state)
}
