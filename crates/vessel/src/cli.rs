//! The command line: rkt's commands and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::insecure::InsecureOptions;

pub mod values;

#[derive(Parser, Debug)]
#[command(
    name = "vessel",
    version,
    about = "A daemonless, pod-native container runtime",
    long_about = "Vessel fetches images (appc ACI, OCI and Docker), verifies who signed them, stores them, and runs pods of apps with real isolation. Nothing runs when no pod runs.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Directory holding the store and the pods [default: the `paths` configuration's
    /// data, else /var/lib/vessel]
    #[arg(long, global = true, env = "VESSEL_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Local configuration directory (trusted keys, networks, auth, certificates)
    #[arg(long, global = true, default_value = "/etc/vessel", value_name = "DIR")]
    pub local_config: PathBuf,

    /// System configuration directory, as shipped by a distribution
    #[arg(
        long,
        global = true,
        default_value = "/usr/lib/vessel",
        value_name = "DIR"
    )]
    pub system_config: PathBuf,

    /// User configuration directory (auth of the user's own, over the local and system
    /// ones)
    #[arg(long, global = true, value_name = "DIR")]
    pub user_config: Option<PathBuf>,

    /// Comma-separated security checks to skip: none, image, tls, http, pubkey,
    /// capabilities, paths, seccomp, all-fetch, all-run, all (ondisk: accepted, no effect)
    #[arg(long, global = true, default_value = "none", value_name = "OPTIONS")]
    pub insecure_options: InsecureOptions,

    /// Trust, on first use, the keys an image's appc discovery names over HTTPS
    #[arg(long = "trust-keys-from-https", global = true)]
    pub trust_keys_from_https: bool,

    /// Print what is being done, to stderr
    #[arg(long, global = true)]
    pub debug: bool,
}

#[derive(Subcommand, Debug)]
// Each command's arguments are built only when that command is used: building clap's
// whole tree cost ~0.4 ms of every start (bench/results/run.md).
#[command(defer = true)]
pub enum Command {
    /// Import or fetch images into the store; prints each image's ID
    Fetch(FetchArgs),
    /// Operate on images in the store
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run a pod in the foreground: IMAGE [APP FLAGS] [-- ARGS] [--- IMAGE2 ...]
    Run(RunArgs),
    /// Prepare a pod to run later; prints its UUID
    Prepare(RunArgs),
    /// Run a prepared pod
    RunPrepared(RunPreparedArgs),
    /// List pods
    List(ListArgs),
    /// Show a pod's state and its apps' exit statuses
    Status(StatusArgs),
    /// Print a pod's manifest (its apps as they run, overrides applied)
    CatManifest(CatManifestArgs),
    /// Print the apps' output
    Logs(LogsArgs),
    /// Run a command inside a running app, with that app's isolation (default /bin/sh)
    Enter(EnterArgs),
    /// Stop running pods (SIGTERM, then SIGKILL after --timeout)
    Stop(StopArgs),
    /// Remove pods that are not running
    Rm(UuidsArgs),
    /// Remove exited pods after a grace period, and stale prepared ones
    Gc(GcArgs),
    /// Write an exited pod's app as an ACI: its image with what the app changed
    Export(ExportArgs),
    /// Trust OpenPGP keys to sign images (all images, or those under a name prefix)
    Trust(TrustArgs),
    /// Run the appc metadata service: pods learn their manifests and sign with their identity
    MetadataService(MetadataServiceArgs),
    /// Run rkt's API service (gRPC v1alpha): platforms list and inspect pods and images,
    /// follow events and read logs
    ApiService(ApiServiceArgs),
    /// Print the configuration in effect (system, local and user directories merged) as
    /// rkt's JSON: {"stage0": [auth, dockerAuth, paths, stage1, ...]}
    Config,
    /// Say whether Vessel runs rootless (as a user without root), where it keeps its data
    /// and configuration, and what it can enforce
    Info(FormatArgs),
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
    /// Print less
    #[arg(long, short)]
    pub quiet: bool,

    /// Print each image's full ID (by default a short one, as rkt prints)
    #[arg(long)]
    pub full: bool,

    /// When to fetch from the network: new (only images not in the store), update (check
    /// for a newer version), never (the store only)
    #[arg(long, value_enum, default_value = "update")]
    pub pull_policy: PullPolicy,

    /// Deprecated: --pull-policy=never
    #[arg(long, hide = true, conflicts_with = "no_store")]
    pub store_only: bool,
    /// Deprecated: --pull-policy=update
    #[arg(long, hide = true)]
    pub no_store: bool,

