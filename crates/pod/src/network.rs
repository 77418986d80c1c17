//! A pod's CNI networks seen from stage0: what `prepare` decides (`NetRequest`, stored in
//! the pod), the ADD that runs while the pod starts (`Adding`), the /etc files that follow
//! from its results, and the teardown (DEL) that every way out of a pod ends with.
//!
//! Lifecycle of the pod's network namespace (docs/architecture.md, "Networking"):
//! 1. The pod's first process is cloned into a new network namespace.
//! 2. `start` pins that namespace onto `<pod>/netns` (a bind mount), writes the DEL record
//!    `<pod>/attachments.json` (configurations, interface names, CNI_ARGS, container ID,
//!    plugin paths) and runs ADD for each network on a thread of its own, while the
//!    supervisor prepares cgroups and hands the pod to its init, and the init mounts the
//!    apps' roots. Each result is added to the record as it comes.
//! 3. The init starts no app before the supervisor sends it the pod's /etc/hosts and
//!    /etc/resolv.conf, which it does once every ADD succeeded (else it kills the pod).
//! 4. `teardown` runs DEL for each recorded attachment in reverse order, with the same
//!    configuration, interface name and arguments, unpins the namespace and removes the
//!    record: when the pod ends (in `run --rm`'s background child after `run` returned),
//!    when its start fails, and in `rm` and `gc` for a pod whose supervisor died.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use net::etc::{DnsRequest, HostsRequest, ResolvConf};
use net::ports::PortMapping;
use net::{Attachment, Catalog, Invoker, NetSelection, PluginPaths};
use serde::{Deserialize, Serialize};

use crate::error::{PodError, Result};

/// Where networks and plugins are found, and how long a plugin may take.
#[derive(Debug, Clone)]
pub struct NetContext {
    /// `net.d` directories, lowest precedence first (system, then local).
    pub config_dirs: Vec<PathBuf>,
    pub plugin_paths: PluginPaths,
    pub timeout: Duration,
}

impl NetContext {
    pub fn invoker(&self, hold: Option<std::os::fd::RawFd>) -> Invoker {
        Invoker {
            timeout: self.timeout,
            hold,
        }
    }
}

/// `VESSEL_CNI_TIMEOUT`: how long one plugin run may take (`30s`, `500ms`, `2`).
pub const TIMEOUT_ENV: &str = "VESSEL_CNI_TIMEOUT";
/// `VESSEL_CNI_PATH`: where plugins are looked for, `:`-separated, in place of
/// `<local-config>/net.d/plugins:/usr/lib/cni:/opt/cni/bin`.
pub const PATH_ENV: &str = "VESSEL_CNI_PATH";

impl NetContext {
    /// The standard places under the configuration directories, as the environment
    /// adjusts them.
    pub fn new(system_config: &Path, local_config: &Path) -> Result<NetContext> {
        let plugin_paths = match std::env::var(PATH_ENV) {
            Ok(list) if !list.is_empty() => PluginPaths::from_list(&list),
            _ => PluginPaths::standard(local_config),
        };
        Ok(NetContext {
            config_dirs: net::catalog::config_dirs(system_config, local_config),
            plugin_paths,
            timeout: timeout_from_env()?,
        })
    }
}

/// The plugin timeout, from `VESSEL_CNI_TIMEOUT` or the default.
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var(TIMEOUT_ENV) {
        Ok(v) if !v.is_empty() => parse_duration(&v).ok_or_else(|| {
            PodError::Invalid(format!(
                "{TIMEOUT_ENV}={v:?}: not a duration such as 30s or 500ms"
            ))
        }),
        _ => Ok(net::plugin::DEFAULT_TIMEOUT),
    }
}

fn parse_duration(v: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        (v, 1.0)
    };
    let secs = num.trim().parse::<f64>().ok()? * scale;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// How teardown runs plugins outside a supervisor (`rm`, `gc`, `run --rm`'s child).
pub fn teardown_invoker(hold: Option<std::os::fd::RawFd>) -> Invoker {
    Invoker {
        timeout: timeout_from_env().unwrap_or(net::plugin::DEFAULT_TIMEOUT),
        hold,
    }
}

/// What the user asked of the pod's network, checked (`--net`, `--port`, `--dns*`,
/// `--hosts-entry`).
#[derive(Debug, Clone, Default)]
pub struct NetFlags {
    pub selection: NetSelection,
    pub ports: Vec<net::ports::PortRequest>,
    pub dns: DnsRequest,
    pub hosts: HostsRequest,
}

