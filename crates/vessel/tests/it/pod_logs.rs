//! `vessel logs`: several apps merged by time with their names, stdout and stderr kept
//! apart, timestamps, --tail and --since, following; logs capped and rotated per app with
//! a note when lines are dropped; a big log streamed, never read whole into memory.

use std::process::{Command, Stdio};

use crate::podkit::PodEnv;

/// Runs a pod (not removed) and returns its UUID.
fn ran(p: &PodEnv, args: &[&str]) -> String {
    let uuid_file = p.v.path(&crate::common::host::unique_name("uuid"));
    let mut all = vec![
        "run".to_string(),
        format!("--uuid-file-save={}", uuid_file.display()),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let r = p.run(&refs);
    assert!(r.code().is_some(), "{r}");
    std::fs::read_to_string(&uuid_file)
        .unwrap_or_else(|_| panic!("no UUID saved:\n{r}"))
        .trim()
        .to_string()
}

fn sh<'a>(image: &'a str, name: &'a str, script: &'a str) -> Vec<&'a str> {
    vec![
        image, "--name", name, "--exec", "/bin/sh", "--", "-c", script, "---",
    ]
}

/// Two apps take turns (a shared volume orders them); `logs` shows their lines in that
/// order, each with its app's name, stdout on stdout and stderr on stderr.
#[test]
fn apps_interleave_by_time_with_names_and_streams_apart() {
    let p = PodEnv::new();
    let shared = p.v.path("turns");
    std::fs::create_dir(&shared).unwrap();
    let vol = format!("--volume=t,kind=host,source={}", shared.display());
    let wait = |f: &str| format!("while [ ! -e /t/{f} ]; do sleep 0.01; done");
    // The supervisor stamps a line when it reads it (as conmon does): each app pauses
    // before handing over its turn, so a loaded machine cannot read two turns at once.
    let a = format!(
        "echo a1; sleep 0.3; touch /t/1; {}; echo a2; echo a-err >&2; sleep 0.3; touch /t/3",
        wait("2")
    );
    let b = format!(
        "{}; echo b1; sleep 0.3; touch /t/2; {}; echo b2",
        wait("1"),
        wait("3")
    );
    let mut args = vec![vol.as_str(), "--mount", "volume=t,target=/t"];
    args.extend(sh(&p.image, "a", &a));
    args.extend(sh(&p.image, "bb", &b));
    let uuid = ran(&p, &args);
    let r = p.run(&["logs", &uuid]).success();
    assert_eq!(r.stdout, "a  | a1\nbb | b1\na  | a2\nbb | b2\n", "{r}");
    assert_eq!(r.stderr, "a  | a-err\n", "{r}");
    let r = p.run(&["logs", "--stream=stderr", &uuid]).success();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("", "a  | a-err\n"),
        "{r}"
    );
    let r = p
        .run(&["logs", "--stream=stdout", "--app=a", &uuid])
        .success();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("a1\na2\n", ""),
        "{r}"
    );
    let r = p
        .run(&["logs", "--timestamps", "--app=bb", &uuid])
        .success();
    for line in r.stdout.lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{ts}: {e}"));
        assert!(rest == "b1" || rest == "b2", "{r}");
    }
    p.run(&["logs", "--app=nope", &uuid])
        .failure()
        .stderr_names(&["nope", "a, bb"]);
}

#[test]
fn tail_and_since() {
    let p = PodEnv::new();
    let uuid = ran(
        &p,
        &sh(
            &p.image,
            "x",
            "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; done",
        ),
    );
    let r = p.run(&["logs", "--tail=2", &uuid]).success();
    assert_eq!(r.stdout, "9\n10\n", "{r}");
    let r = p.run(&["logs", "--tail=0", &uuid]).success();
    assert_eq!(r.stdout, "", "{r}");
    let r = p.run(&["logs", "--since=1h", &uuid]).success();
    assert_eq!(r.stdout.lines().count(), 10, "{r}");
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let r = p
        .run(&["logs", &format!("--since={later}"), &uuid])
        .success();
    assert_eq!(r.stdout, "", "{r}");
    p.run(&["logs", "--since=yesterday-ish", &uuid])
        .failure()
        .stderr_names(&["--since"]);
}

