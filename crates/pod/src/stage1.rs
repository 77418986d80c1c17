//! Which stage1 flavour a pod runs under, and what a flavour refuses (docs/architecture.md,
//! "Stage1 flavours"). Vessel's stage1s are built in: `default`, `fly` and `kvm` are
//! chosen with `--stage1`, or with rkt's ways of naming a stage1 image
//! (`--stage1-name=coreos.com/rkt/stage1-fly:1.30.0`, `--stage1-path=.../stage1-fly.aci`,
//! the `stage1` configuration kind), each mapped onto a built-in flavour. Anything that
//! would need a stage1 image of its own is refused, naming the flag and why.

use exec::plan::Flavour;

use crate::request::PodRequest;

/// Why only these names work, for every refusal.
pub const BUILT_IN: &str = "Vessel's stage1s are built in: default, fly, kvm";

/// A flavour as the user may name it (kvm among them, though it cannot run yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage1 {
    Default,
    Fly,
    Kvm,
}

/// rkt's names of its stage1 images, by the flavour each stands for.
const RKT_NAMES: [(&str, Stage1); 3] = [
    ("coreos.com/rkt/stage1-coreos", Stage1::Default),
    ("coreos.com/rkt/stage1-fly", Stage1::Fly),
    ("coreos.com/rkt/stage1-kvm", Stage1::Kvm),
];

/// rkt's file names of its stage1 images.
const RKT_FILES: [(&str, Stage1); 3] = [
    ("stage1-coreos.aci", Stage1::Default),
    ("stage1-fly.aci", Stage1::Fly),
    ("stage1-kvm.aci", Stage1::Kvm),
];

impl Stage1 {
    /// `--stage1=default|fly|kvm`.
    pub fn parse(value: &str) -> Result<Stage1, String> {
        match value {
            "default" => Ok(Stage1::Default),
            "fly" => Ok(Stage1::Fly),
            "kvm" => Ok(Stage1::Kvm),
            other => Err(format!("--stage1={other:?}: no such stage1 ({BUILT_IN})")),
        }
    }

    /// An image name as rkt's `--stage1-name` takes it, `NAME[:VERSION]` (any version: the
    /// built-in flavour has none).
    pub fn from_image_name(name: &str) -> Option<Stage1> {
        let bare = name.split_once(':').map(|(n, _)| n).unwrap_or(name);
        RKT_NAMES.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
    }

    /// A stage1 image file, by its file name (rkt's `stage1-fly.aci` and the like).
    pub fn from_path(path: &str) -> Option<Stage1> {
        let file = path.rsplit('/').next().unwrap_or(path);
        RKT_FILES.iter().find(|(f, _)| *f == file).map(|(_, s)| *s)
    }

    /// The flavour the executor runs.
    pub fn flavour(self) -> Result<Flavour, String> {
        match self {
            Stage1::Default => Ok(Flavour::Default),
            Stage1::Fly => Ok(Flavour::Fly),
            Stage1::Kvm => Ok(Flavour::Kvm),
        }
    }
}

/// rkt's stage1 flags, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Stage1Flags {
    pub stage1: Option<String>,
    pub name: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub hash: Option<String>,
    pub from_dir: Option<String>,
}

/// The `stage1` configuration kind in effect: its name (with version) and location, and
/// the file that set each.
#[derive(Debug, Clone, Default)]
pub struct Stage1Config {
    pub name: Option<(String, String, std::path::PathBuf)>,
    pub location: Option<(String, std::path::PathBuf)>,
}

