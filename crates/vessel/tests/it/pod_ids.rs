//! (uid_t)-1, 4294967295, is not an id: setresuid(-1, -1, -1) changes nothing, so an app
//! asked to run as it would stay root with the default capabilities. It is refused from
//! every source (flags, appc manifests, OCI configs, the image's /etc/passwd and
//! /etc/group), and so are ids a `--private-users` pod does not map. Nothing runs and
//! no pod is left behind.

use crate::common;
use crate::podkit;

use common::aci::AciLayout;
use common::compress::Compression;
use common::oci::busybox_layout;
use common::rootfs::{busybox_rootfs, write_file};
use podkit::PodEnv;

/// A script that would show the app running as root.
const WHOAMI: &str = "echo uid=$(id -u) gid=$(id -g)";

fn assert_refused(env: &PodEnv, run: &common::Run, needles: &[&str]) {
    assert_ne!(run.code(), Some(0), "expected a refusal:\n{run}");
    assert!(
        !run.stdout.contains("uid="),
        "the app ran although its ids are refused:\n{run}"
    );
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "stderr should mention {n:?}:\n{run}"
        );
    }
    assert!(
        env.list().is_empty(),
        "a refused run left a pod behind:\n{run}"
    );
}

#[test]
fn user_and_group_flags_of_minus_one_are_refused() {
    let env = PodEnv::new();
    for flags in [
        &["--user=4294967295"][..],
        &["--group=4294967295"],
        &["--user=4294967295", "--group=4294967295"],
        &["--user=-1"],
        &["--supplementary-gids=4294967295"],
    ] {
        let run = env.sh_app(&[], flags, WHOAMI);
        // A flag's value refused while the command line is read: a usage error, as clap's.
        assert_eq!(run.code(), Some(2), "{run}");
        assert_refused(&env, &run, &["(uid_t)-1"]);
    }
    // The same ids one below run as asked.
    let run = env
        .sh_app(&[], &["--user=4294967294", "--group=4294967294"], WHOAMI)
        .success();
    assert!(
        run.stdout.contains("uid=4294967294 gid=4294967294"),
        "{run}"
    );
}

#[test]
fn oci_config_user_of_minus_one_is_refused() {
    let env = PodEnv::new();
    for user in ["4294967295:4294967295", "4294967295", "0:4294967295"] {
        let layout = busybox_layout(&env.v.path(&common::host::unique_name("layout")), "u");
        layout.config(&["--config.user", user]);
        let run = env
            .v
            .run(&["fetch", "--insecure-options=image", &layout.reference()]);
        if run.status.success() {
            // Stored: the conversion refuses it when a pod is made of it.
            let id = run.stdout.trim().to_string();
            let run = env.run(&["run", "--rm", &id, "--exec", "/bin/sh", "--", "-c", WHOAMI]);
            assert_refused(&env, &run, &["User", "(uid_t)-1"]);
        } else {
            assert_refused(&env, &run.failure(), &["User", "(uid_t)-1"]);
        }
    }
}

#[test]
fn appc_manifest_user_of_minus_one_is_refused() {
    let env = PodEnv::new();
    for (user, group) in [("4294967295", "0"), ("0", "4294967295"), ("-1", "0")] {
        let mut layout = AciLayout::create(
            &env.v.path(&common::host::unique_name("aci")),
            "example.com/minus-one",
            "1",
        );
        busybox_rootfs(&layout.rootfs());
        layout.manifest["app"]["user"] = user.into();
        layout.manifest["app"]["group"] = group.into();
        let aci = layout.build(
            &env.v
                .path(&format!("{}.aci", common::host::unique_name("m1"))),
            Compression::None,
        );
        let run = env.v.fetch_refused(&aci.path_str());
        assert_refused(&env, &run, &["app.", "(uid_t)-1"]);
    }
    // A supplementary group of -1 too.
    let mut layout = AciLayout::create(&env.v.path("gids"), "example.com/gids", "1");
    busybox_rootfs(&layout.rootfs());
    layout.manifest["app"]["supplementaryGIDs"] = serde_json::json!([4294967295u32]);
    let aci = layout.build(&env.v.path("gids.aci"), Compression::None);
    let run = env.v.fetch_refused(&aci.path_str());
    assert_refused(&env, &run, &["supplementaryGIDs", "(uid_t)-1"]);
}