/// What `prepare` decided about the pod's network, stored with the pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetRequest {
    pub selection: NetSelection,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    #[serde(default)]
    pub dns: DnsRequest,
    #[serde(default)]
    pub hosts: HostsRequest,
    /// The networks to join, in order, as planned (no results yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl NetRequest {
    pub fn uses_cni(&self) -> bool {
        !self.attachments.is_empty()
    }

    pub fn load(path: &Path) -> Result<NetRequest> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| PodError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NetRequest::default()),
            Err(e) => Err(PodError::io(path, e)),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(self).expect("serialisable"))
            .map_err(|e| PodError::io(path, e))
    }
}

fn net_err(e: net::NetError) -> PodError {
    PodError::Invalid(e.to_string())
}

/// Decides the pod's networks: checks the selection against the configurations, resolves
/// `--port` names against the apps' ports, finds every plugin, and checks the host ports
/// are free. Everything that can be refused is refused here, before the pod exists.
pub fn plan(
    ctx: &NetContext,
    uuid: &str,
    flags: &NetFlags,
    app_ports: &[net::ports::AppPort],
) -> Result<NetRequest> {
    let ports = net::ports::resolve(&flags.ports, app_ports).map_err(net_err)?;
    // Without CNI networks nothing is read (but ports are still refused: they need one).
    let dirs: &[PathBuf] = if flags.selection.uses_cni() {
        &ctx.config_dirs
    } else {
        &[]
    };
    let catalog = Catalog::load(dirs).map_err(net_err)?;
    for w in &catalog.warnings {
        eprintln!("vessel: warning: {w}");
    }
    let attachments =
        net::plan::attachments(&catalog, &flags.selection, uuid, &ctx.plugin_paths, &ports)
            .map_err(net_err)?;
    // Taken now? Then the pod would never be reached: say so before it exists.
    drop(net::ports::reserve(&ports).map_err(net_err)?);
    Ok(NetRequest {
        selection: flags.selection.clone(),
        ports,
        dns: flags.dns.clone(),
        hosts: flags.hosts.clone(),
        attachments,
    })
}

/// What `list` and `status` show of the networks asked for: `host`, `none`, or the CNI
/// networks' names in joining order.
pub fn describe(req: &NetRequest) -> String {
    if req.attachments.is_empty() {
        return req.selection.mode_name().to_string();
    }
    req.attachments
        .iter()
        .map(|a| a.network.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The /etc files of the pod's apps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcFiles {
    pub hosts: String,
    /// None: the image's own resolv.conf.
    pub resolv_conf: Option<String>,
}

/// The /etc files of a pod whose addresses are `pod_ips` (none: `--net=none` or
/// `host`). `host_net`: the pod uses the host's network, whose resolv.conf it gets
/// unless the flags say otherwise.
pub fn etc_files(
    req: &NetRequest,
    hostname: &str,
    pod_ips: &[IpAddr],
    dns: &[(&str, &net::result::Dns)],
    host_net: bool,
) -> EtcFiles {
    let hosts = if req.hosts.host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        net::etc::hosts_file(hostname, pod_ips, &req.hosts)
    };
    let resolv_conf = match net::etc::resolv_conf(&req.dns, dns) {
        ResolvConf::Generated(s) => Some(s),
        ResolvConf::Host => std::fs::read_to_string("/etc/resolv.conf").ok(),
        ResolvConf::Image if host_net && req.dns.source == net::etc::DnsSource::Auto => {
            std::fs::read_to_string("/etc/resolv.conf").ok()
        }
        ResolvConf::Image => None,
    };
    EtcFiles { hosts, resolv_conf }
}

/// What the executor's plan says of the pod's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNet {
    pub mode: exec::plan::NetMode,
    pub hosts: String,
    pub resolv_conf: Option<String>,
    pub gate: bool,
}