/// The stage1 a pod asks for: the flags (at most one of them), else the configuration,
/// else the default. An error says which flag or file names what, and why it cannot be.
pub fn select(flags: &Stage1Flags, config: &Stage1Config) -> Result<Stage1, String> {
    let given: Vec<&str> = [
        ("--stage1", &flags.stage1),
        ("--stage1-name", &flags.name),
        ("--stage1-path", &flags.path),
        ("--stage1-url", &flags.url),
        ("--stage1-hash", &flags.hash),
        ("--stage1-from-dir", &flags.from_dir),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(f, _)| *f)
    .collect();
    if given.len() > 1 {
        return Err(format!(
            "{} each choose the stage1: give one of them",
            given.join(" and ")
        ));
    }
    if let Some(v) = &flags.stage1 {
        return Stage1::parse(v);
    }
    if let Some(n) = &flags.name {
        return Stage1::from_image_name(n).ok_or_else(|| {
            format!(
                "--stage1-name={n:?}: not a stage1 Vessel has ({BUILT_IN}; rkt's names coreos.com/rkt/stage1-coreos, stage1-fly and stage1-kvm map onto them)"
            )
        });
    }
    if let Some(p) = &flags.path {
        return Stage1::from_path(p).ok_or_else(|| {
            format!(
                "--stage1-path={p:?}: Vessel runs no stage1 image ({BUILT_IN}; a path whose file is stage1-coreos.aci, stage1-fly.aci or stage1-kvm.aci maps onto them)"
            )
        });
    }
    for (flag, v) in [
        ("--stage1-url", &flags.url),
        ("--stage1-hash", &flags.hash),
        ("--stage1-from-dir", &flags.from_dir),
    ] {
        if let Some(v) = v {
            return Err(format!(
                "{flag}={v:?}: Vessel fetches no stage1 image ({BUILT_IN}; choose one with --stage1)"
            ));
        }
    }
    if let Some((name, _version, file)) = &config.name {
        return Stage1::from_image_name(name).ok_or_else(|| {
            format!(
                "{}: stage1 name {name:?} is not a stage1 Vessel has ({BUILT_IN}; rkt's names coreos.com/rkt/stage1-coreos, stage1-fly and stage1-kvm map onto them)",
                file.display()
            )
        });
    }
    if let Some((loc, file)) = &config.location {
        let local = loc.starts_with('/') || loc.starts_with("file://");
        return local.then(|| Stage1::from_path(loc)).flatten().ok_or_else(|| {
            format!(
                "{}: stage1 location {loc:?} is not a stage1 Vessel has ({BUILT_IN}; a local path whose file is stage1-coreos.aci, stage1-fly.aci or stage1-kvm.aci maps onto them)",
                file.display()
            )
        });
    }
    Ok(Stage1::Default)
}

/// What a flavour cannot honour, refused before anything is made. fly runs one app in
/// the host's namespaces: no second app, no user namespace, no network or hostname of
/// its own. (The caller maps an absent `--net` to `host` for fly.)
pub fn check(flavour: Flavour, req: &PodRequest) -> Result<(), String> {
    if flavour == Flavour::Kvm {
        return check_kvm(req);
    }
    if flavour != Flavour::Fly {
        return Ok(());
    }
    let fly = "the fly stage1";
    if req.apps.len() > 1 {
        return Err(format!(
            "{fly} runs one app per pod; this pod has {} (run them as pods of their own, or with the default stage1)",
            req.apps.len()
        ));
    }
    if req.private_users {
        return Err(format!(
            "--private-users: {fly} runs its app in the host's namespaces, with no user namespace to map"
        ));
    }
    if req.network.selection != net::NetSelection::Host {
        return Err(format!(
            "--net={}: {fly} uses the host's network (leave --net out, or give --net=host)",
            describe_net(&req.network.selection)
        ));
    }
    if !req.network.ports.is_empty() {
        return Err(format!(
            "--port: {fly} uses the host's network, where the app's ports are the host's already"
        ));
    }
    if let Some(h) = &req.hostname {
        return Err(format!(
            "--hostname={h:?}: {fly} shares the host's uts namespace, whose hostname it keeps"
        ));
    }
    Ok(())
}

