//! The pod's network settings, handed to its init once stage0 has set up the pod's CNI
//! networks. ADD runs while the pod starts (the init mounts the apps' roots meanwhile);
//! its results decide the pod's /etc/hosts (the pod's addresses) and /etc/resolv.conf
//! (DNS from the plugins). The init binds placeholder files over the apps' own early and
//! writes these contents into them, in place, before it starts any app. A supervisor
//! whose ADD failed sends nothing: it kills the pod.
//!
//! On the wire: a memfd holding the JSON of [`NetworkReady`], passed on the channel
//! (`crossing::channel`: a host's /etc/hosts may be larger than one socket message).

use std::io::{self, Read, Seek, Write};
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

/// The largest settings read (a host's /etc/hosts with `--hosts-entry=host` included).
const MAX_BYTES: u64 = 16 << 20;

/// What the init writes into the pod's /etc files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReady {
    pub hosts: String,
    /// The content of /etc/resolv.conf, when the pod binds one over the apps' own.
    #[serde(default)]
    pub resolv_conf: Option<String>,
    /// Variables every app gets that depend on the networks (`AC_METADATA_URL`: the
    /// metadata service at the host side of the pod's default network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

/// The settings in a memfd, as the channel carries them (`SupervisorEnd::send_network`).
pub fn to_memfd(ready: &NetworkReady) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create("vessel-pod-network", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&serde_json::to_vec(ready).expect("serialisable"))?;
    f.rewind()?;
    Ok(f.into())
}

/// The settings a memfd from [`to_memfd`] holds (`PodEnd::receive_network`).
pub fn from_memfd(fd: OwnedFd) -> io::Result<NetworkReady> {
    let mut json = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_BYTES)
        .read_to_end(&mut json)?;
    serde_json::from_slice(&json).map_err(|e| io::Error::other(format!("network settings: {e}")))
}

/// The init's side, after it pivoted into the stage1 root: writes the settings into its
/// /etc files, which are bound over every app's. Returns a warning when the plugins gave
/// DNS settings the pod has no file for (it was decided not to bind one).
pub fn apply(ready: &NetworkReady) -> io::Result<Option<String>> {
    write_in_place("/etc/hosts", &ready.hosts)?;
    if let Some(resolv) = &ready.resolv_conf {
        match write_in_place("/etc/resolv.conf", resolv) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(
                "the pod's networks returned DNS settings, but its apps keep their own resolv.conf"
                    .into(),
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Rewrites an existing file without replacing it: the binds over the apps' files refer
/// to its inode.
fn write_in_place(path: &str, content: &str) -> io::Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{path}: {e}")))?;
    std::fs::File::from(fd)
        .write_all(content.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crossing::channel;

    #[test]
    fn settings_cross_the_channel() {
        let (ours, theirs) = channel::pair().unwrap();
        let ready = NetworkReady {
            hosts: "127.0.0.1\tlocalhost\n".repeat(20_000),
            resolv_conf: Some("nameserver 10.0.0.2\n".into()),
            env: vec![("AC_METADATA_URL".into(), "http://10.0.0.1:18112".into())],
        };
        ours.send_network(&ready).unwrap();
        assert_eq!(theirs.receive_network().unwrap(), ready);
        drop(ours);
        let e = theirs.receive_network().unwrap_err();
        assert!(
            e.to_string().contains("before the pod's networks were up"),
            "{e}"
        );
    }
}
