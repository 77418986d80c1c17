//! Every on-disk path of a pod, in one place (as rkt's common/common.go): under the data
//! directory (`--dir`), and inside one pod's directory. Nothing else in `pod` or the CLI
//! spells a path out.
//!
//! ```text
//! <dir>/pods/<state>/<uuid>/      a pod (see dir.rs for the states and the lock)
//!   pod                           appc pod manifest
//!   plan.json                     what the executor runs (exec::plan::PodPlan), paths relative
//!   state.json                    what happened: pids, exit statuses, errors
//!   .state.reserve                space set aside for the final state on a full disk
//!   gc-marked                     when gc first found the pod exited
//!   apps/<app>/{upper,work}       the app's writable overlay layer
//!   volumes/<name>                an empty volume, shared by the apps mounting it
//!   notify/<app>.sock             the sd_notify socket of an app that speaks it (bound by the
//!                                 supervisor, mounted at /run/notify/notify.sock in the app)
//!   stage1/                       mount point of the pod's private stage1 root (a tmpfs)
//!   logs/<app>.log                the app's stdout and stderr, made on first output
//!   network.json                  what prepare decided of its network (network::NetRequest)
//!   netns                         its network namespace, pinned (a bind mount) while DEL is owed
//!   attachments.json              what DEL needs (net::Attachment per network), while owed
//!   slirp4netns.sock, .log        --net=slirp4netns: its API socket (net::slirp::SOCKET) and
//!                                 output, while the pod runs
//!   kvm-console.log, kvm-qemu.log a kvm pod's guest console and QEMU's own messages
//! <dir>/cache/base-rootfs/        the base layer: mount points and /etc files every app needs
//! <dir>/cache/seccomp/<key>       compiled seccomp filters
//! <dir>/cache/kvm/initramfs-<key>.cpio   the kvm guest's initramfs, by kernel and binary digest
//! <dir>/userns/<slot>             a --private-users range taken before ranges were host-wide
//! /var/lib/vessel-userns/<slot>   a --private-users pod's id range, host-wide (userns.rs)
//! /var/lib/vessel-userns/.lock    flocked while the registry changes
//!
//! Rootless (a user without root), the defaults follow XDG: see [`user_dirs`].
//! ```

use std::path::{Path, PathBuf};

/// `<dir>/pods`: every pod, one directory per state.
pub fn pods(vessel_dir: &Path) -> PathBuf {
    vessel_dir.join("pods")
}

/// `<dir>/cache`: the base layer and compiled seccomp filters, root's alone.
pub fn cache(vessel_dir: &Path) -> PathBuf {
    vessel_dir.join("cache")
}

/// `<dir>/cache/base-rootfs`: the lowest layer of every app (exec::supervisor::base).
pub fn base_layer(vessel_dir: &Path) -> PathBuf {
    cache(vessel_dir).join("base-rootfs")
}

/// `<dir>/cache/seccomp`: compiled filters, keyed by profile and versions.
pub fn seccomp_cache(vessel_dir: &Path) -> PathBuf {
    cache(vessel_dir).join("seccomp")
}

/// `<dir>/cache/kvm`: initramfs archives of the kvm stage1 (`exec::kvm::initramfs`).
pub fn kvm_cache(vessel_dir: &Path) -> PathBuf {
    cache(vessel_dir).join("kvm")
}

/// `<dir>/userns`: `--private-users` ranges taken before they were host-wide, root's alone.
pub fn userns_slots(vessel_dir: &Path) -> PathBuf {
    vessel_dir.join("userns")
}

/// `<dir>/userns/<slot>`: given back when its pod is removed.
pub fn userns_slot(vessel_dir: &Path, slot: u32) -> PathBuf {
    userns_slots(vessel_dir).join(slot.to_string())
}

/// The host's registry of `--private-users` ranges, shared by every data dir (so outside
/// all of them); under /var/lib because a pod keeps its range across reboots.
pub fn host_userns_registry() -> PathBuf {
    PathBuf::from("/var/lib/vessel-userns")
}

/// `<registry>/<slot>`: who holds a range.
pub fn userns_registration(registry: &Path, slot: u32) -> PathBuf {
    registry.join(slot.to_string())
}

