//! `vessel run` under a `Type=notify` unit: what it tells the service manager
//! (`$NOTIFY_SOCKET`), and the apps that speak `sd_notify` themselves.
//!
//! An app whose image carries `appc.io/executor/supports-systemd-notify=true` (rkt's
//! annotation) gets a datagram socket of the supervisor's, bound at
//! `notify/<app>.sock` in the pod directory and mounted at [`APP_NOTIFY_SOCKET`] in the
//! app, named by its `NOTIFY_SOCKET`. The supervisor reads it always (an app blocked on a
//! full queue would hang) and [`Readiness`] decides what goes on: the pod is READY once
//! every app has started and every such app has said READY=1 itself; the apps' STATUS,
//! WATCHDOG and the like are passed on as they are; MAINPID stays the supervisor's.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;

use exec::plan::AppPlan;
use oci_spec::runtime::{MountBuilder, Spec};
use schema::annotations::names;

use crate::error::{PodError, Result};
use crate::layout::PodPaths;

/// Where an app that speaks sd_notify finds its socket (podman's path for the same).
pub const APP_NOTIFY_SOCKET: &str = "/run/notify/notify.sock";

/// What of an app's message is passed on to the service manager (READY=1 is the pod's
/// to say; MAINPID, file descriptor store and barrier requests are refused).
const PASSED_ON: &[&str] = &[
    "STATUS",
    "WATCHDOG",
    "WATCHDOG_USEC",
    "EXTEND_TIMEOUT_USEC",
    "RELOADING",
    "STOPPING",
    "MONOTONIC_USEC",
    "ERRNO",
    "BUSERROR",
];

/// The image says its app speaks sd_notify.
pub fn supports_notify(image: &schema::ImageManifest) -> bool {
    image.annotations.get(names::SUPPORTS_SYSTEMD_NOTIFY) == Some("true")
}

/// Mounts the app's notify socket (its source relative to the pod directory, as the
/// plan records it) and names it in the app's environment.
pub fn give_socket(spec: &mut Spec, app: &str) {
    let mount = MountBuilder::default()
        .destination(APP_NOTIFY_SOCKET)
        .typ("bind")
        .source(crate::layout::rel::notify_socket(app))
        .options(vec!["bind".to_string()])
        .build()
        .expect("a valid mount");
    spec.mounts_mut().get_or_insert_with(Vec::new).push(mount);
    if let Some(process) = spec.process_mut() {
        let env = process.env_mut().get_or_insert_with(Vec::new);
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={APP_NOTIFY_SOCKET}"));
    }
}

/// Binds the notify socket of every app that speaks sd_notify, before the pod's init
/// mounts them: (app index, socket), non-blocking.
pub fn bind_sockets(paths: &PodPaths, apps: &[AppPlan]) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    for (index, app) in apps.iter().enumerate().filter(|(_, a)| a.notify) {
        let path = paths.notify_socket(&app.name);
        let io = |e| PodError::io(&path, e);
        let dir = path
            .parent()
            .expect("a socket in the pod's notify directory");
        std::fs::create_dir_all(dir).map_err(|e| PodError::io(dir, e))?;
        // The pod's root (an unprivileged host user under --private-users) opens the
        // socket through here to mount it; nothing is listed.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| PodError::io(dir, e))?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let sock = UnixDatagram::bind(&path).map_err(io)?;
        sock.set_nonblocking(true).map_err(io)?;
        // Whatever user the app runs as may send; only the app sees the socket (the pod
        // directory keeps other host users out).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).map_err(io)?;
        out.push((index, OwnedFd::from(sock)));
    }
    Ok(out)
}

/// What `vessel run` tells its service manager about the pod's start.
pub struct Readiness {
    socket: Option<sd::NotifySocket>,
    uuid: String,
    names: Vec<String>,
    /// Per app: it speaks sd_notify and has not said READY=1 yet.
    waiting: Vec<bool>,
    started: bool,
    /// READY=1 was sent, or the start failed: nothing more is said about the start.
    settled: bool,
}

impl Readiness {
    /// `socket`: the service manager's (`$NOTIFY_SOCKET`); None: nothing is sent, and the
    /// apps' messages are dropped.
    pub fn new(socket: Option<sd::NotifySocket>, uuid: &str, apps: &[AppPlan]) -> Readiness {
        Readiness {
            socket,
            uuid: uuid.to_string(),
            names: apps.iter().map(|a| a.name.clone()).collect(),
            waiting: apps.iter().map(|a| a.notify).collect(),
            started: false,
            settled: false,
        }
    }

