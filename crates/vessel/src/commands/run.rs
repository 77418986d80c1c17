//! `run`, `prepare` and `run-prepared`: stage0, then the supervisor.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use anyhow::{bail, Context as _, Result};
use pod::prepare::{self, ResolvedImage};
use pod::request::{parse_env_file, parse_env_pair, Insecure, IpcMode, PodRequest};
use pod::run::{self as runner, Attach, RunOptions};
use pod::{Dir, PodDir};

use exec::plan::Flavour;

use crate::cli::{Ipc, NetArgs, RunArgs, RunPreparedArgs};
use crate::context::Context;

#[derive(PartialEq, Eq)]
pub enum Mode {
    Run,
    Prepare,
}

impl Mode {
    /// The command's name on the command line.
    fn command(&self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Prepare => "prepare",
        }
    }
}

pub fn run(ctx: &Context, args: RunArgs, mode: Mode) -> Result<i32> {
    // First: the variables go, so no plugin or hook of ours sees them.
    let listen_fds = sd::take_listen_fds()?;
    let flavour = crate::commands::stage1::flavour(ctx, &args)?;
    let mut network = net_flags(&args.network, &args.port)?;
    // Rootless, no CNI network is within reach: a pod gets user-mode networking through
    // slirp4netns where it is installed (podman's rootless default, the nearest to rkt's
    // default network: a namespace of the pod's own that reaches out), else a namespace
    // with loopback only.
    if exec::rootless::active() && args.network.net.is_empty() {
        network.selection = if net::slirp::binary().is_some() {
            net::NetSelection::Slirp4netns
        } else {
            net::NetSelection::None
        };
    }
    if flavour == Flavour::Fly {
        // A fly pod is on the host's network unless told otherwise (which it refuses).
        if args.network.net.is_empty() {
            network.selection = net::NetSelection::Host;
        }
        if args.ipc == Ipc::Private {
            return Err(crate::runargs::Usage(
                "--ipc=private: the fly stage1 shares the host's IPC namespace".into(),
            )
            .into());
        }
    }
    if flavour == Flavour::Kvm && args.ipc == Ipc::Parent {
        return Err(crate::runargs::Usage(
            "--ipc=parent: the kvm stage1 runs the pod in a virtual machine, with an IPC namespace of its own".into(),
        )
        .into());
    }
    let kvm_accel = match &args.kvm_accel {
        None => None,
        Some(_) if flavour != Flavour::Kvm => {
            return Err(crate::runargs::Usage(format!(
                "--kvm-accel: the pod runs under the {} stage1, not kvm",
                flavour.name()
            ))
            .into())
        }
        Some(a) => Some(exec::plan::KvmAccel::parse(a).ok_or_else(|| {
            crate::runargs::Usage(format!(
                "--kvm-accel={a}: the kvm stage1's accelerators are auto, kvm and tcg"
            ))
        })?),
    };
    if args.private_users && flavour == Flavour::Default {
        passable_by_the_pods_root(&ctx.dir)?;
    }
    if mode == Mode::Prepare && args.mds_register.is_some() {
        bail!("--mds-register is for run and run-prepared: a pod registers when it starts");
    }
    // Before the pod exists: an explicit --mds-register with no service leaves nothing.
    let mds = metadata_service(args.mds_register)?;
    // A pod run in the foreground gets its first process now: its exec (about a
    // millisecond) then runs on another core while we resolve images and write the pod.
    // Should anything fail first, dropping it kills it.
    let embryo = if mode == Mode::Run && !args.detach {
        let flags = exec::supervisor::launch::namespace_flags_for(
            flavour,
            pod::request::net_mode(&network.selection),
            !matches!(args.ipc, Ipc::Parent),
            args.private_users,
        );
        exec::crossing::embryo::Embryo::spawn(flags).ok()
    } else {
        None
    };
    let from_manifest = match &args.pod_manifest {
        Some(path) => {
            if !args.images.is_empty() {
                bail!("--pod-manifest names the apps: give no images with it");
            }
            Some(crate::podmanifest::load(path)?)
        }
        None => None,
    };
    let apps = match &from_manifest {
        Some(m) => m.apps.clone(),
        None => {
            let parsed =
                crate::runargs::parse(&args.images, mode.command(), || pod_flag_names(&mode))
                    .map_err(crate::runargs::Usage)?;
            for n in &parsed.notes {
                crate::output::say!("note: {n}");
            }
            parsed.apps
        }
    };
    if args.detach && mode == Mode::Prepare {
        bail!("--detach is for run, not prepare");
    }
    if args.quiet && mode == Mode::Run {
        bail!("--quiet is for prepare, which prints only the pod's UUID with it");
    }
    let pull_policy = crate::commands::fetch::deprecated_store_flags(
        args.pull_policy,
        args.store_only,
        args.no_store,
    );
    let mut set_env = Vec::new();
    for f in &args.set_env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("--set-env-file {}", f.display()))?;
        set_env
            .extend(parse_env_file(&text, &f.display().to_string()).map_err(anyhow::Error::msg)?);
    }
    for kv in &args.set_env {
        set_env.push(parse_env_pair(kv).map_err(|e| anyhow::anyhow!("--set-env: {e}"))?);
    }
    let insecure = ctx.global.insecure_options;
    let req = PodRequest {
        apps,
        hostname: args.hostname.clone(),
        set_env,
        inherit_env: args.inherit_env,
        network,
        ipc: match args.ipc {
            Ipc::Auto | Ipc::Private => IpcMode::Private,
            Ipc::Parent => IpcMode::Parent,
        },
        insecure: Insecure {
            capabilities: insecure.capabilities,
            paths: insecure.paths,
            seccomp: insecure.seccomp,
        },
        volumes: args
            .volume
            .iter()
            .map(|v| {
                schema::Volume::from_flag(v).map_err(|e| anyhow::anyhow!("--volume {v:?}: {e}"))
            })
            .collect::<Result<_>>()?,
        private_users: args.private_users,
        interactive: args.interactive,
        isolators: from_manifest
            .as_ref()
            .map(|m| m.isolators.clone())
            .unwrap_or_default(),
        annotations: from_manifest
            .as_ref()
            .map(|m| m.annotations.clone())
            .unwrap_or_default(),
        flavour,
        kvm_accel,
    };
    // What the flavour cannot honour is refused before anything is made.
    pod::stage1::check(flavour, &req).map_err(crate::runargs::Usage)?;
    let mut req = req;
    if let Some(m) = &from_manifest {
        req.volumes.extend(m.volumes.iter().cloned());
    }
    exec::trace::mark("parsed");
    let store = ctx.store()?;
    let pods = ctx.pods()?;
    let pod = {
        // Held until the pod records the layers it uses, so image gc cannot take them.
        let _lock = store.lock_shared()?;
        let opts = ctx.fetch_options(pull_policy, args.quiet);
        let mut images = Vec::new();
        for app in &req.apps {
            let mut opts = opts.clone();
            opts.signature = app.signature.clone();
            images.push(resolve_image(&store, &app.image, &opts)?);
        }
        exec::trace::mark("images resolved");
        prepare::prepare(&pods, &req, images, &net_context(ctx)?)?
    };
    exec::trace::mark("prepared");
    // What the runner reads from the pod's state (we still hold the pod's lock):
    // `prepare --rm` for run-prepared, and the cap on the apps' logs.
    let log_size = match args.log_size {
        Some(n) => Some(n),
        None => ctx.config(&["logs.d"])?.log_max_size.map(|s| s.value),
    };
    if (args.rm && mode == Mode::Prepare) || log_size.is_some() {
        let mut state = pod::state::PodState::load(&pod.path())?;
        state.remove_on_exit = args.rm && mode == Mode::Prepare;
        state.log_max_bytes = log_size;
        state.save(&pod.path())?;
    }
    if let Some(f) = &args.uuid_file_save {
        std::fs::write(f, format!("{}\n", pod.uuid))
            .with_context(|| format!("--uuid-file-save {}", f.display()))?;
    }
    if mode == Mode::Prepare {
        println!("{}", pod.uuid);
        return Ok(0);
    }
    run_pod(ctx, pod, args.detach, args.rm, embryo, mds, listen_fds)
}