/// `<registry>/.lock`.
pub fn userns_registry_lock(registry: &Path) -> PathBuf {
    registry.join(".lock")
}

/// Paths inside a pod's directory as the plan records them: relative, because the pod
/// moves between state directories; [`PodPaths::resolve`] makes them absolute.
pub mod rel {
    use std::path::PathBuf;

    /// `apps/<app>/upper`
    pub fn app_upper(app: &str) -> PathBuf {
        PathBuf::from(format!("apps/{app}/upper"))
    }

    /// `apps/<app>/work`
    pub fn app_work(app: &str) -> PathBuf {
        PathBuf::from(format!("apps/{app}/work"))
    }

    /// `volumes/<name>`
    pub fn volume(name: &str) -> PathBuf {
        PathBuf::from(format!("volumes/{name}"))
    }

    /// `notify/<app>.sock`
    pub fn notify_socket(app: &str) -> PathBuf {
        PathBuf::from(format!("notify/{app}.sock"))
    }

    /// `stage1`
    pub fn stage1() -> PathBuf {
        PathBuf::from("stage1")
    }
}

/// The paths inside one pod's directory (where it is now).
#[derive(Debug, Clone)]
pub struct PodPaths {
    dir: PathBuf,
}

/// The name of [`PodPaths::gc_mark`] (gc writes it through the pod's descriptor).
pub const GC_MARK: &str = "gc-marked";