    /// Every app has started.
    pub fn started(&mut self) {
        let m = self.on_started();
        self.send(m);
    }

    /// The pod failed to start (or ended first): a STATUS saying why, never READY=1.
    pub fn failed(&mut self, why: &str) {
        let m = self.on_failed(why);
        self.send(m);
    }

    /// An app sent `message` to its notify socket.
    pub fn from_app(&mut self, app: usize, message: &[u8]) {
        let m = self.on_message(app, message);
        self.send(m);
    }

    fn on_started(&mut self) -> Option<String> {
        self.started = true;
        if self.settled {
            return None;
        }
        let waiting: Vec<&str> = self
            .waiting
            .iter()
            .zip(&self.names)
            .filter(|(w, _)| **w)
            .map(|(_, n)| n.as_str())
            .collect();
        if waiting.is_empty() {
            self.settled = true;
            return Some(format!("READY=1\nSTATUS=pod {}: apps running", self.uuid));
        }
        Some(format!(
            "STATUS=pod {}: apps running, waiting for {} to be ready",
            self.uuid,
            waiting.join(", ")
        ))
    }

    fn on_failed(&mut self, why: &str) -> Option<String> {
        if self.settled {
            return None;
        }
        self.settled = true;
        Some(format!(
            "STATUS=pod {}: {}",
            self.uuid,
            why.replace('\n', " ")
        ))
    }

    fn on_message(&mut self, app: usize, message: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(message);
        let mut lines = Vec::new();
        let mut ready = false;
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key == "READY" {
                ready |= value == "1";
            } else if PASSED_ON.contains(&key) {
                lines.push(line.to_string());
            }
        }
        if ready {
            if let Some(w) = self.waiting.get_mut(app) {
                *w = false;
            }
            if self.started && !self.settled && !self.waiting.contains(&true) {
                self.settled = true;
                lines.insert(0, "READY=1".into());
            }
        }
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn send(&self, message: Option<String>) {
        let (Some(socket), Some(m)) = (&self.socket, message) else {
            return;
        };
        if let Err(e) = socket.send(&m) {
            eprintln!(
                "vessel: warning: notifying the service manager at {}: {e}",
                socket.address()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, notify: bool) -> AppPlan {
        AppPlan {
            name: name.into(),
            rootfs: exec::plan::RootfsPlan {
                lower: vec![],
                upper: "u".into(),
                work: "w".into(),
                bind: None,
            },
            spec: Spec::default(),
            user: None,
            group: None,
            pre_start: None,
            post_stop: None,
            terminal: false,
            notify,
        }
    }

    #[test]
    fn a_pod_without_notify_apps_is_ready_when_its_apps_run() {
        let mut r = Readiness::new(None, "U", &[app("a", false)]);
        assert_eq!(
            r.on_started().as_deref(),
            Some("READY=1\nSTATUS=pod U: apps running")
        );
        assert_eq!(r.on_failed("later"), None);
    }

    #[test]
    fn ready_waits_for_every_notify_app_whatever_the_order() {
        let apps = [app("a", true), app("b", false), app("c", true)];
        let mut r = Readiness::new(None, "U", &apps);
        // c is ready before the pod has started: remembered, not said.
        assert_eq!(r.on_message(2, b"READY=1"), None);
        assert_eq!(
            r.on_started().as_deref(),
            Some("STATUS=pod U: apps running, waiting for a to be ready")
        );
        assert_eq!(
            r.on_message(0, b"STATUS=warming up\nMAINPID=1\n")
                .as_deref(),
            Some("STATUS=warming up")
        );
        assert_eq!(
            r.on_message(0, b"READY=1\nSTATUS=serving").as_deref(),
            Some("READY=1\nSTATUS=serving")
        );
        // Said once; later messages pass on without it.
        assert_eq!(
            r.on_message(0, b"READY=1\nWATCHDOG=1").as_deref(),
            Some("WATCHDOG=1")
        );
    }

    #[test]
    fn only_known_keys_pass_and_a_failure_never_says_ready() {
        let mut r = Readiness::new(None, "U", &[app("a", true)]);
        assert_eq!(
            r.on_message(0, b"FDSTORE=1\nBARRIER=1\nnonsense\n\xff=1\nERRNO=2"),
            Some("ERRNO=2".into())
        );
        assert_eq!(
            r.on_failed("app a: exec /x: not\nfound").as_deref(),
            Some("STATUS=pod U: app a: exec /x: not found")
        );
        assert_eq!(r.on_started(), None);
        assert_eq!(r.on_message(0, b"READY=1"), None);
    }
}
