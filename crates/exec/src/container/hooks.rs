//! Running an OCI hook: its path with its args and env (nothing inherited), the
//! container's state on stdin, its timeout enforced. Used by the runtime (prestart,
//! createRuntime, poststart, poststop) and by the container's process (createContainer,
//! startContainer).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// Runs `hook` with `state` on its stdin; an error says which hook and why.
pub fn run(kind: &str, hook: &Hook, state: &str) -> Result<(), String> {
    let path = hook.path();
    let name = format!("{kind} hook {}", path.display());
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| format!("{name}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state may close stdin early: not an error.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{name} failed: {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("{name}: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{name} timed out after {} s",
                hook.timeout().unwrap_or(0)
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn state_on_stdin_env_and_failures() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {0}; echo \"$X\" >> {0}", out.display())],
            "env": ["X=hello"]
        }));
        run("prestart", &h, "{\"id\":\"c\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c\"}hello\n"
        );
        let e = run(
            "poststop",
            &hook(serde_json::json!({"path": "/bin/false"})),
            "",
        )
        .unwrap_err();
        assert!(e.starts_with("poststop hook /bin/false failed"), "{e}");
        let slow =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let e = run("createRuntime", &slow, "").unwrap_err();
        assert!(e.contains("timed out after 1 s"), "{e}");
        let e = run(
            "prestart",
            &hook(serde_json::json!({"path": "/nonexistent"})),
            "",
        )
        .unwrap_err();
        assert!(e.starts_with("prestart hook /nonexistent: "), "{e}");
    }
}
