//! runc's command line, flag for flag (see docs/oci-runtime-cli.md for what each does
//! here). Clients pass `--flag value` and `--flag=value`; both parse.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vessel-runtime",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"),
    about = "Vessel's OCI runtime: runc's command line on Vessel's executor",
    propagate_version = true,
    disable_help_subcommand = false
)]
pub struct Cli {
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of log lines.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: crate::log::Format,
    /// Directory holding the containers' state (on tmpfs).
    #[arg(long, global = true, default_value = crate::layout::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Path to criu (accepted for compatibility; checkpoint is not supported).
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Create cgroups through systemd (cgroupsPath as slice:prefix:name).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (accepted; Vessel decides by the user it runs as).
    /// Before the command only: `spec --rootless` is another flag.
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Run the created container's process.
    Start(IdArg),
    /// Create and start a container; wait for it unless --detach.
    Run(RunArgs),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal (default SIGTERM) to the container's process.
    Kill(KillArgs),
    /// Delete a container and what it holds.
    Delete(DeleteArgs),
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// List the processes of a container.
    Ps(PsArgs),
    /// Freeze every process of a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a container's resource limits.
    Update(UpdateArgs),
    /// Print a container's events (OOM kills) and statistics.
    Events(EventsArgs),
    /// Print what this runtime supports, as JSON.
    Features,
    /// Write a default config.json.
    Spec(SpecArgs),
    /// List the containers under --root.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Not supported: Vessel does not checkpoint containers.
    Checkpoint(Unsupported),
    /// Not supported: Vessel does not restore containers.
    Restore(Unsupported),
}

#[derive(Debug, Args)]
pub struct IdArg {
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A unix socket to send the terminal's master to (process.terminal).
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Write the container process's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for a root on a ramfs).
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not make a new session keyring for the container.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many descriptors from 3 on to the container's process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container's process runs, leaving it in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after its process exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper (accepted; vessel-runtime waits only on its child).
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container's cgroup.
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// A name (KILL, SIGKILL) or a number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container's processes first if it still runs.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A unix socket to send the terminal's master to.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Environment variables (KEY=VALUE) to add.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// A JSON file holding the process (an OCI process object); flags then add to it.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label of the process.
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile of the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Capabilities to add.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Pass this many descriptors from 3 on to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run in this sub-cgroup of the container's (accepted on cgroup v2 only).
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Exec even into a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments (unless --process gives them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// table or json (a list of pids).
    #[arg(short, long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Options passed to ps(1) for the table.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file of linux.resources ("-" for stdin); flags override it.
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long, visible_alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a k, m or g suffix).
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one statistics record and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print statistics (Go durations: 5s, 500ms, 1m).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a container run by an unprivileged user.
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct Unsupported {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("vessel-runtime").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn containerd_shim_command_lines() {
        let cli = parse(&[
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "c1",
        ]);
        assert_eq!(cli.log_format, crate::log::Format::Json);
        let Command::Create(c) = cli.command else {
            panic!()
        };
        assert_eq!(c.id, "c1");
        assert_eq!(c.pid_file.unwrap(), PathBuf::from("/b/init.pid"));

        let cli = parse(&["--root", "/r", "kill", "--all", "c1", "9"]);
        let Command::Kill(k) = cli.command else {
            panic!()
        };
        assert!(k.all);
        assert_eq!(k.signal, "9");

        let cli = parse(&[
            "exec",
            "--process",
            "/tmp/p.json",
            "--detach",
            "--pid-file",
            "/tmp/p.pid",
            "c1",
        ]);
        let Command::Exec(e) = cli.command else {
            panic!()
        };
        assert!(e.detach && e.command.is_empty());
    }

    #[test]
    fn exec_command_keeps_its_flags() {
        let cli = parse(&["exec", "-t", "c1", "sh", "-c", "echo --x"]);
        let Command::Exec(e) = cli.command else {
            panic!()
        };
        assert!(e.tty);
        assert_eq!(e.command, ["sh", "-c", "echo --x"]);
    }

    #[test]
    fn equals_forms_and_defaults() {
        let cli = parse(&["--log-format=json", "--systemd-cgroup", "delete", "-f", "c"]);
        assert!(cli.systemd_cgroup);
        assert_eq!(cli.root, PathBuf::from(crate::layout::DEFAULT_ROOT));
        let cli = parse(&["kill", "c"]);
        let Command::Kill(k) = cli.command else {
            panic!()
        };
        assert_eq!(k.signal, "SIGTERM");
        let cli = parse(&["--rootless=auto", "spec", "--rootless", "-b", "/x"]);
        let Command::Spec(sp) = cli.command else {
            panic!()
        };
        assert!(sp.rootless);
        let cli = parse(&["checkpoint", "--image-path", "/x", "c"]);
        assert!(matches!(cli.command, Command::Checkpoint(_)));
    }
}