/// `logs -f` prints lines as the app writes them and ends when the pod does.
#[test]
fn follow_prints_as_it_runs() {
    let p = PodEnv::new();
    let gate = p.v.path("gate");
    std::fs::create_dir(&gate).unwrap();
    let r = p
        .run(&[
            "run",
            "--detach",
            &format!("--volume=g,kind=host,source={}", gate.display()),
            &p.image,
            "--mount=volume=g,target=/g",
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "echo first; while [ ! -e /g/go ]; do sleep 0.02; done; echo second",
        ])
        .success();
    let uuid = r.stdout.trim().to_string();
    let mut child =
        p.v.command(&["logs", "-f", &uuid])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "first\n");
    std::fs::write(gate.join("go"), "").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "second\n");
    let status = child.wait().unwrap();
    assert!(status.success(), "logs -f ended with {status}");
}

/// A chatty app cannot fill the disk: its log is capped (rotated at half the cap), the
/// newest lines are kept, and the log says lines were dropped.
#[test]
fn logs_are_capped_per_app_and_say_what_was_dropped() {
    let p = PodEnv::new();
    let uuid = ran(
        &p,
        &[
            "--log-size=64KiB",
            &p.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    let logs = p.v.dir().join("pods/run").join(&uuid).join("logs");
    let total: u64 = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 64 * 1024, "{total} bytes of logs for a 64 KiB cap");
    let r = p.run(&["logs", &uuid]).success();
    assert!(
        r.stdout.ends_with("line 19999\n"),
        "the newest lines are kept"
    );
    assert!(
        r.stderr
            .contains("earlier lines of app busybox have been dropped"),
        "{}",
        r.stderr
    );
    // The configuration sets the default cap.
    let cfg = p.v.path("etc");
    std::fs::create_dir_all(cfg.join("logs.d")).unwrap();
    std::fs::write(
        cfg.join("logs.d/cap.json"),
        r#"{"rktKind":"logs","rktVersion":"v1","maxSize":"32KiB"}"#,
    )
    .unwrap();
    let uuid = ran(
        &p,
        &[
            &format!("--local-config={}", cfg.display()),
            &p.image,
            "--exec",
            "/bin/sh",
            "--",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done",
        ],
    );
    let logs = p.v.dir().join("pods/run").join(&uuid).join("logs");
    let total: u64 = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 32 * 1024, "{total} bytes of logs for a 32 KiB cap");
}

/// Peak resident memory of `vessel ARGS` (stdout to /dev/null), in KiB. Measured by a
/// small python parent: a child's peak counts the memory of the process it was spawned
/// from (the kernel takes the old image's peak at exec), and this test process is large.
fn peak_rss_kib(p: &PodEnv, args: &[&str]) -> i64 {
    let script = "import resource, subprocess, sys\n\
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
assert r.returncode == 0, r.returncode\n\
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(crate::common::VESSEL)
        .arg("--dir")
        .arg(p.v.dir())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "vessel {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A 48 MB log is streamed: `logs` and `logs --tail` stay small (the whole log was once
/// read into memory).
#[test]
fn a_big_log_is_streamed_not_read_whole() {
    let p = PodEnv::new();
    let uuid = ran(
        &p,
        &sh(
            &p.image,
            "big",
            "head -c 48000000 /dev/zero | tr '\\0' x | fold -w 1000; echo",
        ),
    );
    let log = p.v.dir().join("pods/run").join(&uuid).join("logs/big.log");
    assert!(std::fs::metadata(&log).unwrap().len() > 48_000_000);
    for args in [
        vec!["logs", uuid.as_str()],
        vec!["logs", "--tail=3", uuid.as_str()],
    ] {
        let kib = peak_rss_kib(&p, &args);
        assert!(kib < 24 * 1024, "vessel {args:?} peaked at {kib} KiB");
    }
    let r = p.run(&["logs", "--tail=1", &uuid]).success();
    assert_eq!(
        r.stdout.len(),
        1001,
        "{}",
        &r.stdout[..r.stdout.len().min(80)]
    );
}
