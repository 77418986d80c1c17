//! The one integration test binary: every CLI test is a module here, so the kit in
//! `common` and `podkit` compiles once. Root-only tests fail (not pass) when not run as root.

mod common;
mod podkit;

mod api_service;
mod config_files;
mod enter_terminal;
mod fetch_bearer_token;
mod fetch_discovery_labels;
mod fetch_https;
mod fetch_registry;
mod hostile_archives;
mod image_aci;
mod image_commands;
mod image_concurrency;
mod image_import;
mod mds_service;
mod pod_cli_lifecycle;
mod pod_enter;
mod pod_forged_reports;
mod pod_hooks;
mod pod_host_access;
mod pod_hostile;
mod pod_image_isolators;
mod pod_interactive;
mod pod_lock_races;
mod pod_manifest;
mod pod_mount_race;
mod pod_net;
mod pod_net_dns;
mod pod_net_faults;
mod pod_output;
mod pod_process;
mod pod_run;
mod pod_security;
mod pod_security_flags;
mod pod_userns;
mod pod_volumes;
mod trust_signatures;
mod trust_subkeys;