/// The pod's /etc files as the init binds them: final without CNI networks; with them,
/// placeholders it fills once the networks are up (`PodPlan::network_gate`).
pub fn plan_net(req: &NetRequest, hostname: &str) -> PlanNet {
    let mode = crate::request::net_mode(&req.selection);
    let etc = etc_files(req, hostname, &[], &[], mode == exec::plan::NetMode::Host);
    let gate = req.uses_cni() || req.selection.user_mode();
    let resolv_conf = if gate {
        resolv_conf_expected(req).then(|| "# written once the pod's networks are up\n".to_string())
    } else {
        etc.resolv_conf
    };
    PlanNet {
        mode,
        hosts: etc.hosts,
        resolv_conf,
        gate,
    }
}

/// What `run-prepared` may change of a prepared pod's network (ports stay as prepared).
#[derive(Debug, Clone, Default)]
pub struct NetOverride {
    pub selection: Option<NetSelection>,
    pub dns: Option<DnsRequest>,
    pub hosts: Option<HostsRequest>,
}

impl NetOverride {
    pub fn is_empty(&self) -> bool {
        self.selection.is_none() && self.dns.is_none() && self.hosts.is_none()
    }
}

/// Decides a prepared pod's network anew (`run-prepared --net=...`): its request, the
/// executor's plan and the recorded state. The caller holds the pod locked.
pub fn redo(
    paths: &crate::layout::PodPaths,
    uuid: &str,
    ctx: &NetContext,
    over: &NetOverride,
) -> Result<()> {
    let mut req = NetRequest::load(&paths.net_request())?;
    if let Some(sel) = &over.selection {
        let dirs: &[PathBuf] = if sel.uses_cni() {
            &ctx.config_dirs
        } else {
            &[]
        };
        let catalog = Catalog::load(dirs).map_err(net_err)?;
        req.attachments =
            net::plan::attachments(&catalog, sel, uuid, &ctx.plugin_paths, &req.ports)
                .map_err(net_err)?;
        req.selection = sel.clone();
    }
    if let Some(d) = &over.dns {
        req.dns = d.clone();
    }
    if let Some(h) = &over.hosts {
        req.hosts = h.clone();
    }
    let plan_path = paths.plan();
    let mut plan: exec::plan::PodPlan = serde_json::from_slice(
        &std::fs::read(&plan_path).map_err(|e| PodError::io(&plan_path, e))?,
    )
    .map_err(|e| PodError::Invalid(format!("{}: {e}", plan_path.display())))?;
    let p = plan_net(&req, &plan.hostname);
    plan.net = p.mode;
    plan.hosts = Some(p.hosts);
    plan.resolv_conf = p.resolv_conf;
    plan.network_gate = p.gate;
    req.save(&paths.net_request())?;
    std::fs::write(&plan_path, serde_json::to_vec(&plan).expect("serialisable"))
        .map_err(|e| PodError::io(&plan_path, e))?;
    let mut state = crate::state::PodState::load(paths.dir())?;
    state.net = describe(&req);
    state.save(paths.dir())
}

/// Whether the pod's resolv.conf is bound over the apps' own, decided before ADD (the
/// init binds it while ADD runs): flags that make one or ask for the host's, or a network
/// whose configuration may return DNS settings (a `dns` key, or host-local's
/// `resolvConf`).
pub fn resolv_conf_expected(req: &NetRequest) -> bool {
    use net::etc::DnsSource;
    if req.dns.generates() || req.dns.source == DnsSource::Host {
        return true;
    }
    if req.dns.source == DnsSource::None {
        return false;
    }
    if req.selection.user_mode() {
        // slirp4netns's resolver.
        return true;
    }
    req.attachments.iter().any(|a| {
        a.list().is_ok_and(|l| {
            l.plugins.iter().any(|p| {
                p.contains_key("dns")
                    || p.get("ipam")
                        .is_some_and(|i| i.get("resolvConf").is_some() || i.get("dns").is_some())
            })
        })
    })
}

/// The on-disk paths networking uses in a pod directory.
#[derive(Debug, Clone)]
pub struct NetPaths {
    /// The pinned network namespace.
    pub netns: PathBuf,
    /// What DEL needs (`Vec<Attachment>`), present while DEL is owed.
    pub record: PathBuf,
    /// The pod's directory (slirp4netns's API socket, `net::slirp::SOCKET`, is there).
    pub dir: PathBuf,
    /// slirp4netns's output.
    pub slirp_log: PathBuf,
}

fn save_record(path: &Path, atts: &[Attachment]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(atts).expect("serialisable"))?;
    std::fs::rename(&tmp, path)
}