    /// IMAGE [--signature=FILE] [IMAGE2 ...]: FILE.aci, file://, https://, NAME[:VERSION],
    /// docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF];
    /// --signature names the preceding image's detached signature
    #[arg(
        required = true,
        value_name = "IMAGE",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub images: Vec<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    New,
    Update,
    Never,
}

#[derive(Args, Debug)]
pub struct TrustArgs {
    /// Trust the keys for images whose names start with PREFIX (example.com/app)
    #[arg(long, conflicts_with = "root")]
    pub prefix: Option<String>,
    /// Trust the keys for every image
    #[arg(long)]
    pub root: bool,
    /// Do not show the fingerprint and ask for confirmation
    #[arg(long)]
    pub skip_fingerprint_review: bool,
    /// Allow fetching a key over plain HTTP
    #[arg(long)]
    pub insecure_allow_http: bool,
    /// List the trusted keys and where each came from
    #[arg(long, conflicts_with_all = ["prefix", "root"])]
    pub list: bool,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Key files or URLs (https://...); with --prefix and none given, the keys appc
    /// discovery names for PREFIX
    #[arg(value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images in the store
    List(ImageListArgs),
    /// The same as `vessel fetch` (rkt's hidden alias)
    #[command(hide = true)]
    Fetch(FetchArgs),
    /// Remove images (by ID, ID prefix, or name)
    Rm {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Print an image's manifest
    CatManifest {
        image: String,
        /// Print the JSON on one line (the same as --pretty-print=false)
        #[arg(long)]
        compact: bool,
        /// Indent the JSON (--pretty-print=false: one line)
        #[arg(
            long,
            num_args = 0..=1,
            require_equals = true,
            default_value = "true",
            default_missing_value = "true",
            action = clap::ArgAction::Set,
            value_name = "BOOL"
        )]
        pretty_print: bool,
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
    /// Remove images unused for the grace period (none a pod uses), then the layers and
    /// blobs no image uses
    Gc {
        /// Remove images not used (run, or imported) for this long, as rkt (0s: every
        /// image no pod uses)
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace_period: std::time::Duration,
    },
    /// Re-hash the named images' blobs and layers (by default every one in the store);
    /// exits non-zero if anything is corrupt
    Verify(VerifyArgs),
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
pub struct VerifyArgs {
    /// Images (IDs, ID prefixes or names); none: the whole store
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// The columns `image list --fields` and `--sort` name (rkt's).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageField {
    Id,
    Name,
    Importtime,
    Lastused,
    Size,
    Latest,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Args, Debug, Clone)]
pub struct ImageListArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// Columns of the table, in order [default: id,name,size,importtime,lastused]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FIELD,...")]
    pub fields: Vec<ImageField>,
    /// Sort by these fields, the first first
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "importtime",
        value_name = "FIELD,..."
    )]
    pub sort: Vec<ImageField>,
    /// The order of --sort
    #[arg(long, value_enum, default_value = "asc")]
    pub order: SortOrder,
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

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipc {
    Auto,
    Private,
    Parent,
}

