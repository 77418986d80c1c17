//! Translates an app (its image's appc app, plus the user's flags) into the OCI runtime
//! spec the executor runs. Secure by default: Docker's capability set, the default seccomp
//! filter, no_new_privs, masked and read-only /proc and /sys paths, a minimal /dev.

use std::collections::BTreeMap;

use exec::caps::CapabilitySet;
use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use schema::{annotations::names, ImageManifest, TypedIsolator};

use crate::error::{PodError, Result};
use crate::request::{AppRequest, PodRequest, SeccompRequest};
use crate::volumes::AppMount;
use exec::seccomp::AppcSeccompMode;

use exec::app::DEFAULT_PATH;

/// Paths no app sees into (as runc and Docker mask them).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The app as the executor will run it.
pub struct AppSpec {
    pub name: String,
    pub spec: Spec,
    /// Names (or numbers) resolved in the image at start.
    pub user: String,
    pub group: Option<String>,
    /// What the user should hear about (an image's isolator that was not followed).
    pub warnings: Vec<String>,
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .expect("valid mount")
}

pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]
}

/// A volume as an OCI bind mount. Host sources are opened refusing symlinks on the way
/// (the `x-vessel-nosymlinks` option); an empty volume is a directory of the pod's
/// (`volumes/<name>`, relative to the pod directory until the pod runs).
pub fn volume_mount(m: &AppMount, v: &schema::Volume) -> Mount {
    let mut options = Vec::new();
    let source = match v.kind {
        schema::VolumeKind::Host => {
            options.push(if v.is_recursive() { "rbind" } else { "bind" });
            options.push(exec::mount::NO_SYMLINKS);
            v.source.clone().unwrap_or_default()
        }
        schema::VolumeKind::Empty => {
            options.push("bind");
            crate::layout::rel::volume(v.name.as_str())
                .to_string_lossy()
                .into_owned()
        }
    };
    if m.read_only {
        options.push("ro");
    }
    mount(&m.target, "bind", &source, &options)
}

