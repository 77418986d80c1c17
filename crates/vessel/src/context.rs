//! What every command needs: the global options and the store they point at.

use anyhow::{Context as _, Result};
use store::Store;

use crate::cli::Global;

pub struct Context {
    pub global: Global,
    /// The data directory in effect: --dir, $VESSEL_DIR, the `paths` configuration's
    /// data, or /var/lib/vessel; absolute.
    pub dir: std::path::PathBuf,
    /// Run by a user without root (see crate::rootless).
    pub rootless: bool,
}

impl Context {
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.dir)
            .with_context(|| format!("opening the store under {}", self.dir.display()))
    }

    pub fn debug(&self, msg: impl FnOnce() -> String) {
        if self.global.debug {
            crate::output::say!("{}", msg());
        }
    }
}

impl Context {
    pub fn pods(&self) -> Result<pod::Pods> {
        pod::Pods::open(&self.dir)
            .with_context(|| format!("opening pods under {}", self.dir.display()))
    }
}

impl Context {
    /// The configuration directories, lowest precedence first: system, local, user.
    pub fn config_dirs(&self) -> Vec<std::path::PathBuf> {
        let mut dirs = vec![
            self.global.system_config.clone(),
            self.global.local_config.clone(),
        ];
        dirs.extend(self.global.user_config.clone());
        dirs
    }

    /// The configuration kinds kept in `subdirs` (`"logs.d"`, ...), merged.
    pub fn config(&self, subdirs: &[&str]) -> Result<config::Config> {
        Ok(config::Config::load_only(&self.config_dirs(), subdirs)?)
    }

    /// What fetching needs from the global flags, with the command's own.
    pub fn fetch_options(
        &self,
        policy: crate::cli::PullPolicy,
        quiet: bool,
    ) -> fetch::FetchOptions {
        let i = self.global.insecure_options;
        fetch::FetchOptions {
            insecure_skip_verify: i.image,
            insecure_tls: i.tls,
            insecure_http: i.http,
            insecure_pubkey: i.pubkey,
            trust_keys_from_https: self.global.trust_keys_from_https,
            pull_policy: match policy {
                crate::cli::PullPolicy::New => fetch::PullPolicy::New,
                crate::cli::PullPolicy::Update => fetch::PullPolicy::Update,
                crate::cli::PullPolicy::Never => fetch::PullPolicy::Never,
            },
            local_config: self.global.local_config.clone(),
            system_config: self.global.system_config.clone(),
            user_config: self.global.user_config.clone(),
            user_keys: self.global.user_config.clone().filter(|_| self.rootless),
            quiet,
            signature: None,
        }
    }
}
