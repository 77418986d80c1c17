//! Fault injection (issue 16, "systematic search"): each command runs once under the
//! fault wrapper to count its writes, fsyncs, renames, mkdirs, file creations and unlinks under
//! `--dir`, then again with the Nth call of each kind failed (EIO or ENOSPC) for N over
//! a bounded sample of those calls (`common::faults::picks`). After each fault:
//! - the command succeeded (the call was one it may do without) and did all it should,
//!   or it failed with a clear error: a non-zero exit, no panic or abort, a message from
//!   vessel naming the errno;
//! - `image verify` passes, `list` and `status` tell no lies (no pod running, each pod's
//!   status readable) and every pod left can be removed;
//! - the same command without the fault succeeds.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::aci::busybox_aci;
use crate::common::compress::Compression;
use crate::common::faults::{picks, Fault, FaultWrap, Kind};
use crate::common::oci::busybox_layout;
use crate::common::{Run, Vessel};
use crate::podkit::IMAGE;

/// Calls failed per kind in one sweep (alternately with each errno): sized so the file
/// runs within a minute or so on two busy cores.
const PICKS: u64 = 6;

/// One command under test.
struct Case {
    /// Brings the store to the state before the command and gives its arguments.
    setup: fn(&Vessel, &Inputs) -> Vec<String>,
    /// The command's exit code when it did its job.
    ok_code: i32,
    /// Checks the command did its job (after its exit code said so).
    effect: fn(&Vessel, &[String]),
    /// A fresh store per attempt (fetch), or one store cleaned between attempts.
    fresh_store: bool,
}

/// What the commands read, made once per test: a busybox ACI and OCI layout.
struct Inputs {
    maker: Vessel,
    aci: String,
    layout: Option<String>,
}

impl Inputs {
    fn new(with_layout: bool) -> Inputs {
        let maker = Vessel::new();
        let aci = busybox_aci(maker.work(), "example.com/busybox", "1", Compression::Gzip);
        let layout = with_layout.then(|| busybox_layout(&maker.path("layout"), "v1").reference());
        Inputs {
            aci: aci.path_str(),
            layout,
            maker,
        }
    }

    fn uuid_file(&self) -> PathBuf {
        self.maker.path("uuid")
    }

