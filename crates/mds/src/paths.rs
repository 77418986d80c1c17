//! Every path of the metadata service. The base is `/run/vessel` (a tmpfs: registrations
//! belong to running pods and die with the boot), or `$VESSEL_RUN_DIR`.
//!
//! ```text
//! <run>/metadata-svc.sock          registrations (root only); a unit's ListenStream=
//! <run>/metadata/                  0700
//!   hmac-key                       the service key (64 random bytes), made once
//!   pods/<uuid>.json               one registration, read again when the service restarts
//! ```

use std::path::{Path, PathBuf};

pub const DEFAULT_RUN_DIR: &str = "/run/vessel";

/// `$VESSEL_RUN_DIR`, or `/run/vessel`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("VESSEL_RUN_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR))
}

/// The registration socket.
pub fn socket(run: &Path) -> PathBuf {
    run.join("metadata-svc.sock")
}

/// The service's own state.
pub fn state_dir(run: &Path) -> PathBuf {
    run.join("metadata")
}

pub fn key(run: &Path) -> PathBuf {
    state_dir(run).join("hmac-key")
}

pub fn registrations(run: &Path) -> PathBuf {
    state_dir(run).join("pods")
}

pub fn registration(run: &Path, uuid: &str) -> PathBuf {
    registrations(run).join(format!("{uuid}.json"))
}