// The pod's network: its CNI networks, DNS and hosts (rkt's flags). A plain comment: a
// doc comment here would become the about text of every command that flattens it, since
// those commands' arguments are built lazily (`defer`, after their own about is set).
#[derive(Args, Debug, Clone, Default)]
pub struct NetArgs {
    /// Networks: default (the default), default-restricted, host, none, slirp4netns
    /// (user-mode, the default without root where installed), all, or names of networks in
    /// net.d, comma-separated, each optionally NAME:K1=V1;K2=V2 (CNI_ARGS)
    #[arg(
        long,
        value_name = "NETS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "default"
    )]
    pub net: Vec<String>,
    /// A DNS server for the pod (repeatable), or host (the host's resolv.conf) or none
    /// (the image's own)
    #[arg(long, value_name = "IP|host|none")]
    pub dns: Vec<String>,
    /// A DNS search domain (repeatable)
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// A resolver option, such as ndots:2 (repeatable)
    #[arg(long, value_name = "OPTION")]
    pub dns_opt: Vec<String>,
    /// The resolver's local domain
    #[arg(long, value_name = "DOMAIN")]
    pub dns_domain: Option<String>,
    /// An /etc/hosts entry IP=NAME (repeatable, or comma-separated), or host (the host's
    /// /etc/hosts)
    #[arg(long, value_name = "IP=NAME|host")]
    pub hosts_entry: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pod's hostname (default vessel-<uuid>)
    #[arg(long)]
    pub hostname: Option<String>,
    /// An environment variable for every app (NAME=VALUE)
    #[arg(long = "set-env", value_name = "NAME=VALUE")]
    pub set_env: Vec<String>,
    /// A file of NAME=VALUE lines for every app
    #[arg(long = "set-env-file", value_name = "FILE")]
    pub set_env_file: Vec<PathBuf>,
    /// Give the apps vessel's own environment (lowest precedence)
    #[arg(long)]
    pub inherit_env: bool,
    #[command(flatten)]
    pub network: NetArgs,
    /// Register the pod with the metadata service, which gives every app
    /// AC_METADATA_URL: --mds-register (required), --mds-register=false (off); by default
    /// on when the service runs
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub mds_register: Option<bool>,
    /// Forward a host port to the pod: NAME:[HOSTIP:]HOSTPORT (a port an app declares) or
    /// PROTO:PODPORT:HOSTIP:HOSTPORT (repeatable)
    #[arg(long, value_name = "PORT")]
    pub port: Vec<String>,
    /// IPC namespace: auto or private (the pod's own), parent (the host's)
    #[arg(long, value_enum, default_value = "auto")]
    pub ipc: Ipc,
    /// A volume: NAME,kind=host,source=PATH[,readOnly=true][,recursive=false] or
    /// NAME,kind=empty[,mode=0755][,uid=N][,gid=N]
    #[arg(long, value_name = "VOLUME")]
    pub volume: Vec<String>,
    /// Run the pod in a user namespace mapped to host ids of its own
    #[arg(long)]
    pub private_users: bool,
    /// Give the (single) app a terminal and this process's stdin
    #[arg(long, short)]
    pub interactive: bool,
    /// The stage1 flavour: default (the pod's own namespaces), fly (one app in the host's
    /// namespaces but its own mount namespace, for system apps), kvm (each pod in a QEMU
    /// virtual machine)
    /// [default: the `stage1` configuration, else default]
    #[arg(long, value_name = "FLAVOUR")]
    pub stage1: Option<String>,
    /// The kvm stage1's accelerator: auto (KVM where it can run the guest's kernel, else
    /// QEMU's emulation with a warning), kvm (refuse to start without it), tcg (always
    /// emulate) [default: $VESSEL_KVM_ACCEL when the pod starts, else auto]
    #[arg(long, value_name = "auto|kvm|tcg")]
    pub kvm_accel: Option<String>,
    /// rkt's stage1 image name: coreos.com/rkt/stage1-coreos, -fly or -kvm[:VERSION]
    /// choose the built-in default, fly or kvm
    #[arg(long, value_name = "NAME")]
    pub stage1_name: Option<String>,
    /// rkt's stage1 image file: one named stage1-coreos.aci, stage1-fly.aci or
    /// stage1-kvm.aci chooses the built-in default, fly or kvm
    #[arg(long, value_name = "PATH")]
    pub stage1_path: Option<String>,
    /// rkt's stage1 image URL: refused (Vessel's stage1s are built in)
    #[arg(long, value_name = "URL")]
    pub stage1_url: Option<String>,
    /// rkt's stage1 image hash: refused (Vessel's stage1s are built in)
    #[arg(long, value_name = "HASH")]
    pub stage1_hash: Option<String>,
    /// rkt's stage1 image from the stage1 images directory: refused (Vessel's stage1s
    /// are built in)
    #[arg(long, value_name = "FILE")]
    pub stage1_from_dir: Option<String>,
    /// Run this appc pod manifest (its apps, volumes, isolators, annotations)
    #[arg(long, value_name = "FILE")]
    pub pod_manifest: Option<PathBuf>,
    /// Remove the pod when it exits
    #[arg(long)]
    pub rm: bool,
    /// Print the UUID and return once the pod runs (run only)
    #[arg(long, short)]
    pub detach: bool,
    /// Write the pod's UUID to FILE
    #[arg(long, value_name = "FILE")]
    pub uuid_file_save: Option<PathBuf>,
    /// Cap each app's log at SIZE (100MiB, 50M, bytes; 0: no cap); the oldest lines go
    /// first [default: the `logs` configuration, else 100MiB]
    #[arg(long, value_name = "SIZE", value_parser = config::parse_size)]
    pub log_size: Option<u64>,
    /// Print only the pod's UUID on success (prepare)
    #[arg(long, short)]
    pub quiet: bool,
    /// Deprecated: --pull-policy=never
    #[arg(long, hide = true, conflicts_with = "no_store")]
    pub store_only: bool,
    /// Deprecated: --pull-policy=update
    #[arg(long, hide = true)]
    pub no_store: bool,
    /// When to fetch images from the network: new (default: only those not in the store),
    /// update, never
    #[arg(long, value_enum, default_value = "new")]
    pub pull_policy: PullPolicy,
    /// IMAGE [APP FLAGS] [-- ARGS] [--- IMAGE2 [APP FLAGS] [-- ARGS] ...]; app flags:
    /// --exec, --name, --user, --group, --supplementary-gids, --working-dir,
    /// --environment, --readonly-rootfs, --memory, --cpu, --cpu-shares, --oom-score-adj,
    /// --caps-retain, --caps-remove, --seccomp, --mount, --annotation, --label
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "pod_manifest",
        value_name = "IMAGE"
    )]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UuidArgs {
    /// Pod UUID or unique prefix
    #[arg(required_unless_present = "uuid_file")]
    pub uuid: Option<String>,
    /// Read the UUID from FILE
    #[arg(long, value_name = "FILE")]
    pub uuid_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The pod (UUID or unique prefix)
    pub uuid: String,
    /// The ACI to write
    #[arg(value_name = "OUT.aci")]
    pub output: PathBuf,
    /// The app to export (needed when the pod has several)
    #[arg(long)]
    pub app: Option<String>,
    /// Replace OUT.aci if it exists
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args, Debug)]
pub struct CatManifestArgs {
    #[command(flatten)]
    pub pod: UuidArgs,
    /// Indent the JSON (--pretty-print=false: one line)
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub pretty_print: bool,
}

