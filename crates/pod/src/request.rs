//! What the user asked for: a pod of apps, from the command line (or, later, a pod
//! manifest), before any image is resolved.

#[derive(Debug, Clone, Default)]
pub struct AppRequest {
    /// The image as the user named it.
    pub image: String,
    pub name: Option<String>,
    /// `--exec`: replaces the image's program.
    pub exec: Option<String>,
    /// Arguments after `--`: replace the image's arguments (an OCI image's Cmd).
    pub args: Option<Vec<String>>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_gids: Vec<u32>,
    pub working_dir: Option<String>,
    /// `--environment K=V`, per app.
    pub environment: Vec<(String, String)>,
    pub readonly_rootfs: bool,
    pub memory: Option<u64>,
    pub cpu_millis: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub oom_score_adj: Option<i32>,
    /// `--caps-retain`: exactly these capabilities.
    pub caps_retain: Option<Vec<String>>,
    /// `--caps-remove`: the default set without these.
    pub caps_remove: Option<Vec<String>>,
    /// `--seccomp mode=retain|remove[,errno=E],SYSCALL,...`
    pub seccomp: Option<SeccompRequest>,
    /// `--annotation K=V`: runtime annotations of the app (shown by cat-manifest, status).
    pub annotations: Vec<(String, String)>,
    /// `--user-label K=V` (`--label`): user labels of the app.
    pub labels: Vec<(String, String)>,
    /// `--user-annotation K=V`: user annotations of the app.
    pub user_annotations: Vec<(String, String)>,
    /// `--signature FILE`: the image's detached signature, instead of the one next to it.
    pub signature: Option<std::path::PathBuf>,
    /// `--mount volume=NAME,target=PATH`
    pub mounts: Vec<schema::Mount>,
    /// From a pod manifest: replaces the image's app.
    pub app: Option<schema::App>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompRequest {
    pub mode: exec::seccomp::AppcSeccompMode,
    pub errno: Option<String>,
    pub set: Vec<String>,
}

impl SeccompRequest {
    /// Parses `mode=retain|remove[,errno=ERRNO],SYSCALL,...` (rkt's `--seccomp`).
    pub fn parse(s: &str) -> Result<SeccompRequest, String> {
        let mut mode = None;
        let mut errno = None;
        let mut set = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("mode", "retain")) => mode = Some(exec::seccomp::AppcSeccompMode::RetainSet),
                Some(("mode", "remove")) => mode = Some(exec::seccomp::AppcSeccompMode::RemoveSet),
                Some(("mode", other)) => {
                    return Err(format!("--seccomp: mode {other:?} is not retain or remove"))
                }
                Some(("errno", e)) => errno = Some(e.to_string()),
                Some((k, _)) => return Err(format!("--seccomp: unknown option {k:?}")),
                None => set.push(part.to_string()),
            }
        }
        let mode = mode.ok_or("--seccomp: mode=retain or mode=remove is required")?;
        if set.is_empty() {
            return Err("--seccomp: name at least one syscall or @group".into());
        }
        Ok(SeccompRequest { mode, errno, set })
    }
}

/// `--ipc`: whose IPC namespace the pod uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpcMode {
    /// A namespace of the pod's own (what `auto` means for this executor).
    #[default]
    Private,
    /// The host's.
    Parent,
}

/// Security checks the user turned off with --insecure-options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Insecure {
    pub capabilities: bool,
    pub paths: bool,
    pub seccomp: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PodRequest {
    pub apps: Vec<AppRequest>,
    pub hostname: Option<String>,
    /// `--set-env-file` entries, then `--set-env`, in order: later wins.
    pub set_env: Vec<(String, String)>,
    pub inherit_env: bool,
    /// `--net`, `--port`, `--dns*`, `--hosts-entry`.
    pub network: crate::network::NetFlags,
    pub ipc: IpcMode,
    pub insecure: Insecure,
    /// `--volume`s of the pod.
    pub volumes: Vec<schema::Volume>,
    /// `--private-users`: a user namespace mapped to a range of host ids of its own.
    pub private_users: bool,
    /// `--interactive`: the (single) app gets a terminal and our stdin.
    pub interactive: bool,
    /// Pod-level isolators (from a pod manifest): they bound the apps'.
    pub isolators: Vec<schema::Isolator>,
    /// Pod-level annotations (from a pod manifest).
    pub annotations: Vec<(String, String)>,
    /// The stage1 flavour (`--stage1` and rkt's stage1 flags, or the configuration):
    /// checked against the rest by `crate::stage1::check`.
    pub flavour: exec::plan::Flavour,
    /// `--kvm-accel` (kvm pods only).
    pub kvm_accel: Option<exec::plan::KvmAccel>,
}

impl PodRequest {
    /// Whose network namespace the pod's first process is cloned into.
    pub fn net_mode(&self) -> exec::plan::NetMode {
        net_mode(&self.network.selection)
    }
}

/// A pod on the host's network shares its namespace; any other gets one of its own.
pub fn net_mode(sel: &net::NetSelection) -> exec::plan::NetMode {
    match sel {
        net::NetSelection::Host => exec::plan::NetMode::Host,
        _ => exec::plan::NetMode::None,
    }
}

/// Parses `K=V` (the value may contain '='; the name may not be empty).
pub fn parse_env_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains('\0') => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// Reads an env file: `K=V` per line, blank lines and `#` comments ignored.
pub fn parse_env_file(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_env_pair(line).map_err(|e| format!("{origin}:{}: {e}", n + 1))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_flag() {
        let r = SeccompRequest::parse("mode=remove,errno=ENOTSUP,reboot,@docker/default-blacklist")
            .unwrap();
        assert_eq!(r.mode, exec::seccomp::AppcSeccompMode::RemoveSet);
        assert_eq!(r.errno.as_deref(), Some("ENOTSUP"));
        assert_eq!(r.set, vec!["reboot", "@docker/default-blacklist"]);
        assert!(SeccompRequest::parse("reboot")
            .unwrap_err()
            .contains("mode"));
        assert!(SeccompRequest::parse("mode=keep,x")
            .unwrap_err()
            .contains("keep"));
        assert!(SeccompRequest::parse("mode=retain")
            .unwrap_err()
            .contains("syscall"));
    }

    #[test]
    fn env_pairs_and_files() {
        assert_eq!(parse_env_pair("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_env_pair("=x").is_err());
        assert!(parse_env_pair("novalue").is_err());
        let f = parse_env_file("# c\nA=1\n\nB=2\n", "f").unwrap();
        assert_eq!(f, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert!(parse_env_file("A=1\nbad\n", "f")
            .unwrap_err()
            .contains("f:2"));
    }
}