    fn uuid(&self) -> String {
        std::fs::read_to_string(self.uuid_file())
            .unwrap()
            .trim()
            .to_string()
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A store holding the busybox ACI as `IMAGE`.
fn store_with_image(inputs: &Inputs) -> Vessel {
    let v = Vessel::new();
    v.fetch(&inputs.aci);
    v
}

fn list(v: &Vessel) -> Vec<Value> {
    let r = v.run(&["list", "--format=json"]);
    assert!(r.status.success(), "list after a fault:\n{r}");
    r.json().as_array().cloned().unwrap_or_default()
}

fn uuid_of(pod: &Value) -> String {
    pod["name"].as_str().unwrap().to_string()
}

/// The store of one attempt: the shared one, or a new one kept in `slot`.
fn store<'a>(shared: &'a Option<Vessel>, slot: &'a mut Option<Vessel>) -> &'a Vessel {
    match shared {
        Some(v) => v,
        None => slot.insert(Vessel::new()),
    }
}

/// Runs `case` without a fault, then with each sampled fault of each kind.
fn sweep(case: &Case, inputs: &Inputs, errnos: &[&'static str]) {
    let wrap = FaultWrap::build();
    let shared = (!case.fresh_store).then(|| store_with_image(inputs));
    let mut slot = None;
    let v = store(&shared, &mut slot);
    if shared.is_some() {
        // A store's first pod creates its directories: count on one that has had a pod.
        let args = (case.setup)(v, inputs);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(v.run(&argv).code(), Some(case.ok_code));
        clean_up(v);
    }
    let args = (case.setup)(v, inputs);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, counted) = wrap.run(v, None, &argv);
    assert_eq!(r.code(), Some(case.ok_code), "without a fault:\n{r}");
    (case.effect)(v, &args);
    clean_up(v);
    let mut summary = Vec::new();
    for kind in Kind::ALL {
        let total = counted.count(kind);
        let (mut refused, mut absorbed) = (0, 0);
        for (i, nth) in picks(total, PICKS).into_iter().enumerate() {
            let errno = errnos[i % errnos.len()];
            let fault = Fault { kind, nth, errno };
            let mut slot = None;
            let v = store(&shared, &mut slot);
            let args = (case.setup)(v, inputs);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let (r, report) = wrap.run(v, Some(fault), &argv);
            let Some(injected) = report.injected else {
                // Fewer calls this time (the count varies a little between runs).
                assert_eq!(r.code(), Some(case.ok_code), "{r}");
                clean_up(v);
                continue;
            };
            let what = format!("{fault}, injected into {injected}");
            let ok = r.code() == Some(case.ok_code);
            if ok {
                absorbed += 1;
                (case.effect)(v, &args);
            } else {
                refused += 1;
                assert_clear_failure(&r, &fault, &what);
            }
            assert_no_lies(v, &what);
            if !ok {
                let retry = v.run(&argv);
                assert_eq!(
                    retry.code(),
                    Some(case.ok_code),
                    "a retry without the fault after {what}:\n{retry}\n(the faulted run:\n{r})"
                );
                (case.effect)(v, &args);
            }
            clean_up(v);
        }
        summary.push(format!(
            "{}: {total} calls, {refused} faults refused, {absorbed} absorbed",
            kind.name()
        ));
    }
    eprintln!(
        "{} ({}): {}",
        args.join(" "),
        errnos.join(", "),
        summary.join("; ")
    );
}

/// A failure says what went wrong: a non-zero exit of vessel's own (not a panic, an
/// abort or a signal), and a message naming the errno.
fn assert_clear_failure(r: &Run, fault: &Fault, what: &str) {
    let code = r.code();
    assert!(
        code.is_some() && code != Some(0) && code != Some(101) && code != Some(134),
        "{what}: not a clean failure:\n{r}"
    );
    assert!(
        !r.stderr.contains("panicked"),
        "{what}: vessel panicked:\n{r}"
    );
    assert!(
        r.stderr.contains("vessel") && r.stderr.contains(fault.message()),
        "{what}: the error does not say what failed:\n{r}"
    );
}

/// The store is sound, no pod claims to run (no command is running), and every pod's
/// status can be read.
fn assert_no_lies(v: &Vessel, what: &str) {
    let verify = v.run(&["image", "verify"]);
    assert!(
        verify.status.success() && verify.stdout.trim().is_empty(),
        "{what}: the store is not sound:\n{verify}"
    );
    for pod in list(v) {
        let uuid = uuid_of(&pod);
        assert_ne!(
            pod["state"], "running",
            "{what}: a pod claims to run: {pod}"
        );
        let st = v.run(&["status", "--format=json", &uuid]);
        assert!(st.status.success(), "{what}: status of {uuid}:\n{st}");
    }
}

/// Removes every pod (each must be removable), and checks nothing is left mounted.
fn clean_up(v: &Vessel) {
    for pod in list(v) {
        let uuid = uuid_of(&pod);
        let r = v.run(&["rm", &uuid]);
        assert!(
            r.status.success(),
            "a pod left that cannot be removed: {pod}\n{r}"
        );
        assert!(
            crate::podkit::cgroup_dirs(&uuid).is_empty(),
            "cgroups of {uuid} left"
        );
    }
    v.run(&["gc", "--grace-period=0s", "--expire-prepared=0s"])
        .success();
    assert_eq!(list(v), Vec::<Value>::new(), "pods left after rm and gc");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = v.dir().to_string_lossy().into_owned();
    assert!(!mounts.contains(&dir), "mounts left under {dir}:\n{mounts}");
}

fn fetch_aci(_: &Vessel, i: &Inputs) -> Vec<String> {
    strings(&["fetch", "--insecure-options=image", &i.aci])
}

fn fetch_layout(_: &Vessel, i: &Inputs) -> Vec<String> {
    strings(&[
        "fetch",
        "--insecure-options=image",
        i.layout.as_deref().unwrap(),
    ])
}

fn one_image(v: &Vessel, _: &[String]) {
    assert_eq!(v.image_ids().len(), 1, "the image is not stored");
    v.assert_verify_clean();
}

fn prepare(_: &Vessel, i: &Inputs) -> Vec<String> {
    let save = format!("--uuid-file-save={}", i.uuid_file().display());
    strings(&["prepare", "--quiet", &save, IMAGE, "--exec=/bin/true"])
}

fn prepared(v: &Vessel, _: &[String]) {
    let pods = list(v);
    assert!(
        pods.iter().any(|p| p["state"] == "prepared"),
        "no prepared pod: {pods:?}"
    );
}

fn run(_: &Vessel, i: &Inputs) -> Vec<String> {
    let save = format!("--uuid-file-save={}", i.uuid_file().display());
    strings(&[
        "run",
        "--net=none",
        &save,
        IMAGE,
        "--exec=/bin/sh",
        "--",
        "-c",
        "exit 3",
    ])
}

/// The pod ran and exited; its app's status, when recorded, is the app's (a final
/// state that could not be written on a failing disk is a warning: status shows none).
fn ran(v: &Vessel, args: &[String]) {
    let file = args
        .iter()
        .find_map(|a| a.strip_prefix("--uuid-file-save="))
        .unwrap();
    let uuid = std::fs::read_to_string(file).unwrap().trim().to_string();
    let st = v.run(&["status", "--format=json", &uuid]).success().json();
    assert_eq!(st["state"], "exited", "{st}");
    let app = &st["apps"][0];
    assert!(
        app.get("exit_code").is_none() || app["exit_code"] == 3,
        "the app exited 3: {st}"
    );
}

/// An exited pod, and `rm` of it.
fn rm(v: &Vessel, i: &Inputs) -> Vec<String> {
    let save = format!("--uuid-file-save={}", i.uuid_file().display());
    v.run(&["run", "--net=none", &save, IMAGE, "--exec=/bin/true"])
        .success();
    strings(&["rm", &i.uuid()])
}

fn removed(v: &Vessel, args: &[String]) {
    let uuid = &args[1];
    assert!(
        list(v).iter().all(|p| &uuid_of(p) != uuid),
        "pod {uuid} is still listed"
    );
}

/// An exited pod, and `gc` with no grace period.
fn gc(v: &Vessel, i: &Inputs) -> Vec<String> {
    rm(v, i);
    strings(&["gc", "--grace-period=0s"])
}

fn collected(v: &Vessel, _: &[String]) {
    assert_eq!(list(v), Vec::<Value>::new(), "gc left pods");
}

/// The image, a pod that used it (its rendered tree stays) removed, and `image gc`.
fn image_gc(v: &Vessel, i: &Inputs) -> Vec<String> {
    if v.image_ids().is_empty() {
        v.run(&["fetch", "--insecure-options=image", i.aci.as_str()])
            .success();
    }
    let rm_args = rm(v, i);
    v.run(&[rm_args[0].as_str(), rm_args[1].as_str()]).success();
    strings(&["image", "gc", "--grace-period=0s"])
}

fn images_collected(v: &Vessel, _: &[String]) {
    assert_eq!(v.image_ids(), Vec::<String>::new(), "image gc left images");
    v.assert_verify_clean();
}

#[test]
fn fetch_of_an_aci_survives_every_fault() {
    let inputs = Inputs::new(false);
    let case = Case {
        setup: fetch_aci,
        ok_code: 0,
        effect: one_image,
        fresh_store: true,
    };
    sweep(&case, &inputs, &["EIO", "ENOSPC"]);
}

#[test]
fn import_of_an_oci_layout_survives_every_fault() {
    let inputs = Inputs::new(true);
    let case = Case {
        setup: fetch_layout,
        ok_code: 0,
        effect: one_image,
        fresh_store: true,
    };
    sweep(&case, &inputs, &["ENOSPC", "EIO"]);
}

#[test]
fn prepare_survives_every_fault() {
    let inputs = Inputs::new(false);
    let case = Case {
        setup: prepare,
        ok_code: 0,
        effect: prepared,
        fresh_store: false,
    };
    sweep(&case, &inputs, &["ENOSPC", "EIO"]);
}

#[test]
fn run_survives_every_fault() {
    let inputs = Inputs::new(false);
    let case = Case {
        setup: run,
        ok_code: 3,
        effect: ran,
        fresh_store: false,
    };
    sweep(&case, &inputs, &["EIO", "ENOSPC"]);
}

#[test]
fn rm_survives_every_fault() {
    let inputs = Inputs::new(false);
    let case = Case {
        setup: rm,
        ok_code: 0,
        effect: removed,
        fresh_store: false,
    };
    sweep(&case, &inputs, &["EIO", "ENOSPC"]);
}

#[test]
fn gc_survives_every_fault() {
    let inputs = Inputs::new(false);
    let case = Case {
        setup: gc,
        ok_code: 0,
        effect: collected,
        fresh_store: false,
    };
    sweep(&case, &inputs, &["ENOSPC", "EIO"]);
}

#[test]
fn image_gc_survives_every_fault() {
    let inputs = Inputs::new(false);
    let case = Case {
        setup: image_gc,
        ok_code: 0,
        effect: images_collected,
        fresh_store: false,
    };
    sweep(&case, &inputs, &["EIO", "ENOSPC"]);
}

/// Regression: the copy of an ACI kept as its blob is written while the archive is read,
/// so a full disk there surfaced as a read error blamed on whichever entry was being
/// extracted ("entry \"bin/busybox\": No space left on device"). The copy is named.
#[test]
fn a_full_disk_under_an_acis_copy_names_the_copy_not_an_entry() {
    let inputs = Inputs::new(false);
    let wrap = FaultWrap::build();
    let v = Vessel::new();
    let fault = Fault {
        kind: Kind::Write,
        nth: 1,
        errno: "ENOSPC",
    };
    let args = fetch_aci(&v, &inputs);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, report) = wrap.run_on(&v, Some(fault), Some("/aci"), &argv);
    assert!(report.injected.is_some(), "no write to the copy:\n{r}");
    assert_clear_failure(&r, &fault, "a write of the ACI's copy");
    assert!(
        r.stderr.contains("/aci: No space left on device") && !r.stderr.contains("entry"),
        "the error should name the copy:\n{r}"
    );
    v.assert_nothing_stored();
    v.fetch(&inputs.aci);
}

/// Regression: one exited pod that `gc` could not mark (its rename failed) stopped the
/// whole collection; it is named and the other pods are still collected.
#[test]
fn gc_collects_the_other_pods_when_one_cannot_be_marked() {
    let inputs = Inputs::new(false);
    let wrap = FaultWrap::build();
    let v = store_with_image(&inputs);
    for _ in 0..2 {
        v.run(&["run", "--net=none", IMAGE, "--exec=/bin/true"])
            .success();
    }
    let fault = Fault {
        kind: Kind::Rename,
        nth: 1,
        errno: "ENOSPC",
    };
    let (r, report) = wrap.run(&v, Some(fault), &["gc", "--grace-period=0s"]);
    let injected = report.injected.expect("gc renamed nothing");
    assert_clear_failure(&r, &fault, &injected);
    let left = list(&v);
    assert_eq!(
        left.len(),
        1,
        "gc stopped at the pod it could not mark: {left:?}\n{r}"
    );
    assert!(r.stderr.contains(&uuid_of(&left[0])), "{r}");
    assert_no_lies(&v, &injected);
    v.run(&["gc", "--grace-period=0s"]).success();
    assert_eq!(list(&v), Vec::<Value>::new());
}