fn load_record(path: &Path) -> std::io::Result<Option<Vec<Attachment>>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// ADD in progress, and beside it the check of the host's masquerading rules.
pub struct Adding {
    thread: std::thread::JoinHandle<std::result::Result<Vec<Attachment>, net::NetError>>,
    masquerade: Option<std::thread::JoinHandle<std::result::Result<(), net::NetError>>>,
}

/// Pins the network namespace of `pid` (the pod's first process), records the
/// attachments and starts ADD on a thread. The caller must `finish` it.
pub fn start(paths: &NetPaths, req: &NetRequest, pid: i32, inv: Invoker) -> Result<Adding> {
    // The record first: whatever happens from here, DEL knows what to undo.
    save_record(&paths.record, &req.attachments).map_err(|e| PodError::io(&paths.record, e))?;
    net::netns::pin(pid, &paths.netns).map_err(|e| PodError::io(&paths.netns, e))?;
    let mut atts = req.attachments.clone();
    let netns = paths.netns.clone();
    let record = paths.record.clone();
    let thread = std::thread::Builder::new()
        .name("cni-add".into())
        .spawn(move || {
            for i in 0..atts.len() {
                exec::trace::mark("cni: add");
                let r = atts[i].add(&netns, &inv);
                // The result is what DEL hands the plugins back: keep it before anything else.
                let _ = save_record(&record, &atts);
                r?;
            }
            exec::trace::mark("cni: added");
            Ok(atts)
        })
        .map_err(|e| PodError::Invalid(format!("starting the network thread: {e}")))?;
    // Not on ADD's path: the rules only have to be there before an app sends a packet.
    let masquerade = match req.attachments.iter().find_map(|a| {
        a.host_masquerade()
            .map(|subnet| (a.network.clone(), subnet))
    }) {
        Some((network, subnet)) => Some(
            std::thread::Builder::new()
                .name("masquerade".into())
                .spawn(move || net::masquerade::ensure(&network, subnet))
                .map_err(|e| PodError::Invalid(format!("starting the network thread: {e}")))?,
        ),
        None => None,
    };
    Ok(Adding { thread, masquerade })
}

impl Adding {
    /// Waits for ADD; the attachments with their results, or why a network failed.
    pub fn finish(self) -> Result<Vec<Attachment>> {
        let panicked = || PodError::Invalid("the network thread panicked".into());
        let added = self.thread.join().map_err(|_| panicked())?;
        let masqueraded = match self.masquerade {
            Some(m) => m.join().map_err(|_| panicked())?,
            None => Ok(()),
        };
        // A plugin's failure first: it is what the operator has to mend.
        let atts = added.map_err(net_err)?;
        masqueraded.map_err(net_err)?;
        Ok(atts)
    }
}

/// The networking of one pod start, held by its supervisor: the request prepare stored,
/// the host ports held while the pod runs, and the ADD in progress (or slirp4netns,
/// which ends when this does).
pub struct PodNet {
    request: NetRequest,
    paths: NetPaths,
    inv: Invoker,
    adding: Option<Adding>,
    slirp: Option<net::slirp::Slirp>,
    /// Held until slirp4netns binds them itself.
    ports: Option<net::ports::Reservation>,
}

impl PodNet {
    /// Reads what prepare decided and takes the host ports (a port taken since prepare
    /// is an error now, before the pod starts). `hold`: the pod's lock, for the plugins.
    pub fn begin(
        pod: &crate::layout::PodPaths,
        timeout: Duration,
        hold: Option<std::os::fd::RawFd>,
    ) -> Result<PodNet> {
        let request = NetRequest::load(&pod.net_request())?;
        let ports = net::ports::reserve(&request.ports).map_err(net_err)?;
        Ok(PodNet {
            request,
            paths: pod.net(),
            inv: Invoker { timeout, hold },
            adding: None,
            slirp: None,
            ports: Some(ports),
        })
    }

    pub fn uses_cni(&self) -> bool {
        self.request.uses_cni()
    }

    /// Whether the pod's network is made after its first process exists (CNI networks,
    /// slirp4netns): the init then waits for [`PodNet::finish`]'s result.
    pub fn gated(&self) -> bool {
        self.request.uses_cni() || self.request.selection.user_mode()
    }

