//! Preparing a pod (stage0): checks what the user asked for against the images, then
//! writes the pod's directory (manifest, plan, state, writable layers, empty volumes).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use exec::plan::{AppPlan, PodPlan, RootfsPlan};
use net::names::{check_hostname, HOSTNAME_MAX};
use schema::ImageManifest;

use crate::dir::{Dir, PodDir, Pods};
use crate::error::{PodError, Result};
use crate::request::PodRequest;
use crate::state::{AppState, PodState};

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PodError + '_ {
    move |e| PodError::io(path, e)
}

/// An app, checked and translated, before anything is written.
pub struct PlannedApp {
    pub name: String,
    pub spec: crate::spec::AppSpec,
    /// Its entry in the pod manifest.
    pub runtime: schema::RuntimeApp,
    pub state: AppState,
    /// Its image's layers, topmost first.
    pub lower: Vec<PathBuf>,
    pub hooks: Hooks,
    /// It speaks sd_notify (`crate::notify`).
    pub notify: bool,
}

/// A pod, checked and translated: what [`prepare`] writes.
pub struct PlannedPod {
    pub apps: Vec<PlannedApp>,
    /// The pod's volumes: the user's, then the empty ones its apps' mount points implied.
    pub volumes: Vec<schema::Volume>,
    pub manifest: schema::PodManifest,
    /// Layer keys and image IDs to keep from image gc, once each.
    pub pinned: Vec<String>,
    /// The ports the apps declare (`--port NAME:...` looks them up).
    pub ports: Vec<net::ports::AppPort>,
}

/// The appc event handlers of an app.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    pub pre_start: Option<Vec<String>>,
    pub post_stop: Option<Vec<String>>,
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
/// and empty volumes. Everything is checked first ([`plan_apps`], then the network):
/// bad input leaves nothing behind. Returns the pod in prepared/, still locked by us.
/// `net`: where network configurations and plugins are.
pub fn prepare(
    pods: &Pods,
    req: &PodRequest,
    images: Vec<ResolvedImage>,
    net: &crate::network::NetContext,
) -> Result<PodDir> {
    // The hostname goes into /etc/hosts and sethostname(2): refused now if either would
    // take it wrong (a newline adds a line to /etc/hosts; the kernel takes 64 bytes).
    if let Some(h) = &req.hostname {
        check_hostname(h, HOSTNAME_MAX)
            .map_err(|e| PodError::Invalid(format!("--hostname {h:?}: {e}")))?;
    }
    crate::stage1::check(req.flavour, req).map_err(PodError::Invalid)?;
    check_upper_filesystem(pods)?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let hostname = match (&req.hostname, req.flavour) {
        (Some(h), _) => h.clone(),
        (None, exec::plan::Flavour::Fly) => crate::stage1::host_hostname(),
        (None, exec::plan::Flavour::Default | exec::plan::Flavour::Kvm) => {
            format!("vessel-{uuid}")
        }
    };
    let planned = plan_apps(req, images, &hostname)?;
    if exec::rootless::active() {
        check_rootless(req, &planned)?;
    }
    let network = crate::network::plan(net, &uuid, &req.network, &planned.ports)?;
    for p in &planned.apps {
        for w in &p.spec.warnings {
            eprintln!(
                "vessel: warning: app {}: {}",
                p.name,
                schema::text::escape_controls(w)
            );
        }
    }
    write_pod_dir(pods, req, &uuid, hostname, planned, network)
}

