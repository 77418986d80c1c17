//! What every command needs: the global options and the store they point at.

use anyhow::{Context as _, Result};
use store::Store;

use crate::cli::Global;

pub struct Context {
    pub global: Global,
}

impl Context {
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.global.dir)
            .with_context(|| format!("opening the store under {}", self.global.dir.display()))
    }

    pub fn debug(&self, msg: impl FnOnce() -> String) {
        if self.global.debug {
            eprintln!("vessel: {}", msg());
        }
    }
}

impl Context {
    pub fn pods(&self) -> Result<pod::Pods> {
        pod::Pods::open(&self.global.dir)
            .with_context(|| format!("opening pods under {}", self.global.dir.display()))
    }
}

impl Context {
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
            quiet,
        }
    }
}