/// A `--private-users` pod's root is an unprivileged host id, and its first process
/// reaches the pod's stage1 mount point through `--dir`: every directory above the pods
/// must let others pass (search, not list). A 0700 one (`mktemp -d`) is named up front,
/// instead of "stage1: Permission denied" from inside the new user namespace.
fn passable_by_the_pods_root(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for d in dir.ancestors() {
        let Ok(meta) = std::fs::metadata(d) else {
            continue; // made later by vessel, passable
        };
        if meta.mode() & 0o001 == 0 {
            bail!(
                "--private-users: the pod's root is an unprivileged host user that must pass through {} to reach the pod under --dir {}, but its mode {:04o} lets no other user in: allow passing through (chmod o+x {}: nothing becomes listable) or choose a --dir elsewhere",
                d.display(),
                dir.display(),
                meta.mode() & 0o7777,
                d.display()
            );
        }
    }
    Ok(())
}

/// The long names of the pod flags of `run` or `prepare`, from the command line's own
/// definition (for messages about flags given out of place).
fn pod_flag_names(mode: &Mode) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    cmd.find_subcommand_mut(mode.command())
        .map(|c| {
            // Its arguments are defined lazily (`cli::Command`): build them.
            c.build();
            c.get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Finds the image in the store, importing or fetching it first when it names a file,
/// a layout or an archive.
fn resolve_image(
    store: &store::Store,
    image: &str,
    opts: &fetch::FetchOptions,
) -> Result<ResolvedImage> {
    // The store, a file, or the network, as the pull policy says (fetch does the checks).
    let record = fetch::fetch(store, image, opts)?;
    let manifest = store.image_manifest(&record)?;
    let lower = store.lower_dirs(&record)?;
    let mut pinned: Vec<String> = record.layers.iter().map(|l| l.key()).collect();
    pinned.push(record.id.key());
    let _ = store.touch_last_used(&record.id);
    let name = match record.labels.get("version") {
        Some(v) if record.format == store::images::Format::Oci => format!("{}:{v}", record.name),
        _ => record.name.clone(),
    };
    Ok(ResolvedImage {
        id: record.id.key(),
        name,
        manifest,
        lower,
        pinned,
    })
}

pub fn run_prepared(ctx: &Context, args: RunPreparedArgs) -> Result<i32> {
    let listen_fds = sd::take_listen_fds()?;
    let pods = ctx.pods()?;
    let uuid = crate::commands::pods::uuid_of(&args.pod)?;
    let mut pod = pods.find(&uuid)?;
    if pod.dir != Dir::Prepared {
        bail!("pod {} is {}, not prepared", pod.uuid, pod.state().name());
    }
    if !pod.try_lock()? {
        bail!("pod {} is being run by another process", pod.uuid);
    }
    let over = net_override(&args.network)?;
    let flavour = pod::state::PodState::load(&pod.path())?.stage1;
    if flavour == Flavour::Fly {
        if let Some(sel) = over
            .selection
            .as_ref()
            .filter(|s| **s != net::NetSelection::Host)
        {
            return Err(crate::runargs::Usage(format!(
                "--net: pod {} runs under the fly stage1, which uses the host's network ({sel:?} cannot be given to it)",
                pod.uuid
            ))
            .into());
        }
    }
    if flavour == Flavour::Kvm {
        if let Some(sel @ (net::NetSelection::Host | net::NetSelection::Slirp4netns)) =
            over.selection.as_ref()
        {
            return Err(crate::runargs::Usage(format!(
                "--net: pod {} runs under the kvm stage1, in a virtual machine whose kernel cannot share the host's network stack ({sel:?} cannot be given to it; CNI networks or none can)",
                pod.uuid
            ))
            .into());
        }
    }
    if !over.is_empty() {
        pod::network::redo(&pod.paths(), &pod.uuid, &net_context(ctx)?, &over)?;
    }
    let rm = args.rm || pod::state::PodState::load(&pod.path())?.remove_on_exit;
    let mds = metadata_service(args.mds_register)?;
    run_pod(ctx, pod, args.detach, rm, None, mds, listen_fds)
}

/// The metadata service's client when the pod is to register (`--mds-register`: None,
/// on if the service answers; true, it must; false, off), and whether it was asked for.
fn metadata_service(flag: Option<bool>) -> Result<Option<(mds::client::Client, bool)>> {
    if flag == Some(false) {
        return Ok(None);
    }
    let client = mds::client::Client::default_socket();
    match client.ping() {
        Ok(_) => Ok(Some((client, flag == Some(true)))),
        Err(e) if flag == Some(true) => bail!(
            "--mds-register: {e} (start `vessel metadata-service`, or run without --mds-register)"
        ),
        Err(_) => Ok(None),
    }
}

/// What the pod registers: each app's image ID and image manifest (the ACI's own bytes;
/// for an OCI image, its appc translation).
fn metadata(
    ctx: &Context,
    pod: &PodDir,
    service: Option<(mds::client::Client, bool)>,
) -> Result<Option<pod::metadata::Metadata>> {
    let Some((client, required)) = service else {
        return Ok(None);
    };
    let state = pod::state::PodState::load(&pod.path())?;
    let store = ctx.store()?;
    let mut images = Vec::new();
    for a in &state.apps {
        let id: store::Digest = a
            .image_id
            .parse()
            .map_err(|e| anyhow::anyhow!("app {}: image ID: {e}", a.name))?;
        let record = store.image_record(&id)?;
        let manifest = match record.format {
            store::images::Format::Aci => String::from_utf8(store.read_blob(&record.manifest)?)
                .with_context(|| format!("app {}: image manifest", a.name))?,
            store::images::Format::Oci => serde_json::to_string(&store.image_manifest(&record)?)?,
        };
        images.push(pod::metadata::AppImage {
            app: a.name.clone(),
            image_id: a.image_id.clone(),
            manifest,
        });
    }
    Ok(Some(pod::metadata::Metadata {
        client,
        required,
        images,
    }))
}

fn run_options(
    attach: Attach,
    discard: bool,
    metadata: Option<pod::metadata::Metadata>,
    listen_fds: sd::ListenFds,
) -> Result<RunOptions> {
    Ok(RunOptions {
        attach,
        discard,
        net_timeout: pod::network::timeout_from_env()?,
        metadata,
        // In the foreground, `vessel run` is the unit's main process; a detached pod's
        // supervisor is not.
        service_manager: match attach {
            Attach::Terminal => sd::NotifySocket::from_env(),
            Attach::None => None,
        },
        listen_fds,
    })
}

/// Where network configurations and plugins are (the configuration directories, as
/// VESSEL_CNI_PATH and VESSEL_CNI_TIMEOUT adjust them).
fn net_context(ctx: &Context) -> Result<pod::network::NetContext> {
    Ok(pod::network::NetContext::new(
        &ctx.global.system_config,
        &ctx.global.local_config,
    )?)
}

/// What `run-prepared`'s network flags change of the prepared pod (only what was given).
fn net_override(n: &NetArgs) -> Result<pod::network::NetOverride> {
    let dns_given = !n.dns.is_empty()
        || !n.dns_search.is_empty()
        || !n.dns_opt.is_empty()
        || n.dns_domain.is_some();
    Ok(pod::network::NetOverride {
        selection: if n.net.is_empty() {
            None
        } else {
            Some(net::NetSelection::parse(&n.net)?)
        },
        dns: if dns_given {
            Some(net::etc::DnsRequest::parse(
                &n.dns,
                &n.dns_search,
                &n.dns_opt,
                n.dns_domain.as_deref(),
            )?)
        } else {
            None
        },
        hosts: if n.hosts_entry.is_empty() {
            None
        } else {
            Some(net::etc::HostsRequest::parse(&n.hosts_entry)?)
        },
    })
}

/// `--net`, `--port`, `--dns*` and `--hosts-entry`, checked.
fn net_flags(n: &NetArgs, ports: &[String]) -> Result<pod::network::NetFlags> {
    Ok(pod::network::NetFlags {
        selection: net::NetSelection::parse(&n.net)?,
        ports: ports
            .iter()
            .map(|p| net::ports::PortRequest::parse(p))
            .collect::<Result<_, _>>()?,
        dns: net::etc::DnsRequest::parse(
            &n.dns,
            &n.dns_search,
            &n.dns_opt,
            n.dns_domain.as_deref(),
        )?,
        hosts: net::etc::HostsRequest::parse(&n.hosts_entry)?,
    })
}

fn run_pod(
    ctx: &Context,
    pod: PodDir,
    detach: bool,
    rm: bool,
    embryo: Option<exec::crossing::embryo::Embryo>,
    mds: Option<(mds::client::Client, bool)>,
    listen_fds: sd::ListenFds,
) -> Result<i32> {
    let metadata = metadata(ctx, &pod, mds)?;
    if detach {
        return run_detached(ctx, pod, rm, metadata, listen_fds);
    }
    let uuid = pod.uuid.clone();
    let opts = run_options(Attach::Terminal, rm, metadata, listen_fds)?;
    let result = runner::run_prepared(pod, &opts, None, embryo);
    let pods = ctx.pods()?;
    let code = match &result {
        Ok(state) => {
            if let Some(e) = &state.error {
                crate::output::say!("pod {uuid}: {e}");
            }
            for a in &state.apps {
                if a.oom_killed {
                    eprintln!("vessel: app {} was killed: out of memory", a.name);
                }
            }
            let code = state.exit_code();
            if code == 0 && state.error.is_some() {
                125
            } else {
                code
            }
        }
        Err(e) => {
            crate::output::say!("pod {uuid}: {e}");
            125
        }
    };
    // A pod that ran was discarded by the runner already; one that failed to start is now.
    if rm && result.is_err() {
        if let Ok(p) = pods.find(&uuid) {
            pod::ops::discard_in_background(p)?;
        }
        exec::trace::mark("removed");
    }
    Ok(code)
}

/// Forks a supervisor that outlives us; returns once every app has started.
fn run_detached(
    ctx: &Context,
    pod: PodDir,
    rm: bool,
    metadata: Option<pod::metadata::Metadata>,
    listen_fds: sd::ListenFds,
) -> Result<i32> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let uuid = pod.uuid.clone();
    let opts = run_options(Attach::None, false, metadata, listen_fds)?;
    // SAFETY: single-threaded here; the child runs the supervisor and exits.
    match unsafe { libc::fork() } {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            drop(r);
            let _ = rustix::process::setsid();
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                for fd in 0..3 {
                    // SAFETY: dup2 onto the standard descriptors.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            // Close-on-exec: the pod's processes never hold it, so it closes when we do.
            let mut notify = std::fs::File::from(w);
            let on_started: Box<dyn FnOnce(std::result::Result<(), String>)> =
                Box::new(move |res| {
                    let line = match res {
                        Ok(()) => "ok\n".to_string(),
                        Err(e) => format!("error {e}\n"),
                    };
                    let _ = notify.write_all(line.as_bytes());
                });
            let _ = runner::run_prepared(pod, &opts, Some(on_started), None);
            if rm {
                if let Ok(p) = ctx.pods().and_then(|pods| Ok(pods.find(&uuid)?)) {
                    let _ = pod::ops::remove(p);
                }
            }
            std::process::exit(0);
        }
        _ => {
            drop(w);
            drop(pod);
            let mut msg = String::new();
            std::fs::File::from(r).read_to_string(&mut msg)?;
            match msg.trim_end().strip_prefix("error ") {
                None if msg.starts_with("ok") => {
                    println!("{uuid}");
                    Ok(0)
                }
                Some(e) => bail!("pod {uuid}: {e}"),
                None => bail!("pod {uuid}: the supervisor ended before the pod started"),
            }
        }
    }
}
