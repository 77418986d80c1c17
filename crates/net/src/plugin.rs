//! Finding and running CNI plugins. A plugin is an executable named by a configuration's
//! `type`, found in the plugin directories (rkt's order: `<local-config>/net.d/plugins`,
//! then the distribution's /usr/lib/cni, then /opt/cni/bin). It runs with the CNI_*
//! variables and PATH only, its configuration on stdin, in a process group of its own,
//! under a timeout: a plugin that hangs is killed with everything it started.
//!
//! Two things keep a plugin from outliving the pod's bookkeeping. It dies with the thread
//! that started it (PDEATHSIG), so a supervisor killed during ADD does not leave a plugin
//! running on. And it may inherit the pod's lock (`Invoker::hold`), so a helper it started
//! (an IPAM plugin, iptables) still holds the pod locked while it finishes: `gc` waits for
//! it before its DEL, which would otherwise race a half-done ADD.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

/// How long a plugin may run unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a plugin may print on stdout (a result) or stderr (kept for errors).
const MAX_STDOUT: usize = 1 << 20;
const MAX_STDERR: usize = 16 << 10;
/// After a plugin exits, how long helpers it left holding its pipes may keep them.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// PATH for plugins (they run iptables, ip) when vessel has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where plugins are looked for, in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginPaths(pub Vec<PathBuf>);

impl PluginPaths {
    /// rkt's order: the operator's plugins first, then the distribution's.
    pub fn standard(local_config: &Path) -> PluginPaths {
        PluginPaths(vec![
            local_config.join("net.d").join("plugins"),
            PathBuf::from("/usr/lib/cni"),
            PathBuf::from("/opt/cni/bin"),
        ])
    }

    /// From a `:`-separated list (VESSEL_CNI_PATH).
    pub fn from_list(list: &str) -> PluginPaths {
        PluginPaths(
            list.split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        )
    }

    /// The first regular, executable file named `plugin_type`.
    pub fn find(&self, plugin_type: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        if crate::names::check_plugin_type(plugin_type).is_err() {
            return None;
        }
        self.0.iter().map(|d| d.join(plugin_type)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }

    /// CNI_PATH: how a plugin finds the plugins it delegates to (IPAM).
    pub fn cni_path(&self) -> String {
        self.0
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
        }
    }
}

/// The parameters of one plugin run (CNI's environment variables).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub command: Command,
    pub container_id: &'a str,
    /// None on a DEL after the namespace is gone.
    pub netns: Option<&'a Path>,
    pub ifname: &'a str,
    pub args: &'a str,
    pub cni_path: &'a str,
}

/// How plugins are run.
#[derive(Debug, Clone, Copy)]
pub struct Invoker {
    pub timeout: Duration,
    /// A descriptor the plugin inherits (the pod's lock: see the module's comment).
    pub hold: Option<RawFd>,
}

impl Default for Invoker {
    fn default() -> Self {
        Invoker {
            timeout: DEFAULT_TIMEOUT,
            hold: None,
        }
    }
}

/// Why a plugin run failed.
#[derive(Debug)]
pub enum Failure {
    /// It could not be started.
    Spawn(io::Error),
    /// It ran past the timeout and was killed.
    TimedOut,
    /// It exited non-zero; `message` is its CNI error (`msg; details (code N)`) or the end
    /// of what it printed.
    Exited {
        status: ExitStatus,
        message: String,
    },
    Io(io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Spawn(e) => write!(f, "could not start it: {e}"),
            Failure::TimedOut => write!(f, "timed out"),
            Failure::Exited { status, message } => match status.code() {
                Some(c) => write!(f, "{message} (exit status {c})"),
                None => write!(f, "{message} ({status})"),
            },
            Failure::Io(e) => write!(f, "talking to it: {e}"),
        }
    }
}