fn json_array(v: Option<&str>) -> Vec<String> {
    v.and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// The command line: the image's, with `--exec` replacing the program and `-- args`
/// replacing the arguments (an OCI image's Cmd, keeping its Entrypoint).
pub fn command(image: &ImageManifest, req: &AppRequest) -> Result<Vec<String>> {
    let app = app_of(image, req);
    let image_argv: Vec<String> = app.map(|a| a.exec.argv().to_vec()).unwrap_or_default();
    let entrypoint = json_array(image.annotations.get(names::DOCKER_ENTRYPOINT));
    let is_oci = image.annotations.get(names::DOCKER_ENTRYPOINT).is_some()
        || image.annotations.get(names::DOCKER_CMD).is_some();
    let argv = match (&req.exec, &req.args) {
        (Some(exec), Some(args)) => std::iter::once(exec.clone())
            .chain(args.iter().cloned())
            .collect(),
        (Some(exec), None) => vec![exec.clone()],
        (None, Some(args)) if is_oci => {
            entrypoint.into_iter().chain(args.iter().cloned()).collect()
        }
        (None, Some(args)) => image_argv
            .first()
            .cloned()
            .into_iter()
            .chain(args.iter().cloned())
            .collect(),
        (None, None) => image_argv,
    };
    if argv.is_empty() {
        return Err(PodError::Invalid(format!(
            "image {} has no command to run; give one with --exec",
            req.image
        )));
    }
    Ok(argv)
}

/// Builds the environment, lowest precedence first: inherited, image, --set-env-file and
/// --set-env, --environment; then the appc execution environment.
/// What `--inherit-env` leaves out.
const SERVICE_MANAGER_VARS: &[&str] = &[
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

pub fn environment(
    image: &ImageManifest,
    req: &AppRequest,
    pod: &PodRequest,
    app_name: &str,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    fn put(env: &mut Vec<(String, String)>, k: &str, v: &str) {
        match env.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => env.push((k.to_string(), v.to_string())),
        }
    }
    let mut set = |k: &str, v: &str| put(&mut env, k, v);
    if pod.inherit_env {
        // Not the service manager's protocol variables: they are vessel's, and name
        // host sockets (an app that speaks sd_notify gets its own NOTIFY_SOCKET).
        for (k, v) in std::env::vars().filter(|(k, _)| !SERVICE_MANAGER_VARS.contains(&k.as_str()))
        {
            set(&k, &v);
        }
    }
    if let Some(app) = app_of(image, req) {
        for var in app.environment.iter() {
            set(var.name.as_str(), &var.value);
        }
    }
    for (k, v) in pod.set_env.iter().chain(req.environment.iter()) {
        set(k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        put(&mut env, "PATH", DEFAULT_PATH);
    }
    put(&mut env, "AC_APP_NAME", app_name);
    put(&mut env, "container", "vessel");
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Capabilities the app keeps: Docker's default set, narrowed or replaced by the image's
/// isolators; every capability with --insecure-options=capabilities.
fn capabilities(
    image: &ImageManifest,
    req: &AppRequest,
    pod: &PodRequest,
) -> Result<CapabilitySet> {
    if pod.insecure.capabilities {
        return Ok(CapabilitySet::all());
    }
    let parse = |names: &[String], origin: &str| {
        CapabilitySet::parse(names.iter()).map_err(|e| PodError::Invalid(format!("{origin}: {e}")))
    };
    let mut set = CapabilitySet::docker_default();
    // Pod isolators bound the app: applied first, the app's own may only narrow further.
    let pod_isolators = pod.isolators.iter().filter_map(|i| i.parse().ok());
    let app_isolators = app_of(image, req)
        .into_iter()
        .flat_map(|a| a.isolators.typed());
    for (origin, iso) in pod_isolators
        .map(|i| ("pod isolator", i))
        .chain(app_isolators.map(|i| ("image isolator", i)))
    {
        match iso {
            TypedIsolator::CapabilitiesRetain(c) => set = set.intersection(parse(&c.set, origin)?),
            TypedIsolator::CapabilitiesRemove(c) => set = set.difference(parse(&c.set, origin)?),
            _ => {}
        }
    }
    match (&req.caps_retain, &req.caps_remove) {
        (Some(_), Some(_)) => {
            return Err(PodError::Invalid(
                "--caps-retain and --caps-remove cannot be used together".into(),
            ))
        }
        (Some(retain), None) => set = parse(retain, "--caps-retain")?,
        (None, Some(remove)) => set = set.difference(parse(remove, "--caps-remove")?),
        (None, None) => {}
    }
    Ok(set)
}

/// The app's appc app: a pod manifest's replaces the image's.
pub fn app_of<'a>(image: &'a ImageManifest, req: &'a AppRequest) -> Option<&'a schema::App> {
    req.app.as_ref().or(image.app.as_ref())
}

/// Who asked for an isolator. The operator (the command line, a pod manifest) may relax
/// the security defaults; an image only tighten them: running an image must not hand it
/// more than the defaults unless whoever runs it says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Operator,
    Image,
}

/// The app's isolators with their origin, the operator's first: a pod manifest's app (which
/// replaces the image's), the pod manifest's pod isolators, then the image's app.
fn isolators(
    image: &ImageManifest,
    req: &AppRequest,
    pod: &PodRequest,
) -> Vec<(Origin, TypedIsolator)> {
    let mut out: Vec<(Origin, TypedIsolator)> = Vec::new();
    if let Some(app) = &req.app {
        out.extend(
            app.isolators
                .typed()
                .into_iter()
                .map(|i| (Origin::Operator, i)),
        );
    }
    out.extend(
        pod.isolators
            .iter()
            .filter_map(|i| i.parse().ok())
            .map(|i| (Origin::Operator, i)),
    );
    if req.app.is_none() {
        if let Some(app) = &image.app {
            out.extend(
                app.isolators
                    .typed()
                    .into_iter()
                    .map(|i| (Origin::Image, i)),
            );
        }
    }
    out
}

/// The seccomp filter. The operator's choice wins: `--seccomp`, else a seccomp isolator of
/// the pod manifest, each replacing the default profile (a retain-set of @appc.io/all turns
/// filtering off). Else the image's seccomp isolator narrows the default profile, never
/// widening it. None when filtering is off (also --insecure-options=seccomp).
fn seccomp_profile(
    image: &ImageManifest,
    req: &AppRequest,
    pod: &PodRequest,
    caps: CapabilitySet,
    warnings: &mut Vec<String>,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>> {
    if pod.insecure.seccomp {
        return Ok(None);
    }
    let requested = |origin: Origin| {
        isolators(image, req, pod)
            .into_iter()
            .filter(|(o, _)| *o == origin)
            .find_map(|(_, iso)| match iso {
                TypedIsolator::SeccompRetain(s) => Some(SeccompRequest {
                    mode: AppcSeccompMode::RetainSet,
                    errno: s.errno,
                    set: s.set,
                }),
                TypedIsolator::SeccompRemove(s) => Some(SeccompRequest {
                    mode: AppcSeccompMode::RemoveSet,
                    errno: s.errno,
                    set: s.set,
                }),
                _ => None,
            })
    };
    let (origin, request) = match (&req.seccomp, requested(Origin::Operator)) {
        (Some(r), _) => ("--seccomp", r.clone()),
        (None, Some(r)) => ("seccomp isolator", r),
        (None, None) => {
            let default = exec::seccomp::default_profile(caps);
            let Some(r) = requested(Origin::Image) else {
                return Ok(Some(default));
            };
            let narrowed =
                exec::seccomp::narrow_profile(&default, r.mode, &r.set, r.errno.as_deref())
                    .map_err(|e| PodError::Invalid(format!("the image's seccomp isolator: {e}")))?;
            if !narrowed.not_granted.is_empty() {
                warnings.push(format!(
                    "the image's seccomp isolator asks to allow {}, which the default filter \
                     denies; an image can only narrow the filter, so they stay denied \
                     (an operator may allow them with --seccomp or a pod manifest)",
                    narrowed.not_granted.join(", ")
                ));
            }
            return Ok(Some(narrowed.profile));
        }
    };
    exec::seccomp::appc_profile(request.mode, &request.set, request.errno.as_deref())
        .map_err(|e| PodError::Invalid(format!("{origin}: {e}")))
}

/// no_new_privs: on, unless the operator turns it off (a pod manifest's isolator, or
/// --insecure-options=capabilities). An image's isolator cannot turn it off.
fn no_new_privs(
    image: &ImageManifest,
    req: &AppRequest,
    pod: &PodRequest,
    warnings: &mut Vec<String>,
) -> bool {
    if pod.insecure.capabilities {
        return false;
    }
    let iso = isolators(image, req, pod)
        .into_iter()
        .find_map(|(origin, i)| match i {
            TypedIsolator::NoNewPrivileges(b) => Some((origin, b)),
            _ => None,
        });
    match iso {
        Some((Origin::Operator, b)) => b,
        Some((Origin::Image, false)) => {
            warnings.push(
                "the image's os/linux/no-new-privileges isolator is false, which only an \
                 operator may ask for: no_new_privs stays on"
                    .into(),
            );
            true
        }
        Some((Origin::Image, true)) | None => true,
    }
}

/// Limits from the image's isolators, overridden by the flags.
struct Resources {
    memory: Option<u64>,
    cpu_millis: Option<u64>,
    cpu_shares: Option<u64>,
    oom_score_adj: Option<i32>,
}

fn resources(image: &ImageManifest, req: &AppRequest, pod: &PodRequest) -> Resources {
    let mut r = Resources {
        memory: None,
        cpu_millis: None,
        cpu_shares: None,
        oom_score_adj: None,
    };
    // The pod's limits first, so an app's own (tighter) ones win; flags last.
    let pod_isolators = pod.isolators.iter().filter_map(|i| i.parse().ok());
    for iso in pod_isolators.chain(
        app_of(image, req)
            .into_iter()
            .flat_map(|a| a.isolators.typed()),
    ) {
        match iso {
            TypedIsolator::Memory(l) => r.memory = l.limit_bytes(),
            TypedIsolator::Cpu(l) => r.cpu_millis = l.limit_millis(),
            TypedIsolator::CpuShares(s) => r.cpu_shares = Some(s as u64),
            TypedIsolator::OomScoreAdj(a) => r.oom_score_adj = Some(a),
            _ => {}
        }
    }
    if req.memory.is_some() {
        r.memory = req.memory;
    }
    if req.cpu_millis.is_some() {
        r.cpu_millis = req.cpu_millis;
    }
    if req.cpu_shares.is_some() {
        r.cpu_shares = req.cpu_shares;
    }
    if req.oom_score_adj.is_some() {
        r.oom_score_adj = req.oom_score_adj;
    }
    r
}

const CPU_PERIOD_US: u64 = 100_000;

/// oci-spec knows capabilities by their names without `CAP_`; any it does not know (newer
/// than the crate) are left out.
fn to_oci_caps(set: CapabilitySet) -> oci_spec::runtime::Capabilities {
    set.iter()
        .filter_map(|c| c.short_name().parse().ok())
        .collect()
}

/// The one check of the ids an app will run as, from whichever source (flags, the
/// image, a pod manifest): never (uid_t)-1, and inside the pod's mapping under
/// `--private-users`. Names are resolved, and checked again, in the image at start.
fn check_ids(
    user: &str,
    group: Option<&str>,
    gids: &[u32],
    pod: &PodRequest,
) -> std::result::Result<(), schema::SchemaError> {
    let limit = pod.private_users.then_some(crate::userns::RANGE);
    schema::ids::check_user_or_group("user", user, limit)?;
    if let Some(g) = group {
        schema::ids::check_user_or_group("group", g, limit)?;
    }
    for &gid in gids {
        schema::ids::check_id("supplementary group", gid, limit)?;
    }
    Ok(())
}

pub fn build(
    image: &ImageManifest,
    req: &AppRequest,
    pod: &PodRequest,
    app_name: &str,
    hostname: &str,
    volumes: &[(AppMount, schema::Volume)],
) -> Result<AppSpec> {
    let bad = |what: &str, e: String| PodError::Invalid(format!("app {app_name}: {what}: {e}"));
    let argv = command(image, req)?;
    let app = app_of(image, req);
    let user = req
        .user
        .clone()
        .or_else(|| app.map(|a| a.user.clone()))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".into());
    let group_from_passwd = image.annotations.get(names::VESSEL_GROUP_FROM_PASSWD) == Some("true");
    let group = match &req.group {
        Some(g) => Some(g.clone()),
        None if group_from_passwd || req.user.is_some() => None,
        None => app.map(|a| a.group.clone()).filter(|g| !g.is_empty()),
    };
    let cwd = req
        .working_dir
        .clone()
        .or_else(|| app.and_then(|a| a.working_directory.clone()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(bad("working directory", format!("{cwd:?} is not absolute")));
    }
    let mut gids = app
        .map(|a| a.supplementary_gids.clone())
        .unwrap_or_default();
    gids.extend(&req.supplementary_gids);
    check_ids(&user, group.as_deref(), &gids, pod).map_err(|e| bad("user", e.to_string()))?;

    let mut warnings = Vec::new();
    let caps = capabilities(image, req, pod)?;
    let oci_caps = to_oci_caps(caps);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(oci_caps.clone())
        .effective(oci_caps.clone())
        .permitted(oci_caps)
        // Explicitly empty: oci-spec's defaults would put three capabilities here.
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()
        .map_err(|e| bad("capabilities", e.to_string()))?;
    let res = resources(image, req, pod);
    let mut process = ProcessBuilder::default()
        .args(argv)
        .env(environment(image, req, pod, app_name))
        .cwd(cwd)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .additional_gids(gids)
                .build()
                .map_err(|e| bad("user", e.to_string()))?,
        )
        .capabilities(capabilities)
        .no_new_privileges(no_new_privs(image, req, pod, &mut warnings))
        .terminal(pod.interactive)
        // Inherited from vessel, as rkt did; oci-spec would otherwise cap NOFILE at 1024.
        .rlimits(Vec::<oci_spec::runtime::PosixRlimit>::new())
        .build()
        .map_err(|e| bad("process", e.to_string()))?;
    if let Some(adj) = res.oom_score_adj {
        process.set_oom_score_adj(Some(adj));
    }

    let mut resources = LinuxResourcesBuilder::default();
    if let Some(m) = res.memory {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(m as i64)
                .build()
                .map_err(|e| bad("memory", e.to_string()))?,
        );
    }
    if res.cpu_millis.is_some() || res.cpu_shares.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(ms) = res.cpu_millis {
            cpu = cpu
                .quota((ms * CPU_PERIOD_US / 1000) as i64)
                .period(CPU_PERIOD_US);
        }
        if let Some(s) = res.cpu_shares {
            cpu = cpu.shares(s);
        }
        resources = resources.cpu(cpu.build().map_err(|e| bad("cpu", e.to_string()))?);
    }
    let mut linux = LinuxBuilder::default().resources(
        resources
            .build()
            .map_err(|e| bad("resources", e.to_string()))?,
    );
    // Always set: oci-spec's defaults would otherwise fill in its own lists.
    let (masked, readonly): (&[&str], &[&str]) = if pod.insecure.paths {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    linux = linux
        .masked_paths(masked.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(readonly.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    if let Some(profile) = seccomp_profile(image, req, pod, caps, &mut warnings)? {
        linux = linux.seccomp(profile);
    }
    let spec = SpecBuilder::default()
        .version("1.2.0")
        .hostname(hostname)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(req.readonly_rootfs)
                .build()
                .map_err(|e| bad("root", e.to_string()))?,
        )
        .process(process)
        .mounts(
            default_mounts()
                .into_iter()
                .chain(volumes.iter().map(|(m, v)| volume_mount(m, v)))
                .collect::<Vec<_>>(),
        )
        .linux(linux.build().map_err(|e| bad("linux", e.to_string()))?)
        .annotations(
            BTreeMap::<String, String>::new()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .map_err(|e| bad("spec", e.to_string()))?;
    Ok(AppSpec {
        name: app_name.to_string(),
        spec,
        user,
        group,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Insecure;

    fn manifest(json: &str) -> ImageManifest {
        ImageManifest::from_slice(json.as_bytes()).unwrap()
    }

    fn aci() -> ImageManifest {
        manifest(
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","app":{"exec":["/bin/app","--flag"],"user":"0","group":"0","environment":[{"name":"A","value":"image"},{"name":"B","value":"image"}]}}"#,
        )
    }

    #[test]
    fn exec_and_args() {
        let m = aci();
        let mut r = AppRequest {
            image: "x".into(),
            ..Default::default()
        };
        assert_eq!(command(&m, &r).unwrap(), vec!["/bin/app", "--flag"]);
        r.args = Some(vec!["a".into()]);
        assert_eq!(command(&m, &r).unwrap(), vec!["/bin/app", "a"]);
        r.exec = Some("/bin/sh".into());
        assert_eq!(command(&m, &r).unwrap(), vec!["/bin/sh", "a"]);
        r.args = None;
        assert_eq!(command(&m, &r).unwrap(), vec!["/bin/sh"]);
    }

    #[test]
    fn env_precedence() {
        let m = aci();
        let pod = PodRequest {
            set_env: vec![("B".into(), "pod".into()), ("C".into(), "pod".into())],
            ..Default::default()
        };
        let r = AppRequest {
            environment: vec![("C".into(), "app".into())],
            ..Default::default()
        };
        let env = environment(&m, &r, &pod, "app");
        assert!(env.contains(&"A=image".to_string()));
        assert!(env.contains(&"B=pod".to_string()));
        assert!(env.contains(&"C=app".to_string()));
        assert!(env.contains(&"AC_APP_NAME=app".to_string()));
        assert!(env.contains(&"container=vessel".to_string()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
    }

    #[test]
    fn secure_defaults_and_insecure_options() {
        let m = aci();
        let r = AppRequest {
            image: "x".into(),
            memory: Some(128 << 20),
            cpu_millis: Some(500),
            ..Default::default()
        };
        let s = build(&m, &r, &PodRequest::default(), "app", "h", &[])
            .unwrap()
            .spec;
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert_eq!(
            s.process().as_ref().unwrap().no_new_privileges(),
            Some(true)
        );
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(128 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);

        let pod = PodRequest {
            insecure: Insecure {
                capabilities: true,
                paths: true,
                seccomp: true,
            },
            ..Default::default()
        };
        let s = build(&m, &r, &pod, "app", "h", &[]).unwrap().spec;
        assert!(s.linux().as_ref().unwrap().seccomp().is_none());
        let linux = s.linux().as_ref().unwrap();
        assert!(linux.masked_paths().as_ref().unwrap().is_empty());
        assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    }
}