/// overlayfs's magic number (statfs f_type).
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// The apps' writable layers live under the data dir, and the kernel refuses an overlay's
/// upper layer on overlayfs (a --dir inside a container's root, say): said now, before a
/// pod exists, rather than as EINVAL from the mount at start.
fn check_upper_filesystem(pods: &Pods) -> Result<()> {
    let dir = pods.root();
    match rustix::fs::statfs(dir) {
        Ok(s) if s.f_type == OVERLAYFS_SUPER_MAGIC => Err(PodError::Invalid(format!(
            "{}: the data dir is on overlayfs, which cannot hold the apps' writable layers \
             (an overlay's upper layer): give a --dir on another filesystem (ext4, xfs, btrfs, tmpfs)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// What a rootless pod cannot have, refused before it exists: cgroup limits (no cgroup
/// is the user's here), CNI networks (their plugins need root), `--private-users` (the
/// whole pod already runs in the user's namespace, which holds no range for another).
fn check_rootless(req: &PodRequest, planned: &PlannedPod) -> Result<()> {
    for p in &planned.apps {
        let limited = p
            .spec
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .is_some_and(|r| {
                r.memory().as_ref().is_some_and(|m| m.limit().is_some())
                    || r.cpu()
                        .as_ref()
                        .is_some_and(|c| c.quota().is_some() || c.shares().is_some())
                    || r.pids().is_some()
            });
        if limited {
            if let Some(why) = exec::rootless::no_cgroups_reason() {
                return Err(PodError::Invalid(format!(
                    "app {}: --memory/--cpu (or the image's resource isolators) cannot be enforced: {why}",
                    p.name
                )));
            }
        }
    }
    if req.network.selection.uses_cni() {
        return Err(PodError::Invalid(
            "rootless pods cannot join CNI networks (their plugins need root): use --net=slirp4netns, --net=none or --net=host".into(),
        ));
    }
    if req.flavour != exec::plan::Flavour::Default {
        // fly shares the host's pid and network namespaces, which a user namespace cannot
        // mount /proc or sysfs for; kvm composes roots and runs QEMU as the host's root.
        return Err(PodError::Invalid(format!(
            "--stage1={}: rootless pods run only with the default stage1 (fly and kvm need root)",
            req.flavour.name()
        )));
    }
    if req.private_users {
        return Err(PodError::Invalid(
            "--private-users: a rootless pod already runs in your user namespace, which has no id range to spare for another".into(),
        ));
    }
    Ok(())
}

/// Checks the request against its images and translates every app: its name, mounts,
/// runtime spec, pod manifest entry and state, and the pod's volumes and manifest. Writes
/// nothing (it looks only at host volume sources), so bad input fails here, before any
/// pod exists.
pub fn plan_apps(
    req: &PodRequest,
    images: Vec<ResolvedImage>,
    hostname: &str,
) -> Result<PlannedPod> {
    if req.apps.is_empty() {
        return Err(PodError::Invalid("no image given".into()));
    }
    if req.interactive && req.apps.len() > 1 {
        return Err(PodError::Invalid(format!(
            "--interactive needs a pod of one app; this one has {}",
            req.apps.len()
        )));
    }
    if req.apps.len() != images.len() {
        return Err(PodError::Invalid(format!(
            "{} apps but {} images",
            req.apps.len(),
            images.len()
        )));
    }
    let mut names = HashSet::new();
    let mut implicit = Vec::new();
    let mut planned = Vec::new();
    let mut pinned = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut app_ports = Vec::new();
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
        let mut spec = crate::spec::build(
            &image.manifest,
            req_app,
            req,
            &name,
            hostname,
            &with_volumes,
        )?;
        let notify = crate::notify::supports_notify(&image.manifest);
        if notify {
            crate::notify::give_socket(&mut spec.spec, &name);
        }
        let app = crate::spec::app_of(&image.manifest, req_app).cloned();
        for p in app.iter().flat_map(|a| a.ports.iter()) {
            app_ports.push(net::ports::AppPort {
                app: name.clone(),
                name: p.name.to_string(),
                protocol: p.protocol.clone(),
                port: p.port,
                count: p.count,
            });
        }
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
        // As rkt: the manifest records the app as it runs, overrides applied.
        let argv = crate::spec::command(&image.manifest, req_app)?;
        runtime.app = crate::effective::effective_app(app.as_ref(), req_app, &argv)?;
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
            notify,
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
    // Serialisable: checked here, so writing it later cannot fail on its content.
    manifest
        .to_vec()
        .map_err(|e| PodError::Invalid(format!("pod manifest: {e}")))?;
    if req.private_users {
        crate::volumes::check_userns_owners(&volumes, crate::userns::RANGE)?;
    }
    Ok(PlannedPod {
        apps: planned,
        volumes,
        manifest,
        pinned,
        ports: app_ports,
    })
}

/// Writes a planned pod: its directory (embryo, then prepare/, then prepared/), the apps'
/// writable layers, empty volumes, manifest, plan and state, and its user namespace range.
fn write_pod_dir(
    pods: &Pods,
    req: &PodRequest,
    uuid: &str,
    hostname: String,
    planned: PlannedPod,
    network: crate::network::NetRequest,
) -> Result<PodDir> {
    let PlannedPod {
        apps: planned,
        volumes,
        manifest,
        pinned,
        ports: _,
    } = planned;
    let manifest_bytes = manifest
        .to_vec()
        .map_err(|e| PodError::Invalid(format!("pod manifest: {e}")))?;
    let userns_slot = if req.private_users {
        Some(crate::userns::allocate(pods.vessel_dir(), uuid)?)
    } else {
        None
    };
    let userns = userns_slot.map(|s| exec::plan::UserNamespace {
        base: crate::userns::base_of(s),
        size: crate::userns::RANGE,
    });
    // Until the pod's state records it, a failure gives the range back.
    let mut slot_guard = crate::userns::SlotGuard::new(pods.vessel_dir(), userns_slot, uuid);
    // The pod's root in its user namespace (host gid `base`) must pass through the pod's
    // directory to reach its stage1 mount point and empty volumes.
    let mut pod = pods.create_with(uuid, userns.map(|u| u.base))?;
    pod.move_to(Dir::Prepare)?;
    let paths = pod.paths();
    let mut apps = Vec::new();
    let mut app_states = Vec::new();
    for p in planned {
        for sub in [paths.app_upper(&p.name), paths.app_work(&p.name)] {
            fs::create_dir_all(&sub).map_err(io(&sub))?;
        }
        apps.push(AppPlan {
            name: p.name.clone(),
            // Relative to the pod directory, which moves between states; made absolute at run.
            rootfs: RootfsPlan {
                lower: p.lower,
                upper: crate::layout::rel::app_upper(&p.name),
                work: crate::layout::rel::app_work(&p.name),
                bind: None,
            },
            spec: p.spec.spec,
            user: Some(p.spec.user),
            group: p.spec.group,
            terminal: req.interactive,
            pre_start: p.hooks.pre_start,
            post_stop: p.hooks.post_stop,
            notify: p.notify,
        });
        app_states.push(p.state);
    }
    for v in volumes
        .iter()
        .filter(|v| v.kind == schema::VolumeKind::Empty)
    {
        let vdir = paths.volume(v.name.as_str());
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
    let manifest_path = paths.manifest();
    fs::write(&manifest_path, manifest_bytes).map_err(io(&manifest_path))?;
    for d in [paths.stage1(), paths.logs()] {
        fs::create_dir(&d).map_err(io(&d))?;
    }
    let net_plan = crate::network::plan_net(&network, &hostname);
    let net_request = paths.net_request();
    network.save(&net_request)?;
    let plan = PodPlan {
        uuid: pod.uuid.clone(),
        flavour: req.flavour,
        kvm_accel: req.kvm_accel,
        hostname: hostname.clone(),
        net: net_plan.mode,
        // A fly pod is in the host's IPC namespace, whatever --ipc says.
        ipc_private: req.ipc == crate::request::IpcMode::Private
            && req.flavour == exec::plan::Flavour::Default,
        // Recorded relative: the pod moves between state directories.
        stage1_dir: crate::layout::rel::stage1(),
        apps,
        userns,
        rootless: exec::rootless::active(),
        resolv_conf: net_plan.resolv_conf,
        hosts: Some(net_plan.hosts),
        network_gate: net_plan.gate,
    };
    let plan_path = paths.plan();
    fs::write(&plan_path, serde_json::to_vec(&plan).expect("serialisable"))
        .map_err(io(&plan_path))?;
    let state = PodState {
        uuid: pod.uuid.clone(),
        created: Some(chrono::Utc::now()),
        hostname,
        stage1: req.flavour,
        net: crate::network::describe(&network),
        apps: app_states,
        userns_slot,
        pinned,
        ..Default::default()
    };
    state.reserve(paths.dir())?;
    state.save(paths.dir())?;
    slot_guard.disarm();
    pod.move_to(Dir::Prepared)?;
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::AppRequest;

    /// An image named `name` whose app declares `mount_points` and handlers.
    fn image(name: &str, mount_points: &str, handlers: &str) -> ResolvedImage {
        let json = format!(
            r#"{{"acKind":"ImageManifest","acVersion":"0.8.11","name":"{name}","app":{{"exec":["/bin/app"],"user":"0","group":"0","mountPoints":[{mount_points}],"eventHandlers":[{handlers}]}}}}"#
        );
        ResolvedImage {
            id: format!("sha512-{}", "0".repeat(64)),
            name: name.to_string(),
            manifest: ImageManifest::from_slice(json.as_bytes()).unwrap(),
            lower: vec![PathBuf::from(format!("/layers/{name}"))],
            pinned: vec!["layer-a".into(), format!("image-{name}")],
        }
    }

    fn app(image: &str) -> AppRequest {
        AppRequest {
            image: image.into(),
            ..Default::default()
        }
    }

    fn pod(apps: Vec<AppRequest>) -> PodRequest {
        PodRequest {
            apps,
            ..Default::default()
        }
    }

    fn error(r: Result<PlannedPod>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn apps_are_named_after_their_images_and_must_differ() {
        let req = pod(vec![app("example.com/web"), app("example.com/db")]);
        let images = vec![
            image("example.com/web", "", ""),
            image("example.com/db", "", ""),
        ];
        let planned = plan_apps(&req, images, "h").unwrap();
        let names: Vec<&str> = planned.apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        let in_manifest: Vec<String> = planned
            .manifest
            .apps
            .iter()
            .map(|a| a.name.to_string())
            .collect();
        assert_eq!(in_manifest, ["web", "db"]);
        // Both pin the shared layer once.
        assert_eq!(
            planned.pinned,
            ["layer-a", "image-example.com/web", "image-example.com/db"]
        );

        let same = pod(vec![app("a.com/x"), app("b.com/x")]);
        let e = error(plan_apps(
            &same,
            vec![image("a.com/x", "", ""), image("b.com/x", "", "")],
            "h",
        ));
        assert!(e.contains("two apps are named \"x\""), "{e}");
        let mut apart = same.clone();
        apart.apps[1].name = Some("y".into());
        plan_apps(
            &apart,
            vec![image("a.com/x", "", ""), image("b.com/x", "", "")],
            "h",
        )
        .unwrap();
    }

    #[test]
    fn bad_requests_are_refused_naming_what() {
        let e = error(plan_apps(&pod(vec![]), vec![], "h"));
        assert_eq!(e, "no image given");
        let mut two = pod(vec![app("a.com/x"), app("a.com/y")]);
        two.interactive = true;
        let e = error(plan_apps(
            &two,
            vec![image("a.com/x", "", ""), image("a.com/y", "", "")],
            "h",
        ));
        assert!(e.contains("--interactive needs a pod of one app"), "{e}");
        let mut bad_name = pod(vec![app("a.com/x")]);
        bad_name.apps[0].name = Some("Not A Name".into());
        let e = error(plan_apps(&bad_name, vec![image("a.com/x", "", "")], "h"));
        assert!(e.starts_with("--name \"Not A Name\""), "{e}");
        let mut missing = pod(vec![app("a.com/x")]);
        missing.apps[0].mounts = vec![schema::Mount {
            volume: "nope".parse().unwrap(),
            path: "/data".into(),
            app_volume: None,
        }];
        let e = error(plan_apps(&missing, vec![image("a.com/x", "", "")], "h"));
        assert!(e.contains("--mount names volume \"nope\""), "{e}");
    }

    #[test]
    fn mount_points_get_empty_volumes_shared_by_name() {
        let mp = r#"{"name":"cache","path":"/cache"}"#;
        let req = pod(vec![app("a.com/x"), app("a.com/y")]);
        let planned = plan_apps(
            &req,
            vec![image("a.com/x", mp, ""), image("a.com/y", mp, "")],
            "h",
        )
        .unwrap();
        // One empty volume, mounted by both apps.
        assert_eq!(planned.volumes.len(), 1);
        assert_eq!(planned.volumes[0].name.as_str(), "cache");
        assert_eq!(planned.volumes[0].kind, schema::VolumeKind::Empty);
        assert_eq!(planned.manifest.volumes.len(), 1);
        for a in &planned.manifest.apps {
            assert_eq!(a.mounts.len(), 1);
            assert_eq!(a.mounts[0].path, "/cache");
        }
    }

    #[test]
    fn event_handlers_and_layers_reach_the_plan() {
        let handlers = r#"{"name":"pre-start","exec":["/bin/pre"]},{"name":"post-stop","exec":["/bin/post","x"]}"#;
        let req = pod(vec![app("a.com/x")]);
        let planned = plan_apps(&req, vec![image("a.com/x", "", handlers)], "h").unwrap();
        let a = &planned.apps[0];
        assert_eq!(
            a.hooks,
            Hooks {
                pre_start: Some(vec!["/bin/pre".into()]),
                post_stop: Some(vec!["/bin/post".into(), "x".into()]),
            }
        );
        assert_eq!(a.lower, [PathBuf::from("/layers/a.com/x")]);
        assert_eq!(a.state.image_name, "a.com/x");
        let hostname = a.spec.spec.hostname().clone().unwrap_or_default();
        assert_eq!(hostname, "h");
    }
}