impl Invoker {
    /// Runs `plugin` once and returns what it printed on stdout.
    pub fn run(&self, plugin: &Path, call: &Call<'_>, stdin: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut cmd = std::process::Command::new(plugin);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            )
            .env("CNI_COMMAND", call.command.as_str())
            .env("CNI_CONTAINERID", call.container_id)
            .env("CNI_IFNAME", call.ifname)
            .env("CNI_PATH", call.cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir("/")
            .process_group(0);
        if let Some(ns) = call.netns {
            cmd.env("CNI_NETNS", ns);
        }
        if !call.args.is_empty() {
            cmd.env("CNI_ARGS", call.args);
        }
        let hold = self.hold;
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(fd) = hold {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(Failure::Spawn)?;
        let pid = child.id() as i32;
        let kill_group = || {
            // SAFETY: the plugin's own process group (process_group(0) above).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        };
        let outcome = self.exchange(&mut child, stdin);
        match outcome {
            Ok((stdout, stderr, status)) => {
                if status.success() {
                    Ok(stdout)
                } else {
                    Err(Failure::Exited {
                        status,
                        message: failure_message(&stdout, &stderr),
                    })
                }
            }
            Err(e) => {
                kill_group();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Feeds stdin, collects stdout and stderr, and waits for the exit, all within the
    /// timeout.
    fn exchange(
        &self,
        child: &mut std::process::Child,
        input: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>, ExitStatus), Failure> {
        let deadline = Instant::now() + self.timeout;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(child),
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| Failure::Io(e.into()))?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        for fd in [
            stdin.as_ref().map(|f| f.as_fd()),
            stdout.as_ref().map(|f| f.as_fd()),
            stderr.as_ref().map(|f| f.as_fd()),
        ]
        .into_iter()
        .flatten()
        {
            set_nonblocking(fd).map_err(Failure::Io)?;
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut written = 0;
        let mut exited_at: Option<Instant> = None;
        loop {
            if stdin.is_some() && written == input.len() {
                stdin = None; // EOF for the plugin
            }
            if exited_at.is_some() && stdout.is_none() && stderr.is_none() {
                break;
            }
            let now = Instant::now();
            let limit = match exited_at {
                Some(t) => (t + DRAIN_GRACE).min(deadline),
                None => deadline,
            };
            if now >= limit {
                if exited_at.is_some() {
                    break; // a helper holds the pipes: take what we have
                }
                return Err(Failure::TimedOut);
            }
            let wait = limit - now;
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
            let mut kinds = Vec::with_capacity(4);
            if let Some(f) = &stdin {
                fds.push(PollFd::new(f, PollFlags::OUT));
                kinds.push(0);
            }
            if let Some(f) = &stdout {
                fds.push(PollFd::new(f, PollFlags::IN));
                kinds.push(1);
            }
            if let Some(f) = &stderr {
                fds.push(PollFd::new(f, PollFlags::IN));
                kinds.push(2);
            }
            if exited_at.is_none() {
                fds.push(PollFd::new(&pidfd, PollFlags::IN));
                kinds.push(3);
            }
            let ts = rustix::time::Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: wait.subsec_nanos() as i64,
            };
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Failure::Io(e.into())),
            }
            let ready: Vec<(usize, PollFlags)> = fds
                .iter()
                .zip(&kinds)
                .map(|(f, k)| (*k, f.revents()))
                .filter(|(_, r)| !r.is_empty())
                .collect();
            drop(fds);
            for (kind, revents) in ready {
                match kind {
                    0 => {
                        let f = stdin.as_mut().expect("polled");
                        if revents.intersects(PollFlags::ERR | PollFlags::HUP) {
                            // The plugin will not read its configuration.
                            stdin = None;
                            written = input.len();
                            continue;
                        }
                        match f.write(&input[written..]) {
                            Ok(n) => written += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => {
                                stdin = None;
                                written = input.len();
                            }
                        }
                    }
                    1 => {
                        if !drain(&mut stdout, &mut out, MAX_STDOUT) {
                            stdout = None;
                        }
                    }
                    2 => {
                        if !drain(&mut stderr, &mut err, MAX_STDERR) {
                            stderr = None;
                        }
                    }
                    _ => exited_at = Some(Instant::now()),
                }
            }
        }
        let status = child.wait().map_err(Failure::Io)?;
        Ok((out, err, status))
    }
}

/// Reads what is available; false at end of file (or an error).
fn drain<R: Read>(pipe: &mut Option<R>, into: &mut Vec<u8>, cap: usize) -> bool {
    let Some(r) = pipe.as_mut() else {
        return false;
    };
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let room = cap.saturating_sub(into.len());
                into.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    let _ = fd.as_raw_fd();
    Ok(())
}

/// A plugin's error: its CNI error object (`{"code", "msg", "details"}`) when it printed
/// one, else the end of its output. Control characters are escaped.
pub fn failure_message(stdout: &[u8], stderr: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct CniError {
        #[serde(default)]
        code: Option<u64>,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    if let Ok(e) = serde_json::from_slice::<CniError>(stdout) {
        if !e.msg.is_empty() {
            let mut m = escape(&e.msg);
            if !e.details.is_empty() {
                m.push_str("; ");
                m.push_str(&escape(&e.details));
            }
            if let Some(c) = e.code {
                m.push_str(&format!(" (CNI error {c})"));
            }
            return m;
        }
    }
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let text = String::from_utf8_lossy(text);
    let text = text.trim();
    if text.is_empty() {
        return "it failed and printed nothing".into();
    }
    let tail: String = {
        let chars: Vec<char> = text.chars().collect();
        let start = chars.len().saturating_sub(400);
        chars[start..].iter().collect()
    };
    escape(&tail)
}

/// Escapes control characters (a plugin's output is not ours to let move the cursor).
pub fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_default().collect::<Vec<_>>()
            } else if c == '\n' {
                vec![' ']
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        let draft = dir.join(format!("{name}.draft"));
        std::fs::write(&draft, format!("#!/bin/sh\n{body}\n")).unwrap();
        // Copied by another process: a test thread forking meanwhile would inherit our
        // write descriptor of the file and make its exec fail with ETXTBSY.
        let cp = std::process::Command::new("cp")
            .arg(&draft)
            .arg(&p)
            .status()
            .unwrap();
        assert!(cp.success());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn call(command: Command) -> Call<'static> {
        Call {
            command,
            container_id: "c1",
            netns: Some(Path::new("/proc/self/ns/net")),
            ifname: "eth0",
            args: "A=1",
            cni_path: "/nowhere",
        }
    }

    #[test]
    fn finds_executables_in_order() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        script(&b, "x", "true");
        std::fs::write(a.join("x"), "not executable").unwrap();
        let paths = PluginPaths(vec![a.clone(), b.clone()]);
        assert_eq!(paths.find("x"), Some(b.join("x")));
        assert_eq!(paths.find("y"), None);
        assert_eq!(paths.find("../b/x"), None);
        assert_eq!(paths.cni_path(), format!("{}:{}", a.display(), b.display()));
        assert_eq!(PluginPaths::from_list("/a::/b").0.len(), 2);
    }

    #[test]
    fn passes_the_environment_and_stdin() {
        let t = tempfile::tempdir().unwrap();
        let p = script(
            t.path(),
            "echo",
            r#"printf '%s|%s|%s|%s|%s|' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS"; cat"#,
        );
        let out = Invoker::default()
            .run(&p, &call(Command::Add), b"{\"x\":1}")
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ADD|c1|/proc/self/ns/net|eth0|A=1|{\"x\":1}"
        );
    }

    #[test]
    fn a_large_input_a_plugin_never_reads_does_not_block() {
        let t = tempfile::tempdir().unwrap();
        let p = script(t.path(), "deaf", "echo '{}'");
        let big = vec![b' '; 1 << 20];
        assert_eq!(
            Invoker::default()
                .run(&p, &call(Command::Add), &big)
                .unwrap(),
            b"{}\n"
        );
    }

    #[test]
    fn errors_carry_the_plugins_message() {
        let t = tempfile::tempdir().unwrap();
        let p = script(
            t.path(),
            "fail",
            r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no subnet"}'; exit 1"#,
        );
        let e = Invoker::default()
            .run(&p, &call(Command::Add), b"{}")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "bad config; no subnet (CNI error 7) (exit status 1)");
        let p = script(t.path(), "crash", "echo 'panic: \x1b[31mboom' >&2; exit 2");
        let e = Invoker::default()
            .run(&p, &call(Command::Del), b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("panic: \\u{1b}[31mboom"), "{e}");
    }

    #[test]
    fn a_hanging_plugin_is_killed_with_its_children() {
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("child-pid");
        let p = script(
            t.path(),
            "hang",
            &format!("sleep 1000 & echo $! > {}; wait", marker.display()),
        );
        let inv = Invoker {
            timeout: Duration::from_millis(300),
            hold: None,
        };
        let started = Instant::now();
        let e = inv.run(&p, &call(Command::Add), b"{}").unwrap_err();
        assert!(matches!(e, Failure::TimedOut), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild got SIGKILL with the group; it may linger as a zombie of init.
        std::thread::sleep(Duration::from_millis(100));
        let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "the plugin's child still runs: {state}"
        );
    }

    #[test]
    fn a_helper_holding_the_pipes_does_not_stall_us() {
        let t = tempfile::tempdir().unwrap();
        let p = script(t.path(), "leaky", "(sleep 5) & echo '{}'");
        let started = Instant::now();
        let out = Invoker::default()
            .run(&p, &call(Command::Add), b"{}")
            .unwrap();
        assert_eq!(out, b"{}\n");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