impl PodPaths {
    pub fn new(pod_dir: impl Into<PathBuf>) -> PodPaths {
        PodPaths {
            dir: pod_dir.into(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path the plan records relative to the pod directory, made absolute.
    pub fn resolve(&self, rel: &Path) -> PathBuf {
        self.dir.join(rel)
    }

    /// The appc pod manifest.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("pod")
    }

    /// The executor's plan (`exec::plan::PodPlan`).
    pub fn plan(&self) -> PathBuf {
        self.dir.join("plan.json")
    }

    /// The pod's state (`state::PodState`).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Where a new state is written before it is renamed over the old.
    pub fn state_tmp(&self) -> PathBuf {
        self.dir.join(".state.json.tmp")
    }

    /// Allocated blocks given back to write the final state on a full disk (state.rs).
    pub fn state_reserve(&self) -> PathBuf {
        self.dir.join(".state.reserve")
    }

    /// Left by gc when it first finds the pod exited: the grace period runs from it.
    pub fn gc_mark(&self) -> PathBuf {
        self.dir.join(GC_MARK)
    }

    /// An app's directory, holding its writable layer.
    pub fn app(&self, app: &str) -> PathBuf {
        self.dir.join("apps").join(app)
    }

    pub fn app_upper(&self, app: &str) -> PathBuf {
        self.resolve(&rel::app_upper(app))
    }

    pub fn app_work(&self, app: &str) -> PathBuf {
        self.resolve(&rel::app_work(app))
    }

    /// An empty volume of the pod.
    pub fn volume(&self, name: &str) -> PathBuf {
        self.resolve(&rel::volume(name))
    }

    /// An app's sd_notify socket.
    pub fn notify_socket(&self, app: &str) -> PathBuf {
        self.resolve(&rel::notify_socket(app))
    }

    /// Mount point of the pod's private stage1 root.
    pub fn stage1(&self) -> PathBuf {
        self.resolve(&rel::stage1())
    }

    /// What prepare decided of the pod's network (`network::NetRequest`).
    pub fn net_request(&self) -> PathBuf {
        self.dir.join("network.json")
    }

    /// Where the pod's network namespace is pinned, and the DEL record: see
    /// `network` for their lifecycle.
    pub fn net(&self) -> crate::network::NetPaths {
        crate::network::NetPaths {
            netns: self.dir.join("netns"),
            record: self.dir.join("attachments.json"),
            dir: self.dir.clone(),
            slirp_log: self.dir.join("slirp4netns.log"),
        }
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// A kvm pod's guest console (the kernel's messages, the guest init's errors).
    pub fn kvm_console(&self) -> PathBuf {
        self.dir.join("kvm-console.log")
    }

    /// What QEMU itself said (its errors).
    pub fn kvm_qemu_log(&self) -> PathBuf {
        self.dir.join("kvm-qemu.log")
    }

    /// Where a running kvm pod's init listens for `vessel enter` (`exec::kvm::enter`).
    pub fn kvm_enter_socket(&self) -> PathBuf {
        self.dir.join("kvm-enter.sock")
    }

    /// An app's log: its stdout and stderr.
    pub fn log(&self, app: &str) -> PathBuf {
        self.logs().join(format!("{app}.log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_inside_the_pod() {
        let p = PodPaths::new("/d/pods/run/u");
        assert_eq!(p.app_upper("a"), Path::new("/d/pods/run/u/apps/a/upper"));
        assert_eq!(p.app("a").join("work"), p.app_work("a"));
        assert_eq!(p.volume("v"), Path::new("/d/pods/run/u/volumes/v"));
        assert_eq!(p.log("a"), Path::new("/d/pods/run/u/logs/a.log"));
        assert_eq!(
            seccomp_cache(Path::new("/d")),
            Path::new("/d/cache/seccomp")
        );
    }
}

/// Where a user without root keeps everything (rootless mode), from the XDG base
/// directories: data (the store and the pods), configuration (the user configuration
/// directory), runtime state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDirs {
    /// `$XDG_DATA_HOME/vessel`, else `~/.local/share/vessel`.
    pub data: PathBuf,
    /// `$XDG_CONFIG_HOME/vessel`, else `~/.config/vessel`.
    pub config: PathBuf,
    /// `$XDG_RUNTIME_DIR/vessel`, else `/tmp/vessel-<uid>` (then `runtime_fallback`).
    pub runtime: PathBuf,
    pub runtime_fallback: bool,
}

/// [`UserDirs`] from the environment `env` (a variable set but empty, or relative, counts
/// as unset, as the XDG specification says). `None` without $HOME where it is needed.
pub fn user_dirs(env: impl Fn(&str) -> Option<std::ffi::OsString>, uid: u32) -> Option<UserDirs> {
    let var = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let home = var("HOME");
    let base = |xdg: &str, under_home: &str| match var(xdg) {
        Some(p) => Some(p),
        None => home.as_ref().map(|h| h.join(under_home)),
    };
    let (runtime, runtime_fallback) = match var("XDG_RUNTIME_DIR") {
        Some(r) => (r.join("vessel"), false),
        None => (PathBuf::from(format!("/tmp/vessel-{uid}")), true),
    };
    Some(UserDirs {
        data: base("XDG_DATA_HOME", ".local/share")?.join("vessel"),
        config: base("XDG_CONFIG_HOME", ".config")?.join("vessel"),
        runtime,
        runtime_fallback,
    })
}

#[cfg(test)]
mod user_dirs_tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
    }

    #[test]
    fn xdg_variables_win_over_home() {
        let d = user_dirs(
            env(&[
                ("HOME", "/home/a"),
                ("XDG_DATA_HOME", "/d"),
                ("XDG_CONFIG_HOME", "/c"),
                ("XDG_RUNTIME_DIR", "/run/user/7"),
            ]),
            7,
        )
        .unwrap();
        assert_eq!(d.data, Path::new("/d/vessel"));
        assert_eq!(d.config, Path::new("/c/vessel"));
        assert_eq!(d.runtime, Path::new("/run/user/7/vessel"));
        assert!(!d.runtime_fallback);
    }

    #[test]
    fn defaults_under_home_and_a_runtime_fallback() {
        // Empty and relative values count as unset.
        let d = user_dirs(
            env(&[
                ("HOME", "/home/a"),
                ("XDG_DATA_HOME", ""),
                ("XDG_CONFIG_HOME", "rel"),
            ]),
            7,
        )
        .unwrap();
        assert_eq!(d.data, Path::new("/home/a/.local/share/vessel"));
        assert_eq!(d.config, Path::new("/home/a/.config/vessel"));
        assert_eq!(d.runtime, Path::new("/tmp/vessel-7"));
        assert!(d.runtime_fallback);
        assert_eq!(user_dirs(env(&[]), 7), None);
    }
}