    /// Starts ADD (or slirp4netns) in the network namespace of `pid`, the pod's first
    /// process.
    pub fn start(&mut self, pid: i32) -> Result<()> {
        if self.request.selection.user_mode() {
            let binary = net::slirp::binary().ok_or_else(|| {
                PodError::Invalid(format!(
                    "--net=slirp4netns: no slirp4netns program on $PATH (install Debian's slirp4netns, or name it in ${})",
                    net::slirp::BINARY_ENV
                ))
            })?;
            exec::trace::mark("slirp4netns: start");
            self.slirp = Some(
                net::slirp::Slirp::spawn(&binary, pid, &self.paths.dir, &self.paths.slirp_log)
                    .map_err(net_err)?,
            );
            return Ok(());
        }
        self.adding = Some(start(&self.paths, &self.request, pid, self.inv)?);
        Ok(())
    }

    /// slirp4netns: waits for the pod's interface, then forwards the host ports.
    fn finish_slirp(&mut self) -> Result<Vec<NetInfo>> {
        let Some(slirp) = self.slirp.as_mut() else {
            return Err(PodError::Invalid(
                "slirp4netns was never started for the pod".into(),
            ));
        };
        slirp
            .wait_ready(self.inv.timeout, &self.paths.slirp_log)
            .map_err(net_err)?;
        // Released only now, for slirp4netns to bind them (checked free a moment ago).
        self.ports = None;
        for m in &self.request.ports {
            slirp.forward(m).map_err(net_err)?;
        }
        exec::trace::mark("slirp4netns: ready");
        Ok(vec![NetInfo {
            net_name: net::selection::SLIRP.into(),
            net_conf: net::selection::SLIRP.into(),
            plugin_path: slirp.binary.display().to_string(),
            if_name: net::slirp::IFNAME.into(),
            ip: Some(IpAddr::V4(net::slirp::POD_IP)),
            args: String::new(),
            mask: Some(IpAddr::V4(net::slirp::NETMASK)),
            gateway: Some(IpAddr::V4(net::slirp::GATEWAY)),
        }])
    }

    /// Waits for ADD. Returns what the init writes into the pod's /etc files and what
    /// `status` shows of each network.
    pub fn finish(
        &mut self,
        hostname: &str,
    ) -> Result<(exec::crossing::network::NetworkReady, Vec<NetInfo>)> {
        if self.request.selection.user_mode() {
            let infos = self.finish_slirp()?;
            let dns = net::slirp::dns();
            let etc = etc_files(
                &self.request,
                hostname,
                &[IpAddr::V4(net::slirp::POD_IP)],
                &[(net::selection::SLIRP, &dns)],
                false,
            );
            let ready = exec::crossing::network::NetworkReady {
                hosts: etc.hosts,
                resolv_conf: etc.resolv_conf,
                env: Vec::new(),
            };
            return Ok((ready, infos));
        }
        let Some(adding) = self.adding.take() else {
            return Err(PodError::Invalid(
                "the pod's networks were never started".into(),
            ));
        };
        let atts = adding.finish()?;
        let ips: Vec<IpAddr> = atts.iter().filter_map(|a| Some(a.ip()?.addr())).collect();
        let results: Vec<(String, net::result::Dns)> = atts
            .iter()
            .map(|a| {
                let dns = a.parsed_result().map(|r| r.dns).unwrap_or_default();
                (a.network.clone(), dns)
            })
            .collect();
        let dns: Vec<(&str, &net::result::Dns)> =
            results.iter().map(|(n, d)| (n.as_str(), d)).collect();
        let etc = etc_files(&self.request, hostname, &ips, &dns, false);
        let ready = exec::crossing::network::NetworkReady {
            hosts: etc.hosts,
            resolv_conf: etc.resolv_conf,
            env: Vec::new(),
        };
        Ok((ready, atts.iter().map(NetInfo::of).collect()))
    }

    /// DEL of everything recorded (after waiting for an ADD still running). What failed
    /// is returned.
    pub fn teardown(&mut self) -> Vec<String> {
        if let Some(mut slirp) = self.slirp.take() {
            slirp.stop();
            let _ = std::fs::remove_file(self.paths.dir.join(net::slirp::SOCKET));
        }
        if let Some(adding) = self.adding.take() {
            let _ = adding.finish();
        }
        teardown(&self.paths, &self.inv)
    }
}