/// What the kvm stage1 cannot do: the host's network (a virtual machine has a network
/// stack of its own; the caller maps an absent `--net` to `default`), slirp4netns (rootless
/// only, which kvm is not), a user namespace (the virtual machine is the boundary), a
/// terminal, the host's IPC namespace.
fn check_kvm(req: &PodRequest) -> Result<(), String> {
    let kvm = "the kvm stage1";
    match &req.network.selection {
        net::NetSelection::Host => {
            return Err(format!(
                "--net=host: {kvm} runs the pod in a virtual machine, whose kernel has a network stack of its own and cannot share the host's (give CNI networks, e.g. --net=default, or --net=none)"
            ))
        }
        // Rootless, slirp4netns is the default, and kvm is refused as any rootless stage1
        // but the default (`prepare::check_rootless`).
        net::NetSelection::Slirp4netns if !exec::rootless::active() => {
            return Err(format!(
                "--net={}: {kvm} joins the pod to CNI networks (give --net=default, named networks, or none)",
                net::selection::SLIRP
            ))
        }
        _ => {}
    }
    if req.interactive {
        return Err(format!(
            "--interactive: {kvm} relays the apps' output but gives them no terminal yet"
        ));
    }
    if req.private_users {
        return Err(format!(
            "--private-users: {kvm} isolates the pod in a virtual machine, with no user namespace to map"
        ));
    }
    Ok(())
}

