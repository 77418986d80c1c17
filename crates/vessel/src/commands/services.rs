//! `metadata-service` and `api-service`: long-running processes for platforms, outside
//! the pod start path (their async runtimes never run in `vessel run`).

use anyhow::Result;

use crate::cli::MetadataServiceArgs;

pub fn metadata_service(args: &MetadataServiceArgs) -> Result<i32> {
    mds::server::run(mds::server::Options {
        port: args.listen_port,
        run_dir: mds::paths::run_dir(),
    })?;
    Ok(0)
}