#[test]
fn ids_outside_the_private_users_mapping_are_refused_up_front() {
    let env = PodEnv::new();
    for flags in [
        &["--user=65536"][..],
        &["--group=70000"],
        &["--supplementary-gids=65536"],
    ] {
        let run = env.sh_app(&["--private-users"], flags, WHOAMI);
        assert_refused(&env, &run, &["maps ids 0 to 65535"]);
    }
    let run = env
        .sh_app(
            &["--private-users"],
            &["--user=65535", "--group=65535"],
            WHOAMI,
        )
        .success();
    assert!(run.stdout.contains("uid=65535 gid=65535"), "{run}");
}

/// An image whose /etc/passwd and /etc/group give names the id -1.
fn image_with_minus_one_names(env: &PodEnv) -> String {
    let layout = AciLayout::create(&env.v.path("names"), "example.com/names", "1");
    busybox_rootfs(&layout.rootfs());
    write_file(
        &layout.rootfs(),
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nghost:x:4294967295:4294967295::/:/bin/sh\nplain:x:1000:4294967295::/:/bin/sh\n",
    );
    write_file(
        &layout.rootfs(),
        "etc/group",
        b"root:x:0:\nghosts:x:4294967295:plain\nusers:x:100:\n",
    );
    let aci = layout.build(&env.v.path("names.aci"), Compression::None);
    env.v.fetch(&aci.path_str());
    "example.com/names:1".to_string()
}

#[test]
fn passwd_and_group_entries_of_minus_one_are_refused_at_start() {
    let env = PodEnv::new();
    let image = image_with_minus_one_names(&env);
    for flags in [
        &["--user=ghost"][..],
        &["--user=plain"],
        &["--user=0", "--group=ghosts"],
    ] {
        let mut args = vec!["run", "--rm", &image];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", WHOAMI]);
        let run = env.run(&args);
        assert_ne!(run.code(), Some(0), "{run}");
        assert!(!run.stdout.contains("uid="), "the app ran:\n{run}");
        assert!(run.stderr.contains("4294967295"), "{run}");
    }
}

/// appc (and rkt's `--user`/`--group`): an absolute path names a file in the image whose
/// owner the app runs as; a path that is not there is an error naming it, and no pod stays.
#[test]
fn user_and_group_as_paths_run_as_the_files_owner() {
    let env = PodEnv::new();
    let layout = AciLayout::create(&env.v.path("owned"), "example.com/owned", "1");
    busybox_rootfs(&layout.rootfs());
    write_file(&layout.rootfs(), "etc/owned-by-u", b"u");
    write_file(&layout.rootfs(), "etc/owned-by-g", b"g");
    let (u, g) = (
        layout.rootfs().join("etc/owned-by-u"),
        layout.rootfs().join("etc/owned-by-g"),
    );
    std::os::unix::fs::chown(&u, Some(4321), Some(99)).unwrap();
    std::os::unix::fs::chown(&g, Some(98), Some(8765)).unwrap();
    // A link climbing out of the image resolves inside it: /etc/escape → the image's own
    // /home/app (uid 1000), which the host does not have.
    std::os::unix::fs::symlink("../../../../home/app", layout.rootfs().join("etc/escape")).unwrap();
    let aci = layout.build(&env.v.path("owned.aci"), Compression::None);
    env.v.fetch(&aci.path_str());
    let image = "example.com/owned:1";
    let sh = |flags: &[&str]| {
        let mut args = vec!["run", "--rm", image];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--exec", "/bin/sh", "--", "-c", WHOAMI]);
        env.run(&args)
    };
    let run = sh(&["--user=/etc/owned-by-u", "--group=/etc/owned-by-g"]).success();
    assert!(run.stdout.contains("uid=4321 gid=8765"), "{run}");
    // With no group, the user's primary group (a uid with no passwd entry: 0).
    let run = sh(&["--user=/etc/owned-by-u"]).success();
    assert!(run.stdout.contains("uid=4321 gid=0"), "{run}");
    let run = sh(&["--user=/etc/escape"]).success();
    assert!(run.stdout.contains("uid=1000 gid=1000"), "{run}");
    let run = sh(&["--user=/etc/missing"]);
    assert_refused(&env, &run, &["/etc/missing"]);
}