fn describe_net(sel: &net::NetSelection) -> String {
    match sel {
        net::NetSelection::Host => "host".into(),
        net::NetSelection::None => "none".into(),
        net::NetSelection::Slirp4netns => net::selection::SLIRP.into(),
        net::NetSelection::Networks { all: true, .. } => "all".into(),
        net::NetSelection::Networks { names, .. } => names
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The hostname of a fly pod: the host's own.
pub fn host_hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: impl FnOnce(&mut Stage1Flags)) -> Stage1Flags {
        let mut s = Stage1Flags::default();
        f(&mut s);
        s
    }

    fn select_flags(f: impl FnOnce(&mut Stage1Flags)) -> Result<Stage1, String> {
        select(&flags(f), &Stage1Config::default())
    }

    #[test]
    fn the_stage1_flag_names_a_built_in_flavour() {
        assert_eq!(Stage1::parse("default"), Ok(Stage1::Default));
        assert_eq!(Stage1::parse("fly"), Ok(Stage1::Fly));
        assert_eq!(Stage1::parse("kvm"), Ok(Stage1::Kvm));
        let e = Stage1::parse("lxc").unwrap_err();
        assert!(
            e.contains("--stage1=\"lxc\"") && e.contains(BUILT_IN),
            "{e}"
        );
        assert_eq!(select_flags(|_| {}), Ok(Stage1::Default));
    }

    #[test]
    fn rkt_image_names_and_paths_map_onto_flavours() {
        let by_name = |n: &str| select_flags(|f| f.name = Some(n.into()));
        assert_eq!(by_name("coreos.com/rkt/stage1-fly:1.30.0"), Ok(Stage1::Fly));
        assert_eq!(by_name("coreos.com/rkt/stage1-fly"), Ok(Stage1::Fly));
        assert_eq!(
            by_name("coreos.com/rkt/stage1-coreos:1.30.0"),
            Ok(Stage1::Default)
        );
        assert_eq!(by_name("coreos.com/rkt/stage1-kvm"), Ok(Stage1::Kvm));
        let e = by_name("unknown").unwrap_err();
        assert!(
            e.starts_with("--stage1-name=\"unknown\"") && e.contains(BUILT_IN),
            "{e}"
        );
        // Close is not the same.
        assert!(by_name("coreos.com/rkt/stage1-flyer").is_err());

        let by_path = |p: &str| select_flags(|f| f.path = Some(p.into()));
        assert_eq!(by_path("/usr/lib/rkt/stage1-fly.aci"), Ok(Stage1::Fly));
        assert_eq!(by_path("stage1-coreos.aci"), Ok(Stage1::Default));
        assert_eq!(by_path("./stage1-kvm.aci"), Ok(Stage1::Kvm));
        let e = by_path("/tmp/my-stage1.aci").unwrap_err();
        assert!(e.starts_with("--stage1-path=\"/tmp/my-stage1.aci\""), "{e}");
        assert!(e.contains(BUILT_IN), "{e}");
    }

    #[test]
    fn stage1_images_from_elsewhere_are_refused_naming_the_flag() {
        for (flag, set) in [
            (
                "--stage1-url",
                (|f: &mut Stage1Flags| f.url = Some("https://x/s.aci".into()))
                    as fn(&mut Stage1Flags),
            ),
            ("--stage1-hash", |f| f.hash = Some("sha512-00".into())),
            ("--stage1-from-dir", |f| {
                f.from_dir = Some("stage1-fly.aci".into())
            }),
        ] {
            let e = select_flags(set).unwrap_err();
            assert!(e.starts_with(flag) && e.contains(BUILT_IN), "{e}");
        }
        let e = select_flags(|f| {
            f.stage1 = Some("fly".into());
            f.name = Some("coreos.com/rkt/stage1-fly".into());
        })
        .unwrap_err();
        assert!(e.contains("--stage1 and --stage1-name"), "{e}");
    }

    #[test]
    fn the_configuration_chooses_when_no_flag_does() {
        let file = std::path::PathBuf::from("/etc/vessel/stage1.d/s.json");
        let named = Stage1Config {
            name: Some((
                "coreos.com/rkt/stage1-fly".into(),
                "1.30.0".into(),
                file.clone(),
            )),
            location: None,
        };
        assert_eq!(select(&Stage1Flags::default(), &named), Ok(Stage1::Fly));
        // A flag wins over the configuration.
        let f = flags(|f| f.stage1 = Some("default".into()));
        assert_eq!(select(&f, &named), Ok(Stage1::Default));
        let located = Stage1Config {
            name: None,
            location: Some(("file:///usr/lib/rkt/stage1-fly.aci".into(), file.clone())),
        };
        assert_eq!(select(&Stage1Flags::default(), &located), Ok(Stage1::Fly));
        let remote = Stage1Config {
            name: None,
            location: Some(("https://example.com/stage1-fly.aci".into(), file.clone())),
        };
        let e = select(&Stage1Flags::default(), &remote).unwrap_err();
        assert!(
            e.starts_with("/etc/vessel/stage1.d/s.json: stage1 location"),
            "{e}"
        );
        let unknown = Stage1Config {
            name: Some(("example.com/stage1".into(), "1".into(), file)),
            location: None,
        };
        let e = select(&Stage1Flags::default(), &unknown).unwrap_err();
        assert!(
            e.contains("s.json: stage1 name \"example.com/stage1\""),
            "{e}"
        );
    }

    #[test]
    fn pods_recorded_before_flavours_are_default() {
        let old =
            r#"{"uuid":"u","created":null,"hostname":"h","net":"none","apps":[],"pinned":[]}"#;
        let st: crate::state::PodState = serde_json::from_str(old).unwrap();
        assert_eq!(st.stage1, Flavour::Default);
        let plan: exec::plan::PodPlan = serde_json::from_str(
            r#"{"uuid":"u","hostname":"h","net":"none","stage1_dir":"stage1","apps":[]}"#,
        )
        .unwrap();
        assert_eq!(plan.flavour, Flavour::Default);
        let mut fly = st.clone();
        fly.stage1 = Flavour::Fly;
        let json = serde_json::to_value(&fly).unwrap();
        assert_eq!(json["stage1"], "fly");
    }

    #[test]
    fn every_named_stage1_runs() {
        assert_eq!(Stage1::Kvm.flavour(), Ok(Flavour::Kvm));
        assert_eq!(Stage1::Fly.flavour(), Ok(Flavour::Fly));
    }

    #[test]
    fn fly_refuses_what_it_cannot_honour() {
        let app = || crate::request::AppRequest {
            image: "x".into(),
            ..Default::default()
        };
        let host = || PodRequest {
            apps: vec![app()],
            network: crate::network::NetFlags {
                selection: net::NetSelection::Host,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(check(Flavour::Fly, &host()), Ok(()));
        let mut two = host();
        two.apps.push(app());
        assert!(check(Flavour::Fly, &two)
            .unwrap_err()
            .contains("one app per pod"));
        assert_eq!(check(Flavour::Default, &two), Ok(()));
        let mut users = host();
        users.private_users = true;
        assert!(check(Flavour::Fly, &users)
            .unwrap_err()
            .starts_with("--private-users"));
        let mut own_net = host();
        own_net.network.selection = net::NetSelection::None;
        assert!(check(Flavour::Fly, &own_net)
            .unwrap_err()
            .starts_with("--net=none"));
        let mut named = host();
        named.hostname = Some("h".into());
        assert!(check(Flavour::Fly, &named)
            .unwrap_err()
            .starts_with("--hostname"));
    }
}
