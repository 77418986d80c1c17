//! User-mode networking through slirp4netns (`--net=slirp4netns`), as podman gives pods
//! without root: slirp4netns opens a tap device in the pod's network namespace (which the
//! caller's user namespace owns), gives it 10.0.2.100/24 with 10.0.2.2 as the gateway (the
//! host's loopback seen from the pod) and 10.0.2.3 as the resolver, and carries the pod's
//! packets as ordinary sockets of the user. Host ports are forwarded through its API socket
//! (`add_hostfwd`): slirp4netns itself binds them on the host.
//!
//! Its end: it gets the read end of a pipe (`--exit-fd`) whose write end only the caller
//! holds, so it exits when the caller does, however that ends (SIGKILL included); the caller
//! also kills it when the pod ends ([`Slirp::stop`], or dropping it).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{NetError, Result};
use crate::ports::PortMapping;

/// `$VESSEL_SLIRP4NETNS` names the program, else it is looked for on `$PATH`.
pub const BINARY_ENV: &str = "VESSEL_SLIRP4NETNS";
/// The pod's address, its gateway (the host's loopback) and resolver (slirp's defaults).
pub const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
pub const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
/// The pod's interface.
pub const IFNAME: &str = "tap0";
/// A larger MTU than Ethernet's makes slirp4netns several times faster (podman's choice).
const MTU: &str = "65520";

/// The slirp4netns program: `$VESSEL_SLIRP4NETNS`, else the first on `$PATH`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BINARY_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("slirp4netns"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running slirp4netns serving one pod.
pub struct Slirp {
    child: std::process::Child,
    /// The write end of its `--exit-fd`: closed, it exits.
    _exit: OwnedFd,
    ready: Option<OwnedFd>,
    /// The pod's directory, where the API socket is (reached through this descriptor, as
    /// the directory's path may be longer than a socket address holds).
    dir: OwnedFd,
    pub binary: PathBuf,
}

/// The API socket's name in the pod's directory.
pub const SOCKET: &str = "slirp4netns.sock";

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| NetError::io("a pipe for slirp4netns", e.into()))
}

fn err(reason: impl Into<String>) -> NetError {
    NetError::Slirp {
        reason: reason.into(),
    }
}

impl Slirp {
    /// Starts slirp4netns for the network namespace of `pid`, its API socket in `dir`
    /// and its output in `log`. Returns at once: [`Slirp::wait_ready`] waits for the
    /// interface.
    pub fn spawn(binary: &Path, pid: i32, dir: &Path, log: &Path) -> Result<Slirp> {
        let (exit_r, exit_w) = pipe()?;
        let (ready_r, ready_w) = pipe()?;
        let dirfd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| NetError::io(format!("opening {}", dir.display()), e.into()))?;
        let _ = std::fs::remove_file(dir.join(SOCKET));
        let out = std::fs::File::create(log)
            .map_err(|e| NetError::io(format!("creating {}", log.display()), e))?;
        let out2 = out
            .try_clone()
            .map_err(|e| NetError::io(format!("{}", log.display()), e))?;
        let (exit_fd, ready_fd) = (exit_r.as_raw_fd(), ready_w.as_raw_fd());
        let mut cmd = std::process::Command::new(binary);
        cmd.args([
            "--configure".to_string(),
            format!("--mtu={MTU}"),
            format!("--exit-fd={exit_fd}"),
            format!("--ready-fd={ready_fd}"),
            // Relative to its working directory, the pod's: a path short enough to bind.
            format!("--api-socket={SOCKET}"),
            pid.to_string(),
            IFNAME.to_string(),
        ])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(out2);
        // SAFETY: only fcntl (async-signal-safe) between fork and exec, on descriptors
        // this process owns.
        unsafe {
            cmd.pre_exec(move || {
                for fd in [exit_fd, ready_fd] {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| err(format!("running {}: {e}", binary.display())))?;
        drop(exit_r);
        drop(ready_w);
        Ok(Slirp {
            child,
            _exit: exit_w,
            ready: Some(ready_r),
            dir: dirfd,
            binary: binary.to_path_buf(),
        })
    }

    /// Waits until the pod's interface is configured (`timeout` at most). `log`: where its
    /// output is, quoted when it failed.
    pub fn wait_ready(&mut self, timeout: Duration, log: &Path) -> Result<()> {
        let Some(ready) = self.ready.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        let failed = |why: String| {
            let out = std::fs::read_to_string(log).unwrap_or_default();
            let out = out.trim();
            err(if out.is_empty() {
                why
            } else {
                format!("{why}: {out}")
            })
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(failed(format!(
                    "the pod's interface was not configured within {}s",
                    timeout.as_secs()
                )));
            }
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64,
            };
            let mut fds = [rustix::event::PollFd::new(
                &ready,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(0) => continue,
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(NetError::io("waiting for slirp4netns", e.into())),
            }
        }
        let mut b = [0u8; 1];
        match std::fs::File::from(ready).read(&mut b) {
            Ok(1) => Ok(()),
            _ => {
                let status = self
                    .child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                Err(failed(format!(
                    "it ended before configuring the pod's interface{status}"
                )))
            }
        }
    }

    /// Forwards a host port to the pod (the API's `add_hostfwd`); slirp4netns binds it.
    pub fn forward(&self, m: &PortMapping) -> Result<()> {
        let proto = match m.protocol.as_str() {
            p @ ("tcp" | "udp") => p,
            other => {
                return Err(NetError::Port {
                    mapping: m.to_string(),
                    reason: format!("slirp4netns forwards tcp and udp, not {other}"),
                })
            }
        };
        let host = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let req = serde_json::json!({
            "execute": "add_hostfwd",
            "arguments": {
                "proto": proto,
                "host_addr": host.to_string(),
                "host_port": m.host_port,
                "guest_addr": POD_IP.to_string(),
                "guest_port": m.container_port,
            }
        });
        let reply = self.call(&req)?;
        if let Some(e) = reply.get("error") {
            let desc = e
                .get("desc")
                .and_then(|d| d.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string());
            return Err(NetError::Port {
                mapping: m.to_string(),
                reason: format!("slirp4netns refused it: {desc}"),
            });
        }
        Ok(())
    }

    fn call(&self, req: &serde_json::Value) -> Result<serde_json::Value> {
        let path = format!("/proc/self/fd/{}/{SOCKET}", self.dir.as_raw_fd());
        let mut s = std::os::unix::net::UnixStream::connect(&path)
            .map_err(|e| NetError::io("connecting to slirp4netns's API socket", e))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        s.write_all(req.to_string().as_bytes())
            .and_then(|()| s.shutdown(std::net::Shutdown::Write))
            .map_err(|e| NetError::io("writing to slirp4netns's API socket", e))?;
        let mut out = String::new();
        s.read_to_string(&mut out)
            .map_err(|e| NetError::io("reading slirp4netns's API socket", e))?;
        serde_json::from_str(&out).map_err(|e| err(format!("its API answered {out:?}: {e}")))
    }

    /// Ends slirp4netns and waits for it.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The DNS settings slirp4netns gives a pod (its resolver, which forwards to the host's).
pub fn dns() -> crate::result::Dns {
    crate::result::Dns {
        nameservers: vec![DNS.to_string()],
        ..Default::default()
    }
}
