//! The command line: rkt's commands and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::insecure::InsecureOptions;

#[derive(Parser, Debug)]
#[command(
    name = "vessel",
    version,
    about = "A daemonless, pod-native container runtime",
    long_about = "Vessel fetches images (appc ACI, OCI and Docker), verifies who signed them, stores them, and runs pods of apps with real isolation. Nothing runs when no pod runs.",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory holding the store and the pods
    #[arg(long, global = true, default_value = "/var/lib/vessel", env = "VESSEL_DIR", value_name = "DIR")]
    pub dir: PathBuf,

    /// Local configuration directory (trusted keys, networks, auth, certificates)
    #[arg(long, global = true, default_value = "/etc/vessel", value_name = "DIR")]
    pub local_config: PathBuf,

    /// System configuration directory, as shipped by a distribution
    #[arg(long, global = true, default_value = "/usr/lib/vessel", value_name = "DIR")]
    pub system_config: PathBuf,

    /// Comma-separated security checks to skip: none, image, tls, http, pubkey,
    /// capabilities, paths, seccomp, all-fetch, all-run, all
    #[arg(long, global = true, default_value = "none", value_name = "OPTIONS")]
    pub insecure_options: InsecureOptions,

    /// Print what is being done, to stderr
    #[arg(long, global = true)]
    pub debug: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Import or fetch images into the store; prints each image's ID
    Fetch(FetchArgs),
    /// Operate on images in the store
    #[command(subcommand)]
    Image(ImageCommand),
    /// Print the version
    Version(FormatArgs),
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Images: FILE.aci, file://, https://, NAME[:VERSION], docker://REF, oci:DIR[:REF],
    /// oci-archive:FILE[:REF], docker-archive:FILE[:REF]
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Print less
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images in the store
    List(ListArgs),
    /// Remove images (by ID, ID prefix, or name)
    Rm {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Print an image's manifest
    CatManifest {
        image: String,
        /// Print the JSON on one line
        #[arg(long)]
        compact: bool,
    },
    /// Export an image as an ACI file
    Export {
        image: String,
        file: PathBuf,
        /// Replace FILE if it exists
        #[arg(long)]
        overwrite: bool,
    },
    /// Extract an image's own content (without dependencies) to a directory
    Extract(OutputDirArgs),
    /// Render an image's full root filesystem (with dependencies) to a directory
    Render(OutputDirArgs),
    /// Remove layers and blobs that no image uses
    Gc {
        /// Keep unused content younger than this
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        grace_period: std::time::Duration,
    },
    /// Re-hash every blob and layer; exits non-zero if anything is corrupt
    Verify(FormatArgs),
}

#[derive(Args, Debug)]
pub struct OutputDirArgs {
    pub image: String,
    /// Where to write (created if missing; must be empty)
    #[arg(value_name = "DIR")]
    pub output: PathBuf,
    /// Write only the root filesystem, not the manifest beside it
    #[arg(long)]
    pub rootfs_only: bool,
    /// Empty DIR first if it is not empty
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args, Debug, Clone)]
pub struct FormatArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// Do not print the header line
    #[arg(long)]
    pub no_legend: bool,
    /// Print full IDs and exact times
    #[arg(long)]
    pub full: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    JsonPretty,
}
