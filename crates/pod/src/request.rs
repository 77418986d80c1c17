//! What the user asked for: a pod of apps, from the command line (or, later, a pod
//! manifest), before any image is resolved.

use exec::plan::NetMode;

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
    pub net: NetMode,
    pub insecure: Insecure,
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
