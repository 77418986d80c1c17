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