#[derive(Args, Debug)]
pub struct UuidsArgs {
    /// Pod UUIDs or unique prefixes
    #[arg(required_unless_present = "uuid_file")]
    pub uuids: Vec<String>,
    /// Read a UUID from FILE
    #[arg(long, value_name = "FILE")]
    pub uuid_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunPreparedArgs {
    #[command(flatten)]
    pub pod: UuidArgs,
    /// Networks, DNS and hosts entries in place of those given to prepare
    #[command(flatten)]
    pub network: NetArgs,
    /// Print the UUID and return once the pod runs
    #[arg(long, short)]
    pub detach: bool,
    /// Remove the pod when it exits
    #[arg(long)]
    pub rm: bool,
    /// Register the pod with the metadata service, which gives every app
    /// AC_METADATA_URL: --mds-register (required), --mds-register=false (off); by default
    /// on when the service runs
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub mds_register: Option<bool>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pod: UuidArgs,
    /// Wait for the pod to exit: --wait (for ever), --wait=DURATION (at most that long),
    /// --wait=true|false
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = values::parse_wait,
        value_name = "BOOL|DURATION"
    )]
    pub wait: values::Wait,
    /// Wait for every app of the pod to have started, as --wait does
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = values::parse_wait,
        value_name = "BOOL|DURATION"
    )]
    pub wait_ready: values::Wait,
    /// Ask every network's plugins whether the running pod's attachment is intact (CNI
    /// CHECK); exit non-zero if one is not
    #[arg(long)]
    pub check_net: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub pod: UuidArgs,
    /// Only this app's output (by default every app's, each line prefixed with its name)
    #[arg(long)]
    pub app: Option<String>,
    /// Keep printing output as the pod runs
    #[arg(long, short)]
    pub follow: bool,
    /// Which output: all (the apps' stdout to stdout, their stderr to stderr), stdout, or
    /// stderr
    #[arg(long, value_enum, default_value = "all")]
    pub stream: LogStream,
    /// Start each line with the time it was written (RFC 3339, UTC)
    #[arg(long, short = 't')]
    pub timestamps: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines written since TIME (RFC 3339) or within the last DURATION (10m, 1h)
    #[arg(long, value_name = "TIME|DURATION")]
    pub since: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    All,
    Stdout,
    Stderr,
}

#[derive(Args, Debug)]
pub struct EnterArgs {
    /// The app to enter (needed when the pod has several)
    #[arg(long)]
    pub app: Option<String>,
    /// Read the pod's UUID from FILE (then every word is the command)
    #[arg(long, value_name = "FILE")]
    pub uuid_file: Option<PathBuf>,
    /// UUID, then the command and its arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "UUID [CMD [ARGS...]]"
    )]
    pub rest: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[command(flatten)]
    pub pods: UuidsArgs,
    /// SIGKILL at once
    #[arg(long)]
    pub force: bool,
    /// How long to wait after SIGTERM before SIGKILL
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Keep exited pods this long before removing them
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub grace_period: std::time::Duration,
    /// Remove prepared pods not run within this long
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub expire_prepared: std::time::Duration,
    /// Only mark exited pods as garbage, remove nothing
    #[arg(long)]
    pub mark_only: bool,
}

#[derive(Args, Debug)]
pub struct MetadataServiceArgs {
    /// TCP port pods reach the service on (ignored when systemd passes the listener)
    #[arg(long, default_value_t = 18112)]
    pub listen_port: u16,
}

#[derive(Args, Debug)]
pub struct ApiServiceArgs {
    /// Address to listen on, HOST:PORT (default localhost:15441; not with sockets passed
    /// by systemd)
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
}