/// DEL of every attachment recorded in the pod (reverse order, ADD's results as
/// prevResult), then the namespace unpinned and the record removed. Best effort, as rkt:
/// a failing DEL is reported (returned) and the teardown goes on, so a pod can always be
/// removed; the plugins' own DEL tolerates what is already gone.
pub fn teardown(paths: &NetPaths, inv: &Invoker) -> Vec<String> {
    let mut problems = Vec::new();
    match load_record(&paths.record) {
        Ok(Some(atts)) => {
            let netns = net::netns::is_pinned(&paths.netns).then_some(paths.netns.as_path());
            for a in atts.iter().rev() {
                if let Err(e) = a.del(netns, inv) {
                    problems.push(e.to_string());
                }
            }
        }
        Ok(None) => {}
        Err(e) => problems.push(format!("{}: {e}", paths.record.display())),
    }
    if let Err(e) = net::netns::unpin(&paths.netns) {
        problems.push(format!("unpinning {}: {e}", paths.netns.display()));
    }
    if let Err(e) = std::fs::remove_file(&paths.record) {
        if e.kind() != std::io::ErrorKind::NotFound {
            problems.push(format!("{}: {e}", paths.record.display()));
        }
    }
    problems
}

/// CHECK of every attachment of a running pod: one line per network.
pub fn check(
    paths: &NetPaths,
    inv: &Invoker,
) -> Result<Vec<(String, std::result::Result<net::CheckOutcome, String>)>> {
    let atts = load_record(&paths.record)
        .map_err(|e| PodError::io(&paths.record, e))?
        .unwrap_or_default();
    if !net::netns::is_pinned(&paths.netns) {
        return Err(PodError::Invalid(
            "the pod's network namespace is gone (the pod is not running)".into(),
        ));
    }
    Ok(atts
        .iter()
        .map(|a| {
            (
                a.network.clone(),
                a.check(&paths.netns, inv).map_err(|e| e.to_string()),
            )
        })
        .collect())
}

/// A network of a pod as `status` and `list` show it (rkt's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetInfo {
    pub net_name: String,
    pub net_conf: String,
    pub plugin_path: String,
    pub if_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default)]
    pub args: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<IpAddr>,
    /// The host's side of the link (where host services such as the metadata service
    /// listen); ours, not rkt's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl NetInfo {
    pub fn of(a: &Attachment) -> NetInfo {
        let ip = a.ip();
        NetInfo {
            net_name: a.network.clone(),
            net_conf: a.origin.clone(),
            plugin_path: a
                .plugin_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            if_name: a.ifname.clone(),
            ip: ip.map(|n| n.addr()),
            args: a.args.clone(),
            mask: ip.map(|n| n.netmask()),
            gateway: a.gateway(),
        }
    }

    /// `default:ip4=172.16.28.5` (the NETWORKS column of `list`).
    pub fn short(&self) -> String {
        match self.ip {
            Some(IpAddr::V4(ip)) => format!("{}:ip4={ip}", self.net_name),
            Some(IpAddr::V6(ip)) => format!("{}:ip6={ip}", self.net_name),
            None => self.net_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn net_info_shows_rkts_fields() {
        let a = Attachment {
            network: "default".into(),
            origin: "builtin:default".into(),
            kind: net::config::ConfKind::Conflist,
            config: String::from_utf8(net::builtin::conflist("default", false).unwrap()).unwrap(),
            ifname: "eth0".into(),
            args: "A=1".into(),
            container_id: "u".into(),
            plugin_paths: PluginPaths(vec!["/usr/lib/cni".into()]),
            capability_args: Default::default(),
            result: Some(serde_json::json!({
                "cniVersion": "1.0.0",
                "interfaces": [{"name": "veth1"}, {"name": "eth0", "sandbox": "/n"}],
                "ips": [{"interface": 1, "address": "172.16.28.5/24", "gateway": "172.16.28.1"}]
            })),
        };
        let i = NetInfo::of(&a);
        let j = serde_json::to_value(&i).unwrap();
        assert_eq!(j["netName"], "default");
        assert_eq!(j["netConf"], "builtin:default");
        assert_eq!(j["ifName"], "eth0");
        assert_eq!(j["ip"], "172.16.28.5");
        assert_eq!(j["mask"], "255.255.255.0");
        assert_eq!(j["args"], "A=1");
        assert_eq!(j["gateway"], "172.16.28.1");
        assert_eq!(i.short(), "default:ip4=172.16.28.5");
    }
}
