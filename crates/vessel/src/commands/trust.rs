//! `vessel trust`: the trust store of OpenPGP keys (to be written with the fetch issue).

use anyhow::{bail, Result};

use crate::cli::TrustArgs;
use crate::context::Context;

pub fn run(_ctx: &Context, _args: TrustArgs) -> Result<i32> {
    bail!("vessel trust is not available yet")
}
