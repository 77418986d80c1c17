//! The image part of `run` and `prepare`, as rkt spells it:
//! `[--mount ...] IMAGE [APP FLAGS] [-- ARGS [---]] [IMAGE2 [APP FLAGS] ...]`.
//!
//! clap reads the pod flags before the images and hands over every word from the first
//! image (or the first flag it does not know) on. Here: each bare word starts an app
//! (rkt's `IMG1 IMG2`), `--` starts the app's arguments and `---` ends them (or ends an
//! app's flags), app flags follow their image, and `--mount` before every image applies
//! to every app. A flag out of place or misspelled says so, with a suggestion.

use pod::request::{parse_env_pair, AppRequest, SeccompRequest};

/// The app flags, as rkt names them (aliases after their canonical name).
const APP_FLAGS: &[&str] = &[
    "exec",
    "name",
    "user",
    "group",
    "supplementary-gids",
    "working-dir",
    "environment",
    "readonly-rootfs",
    "memory",
    "cpu",
    "cpu-shares",
    "oom-score-adj",
    "caps-retain",
    "caps-remove",
    "seccomp",
    "mount",
    "annotation",
    "user-annotation",
    "user-label",
    "label",
    "signature",
];

/// rkt's deprecated spellings, still read.
const DEPRECATED: &[(&str, &str)] = &[("cap-retain", "caps-retain"), ("cap-remove", "caps-remove")];

/// rkt flags Vessel knows of but does not offer, and why.
const NOT_SUPPORTED: &[(&str, &str)] = &[
    (
        "no-overlay",
        "Vessel always mounts image layers with overlayfs (nothing is copied)",
    ),
    (
        "stdin",
        "attaching to an app's stdio (rkt's experimental attach) is not offered",
    ),
    (
        "stdout",
        "attaching to an app's stdio (rkt's experimental attach) is not offered",
    ),
    (
        "stderr",
        "attaching to an app's stdio (rkt's experimental attach) is not offered",
    ),
];

/// A command line that does not parse (exit status 2, as clap's errors).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// What the words parse to: one request per app, and notes for the user.
#[derive(Debug, Default)]
pub struct Parsed {
    pub apps: Vec<AppRequest>,
    pub notes: Vec<String>,
}

/// A comma-separated list (`CAP_A,CAP_B`).
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(flag: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{flag}: {other:?} is not true or false")),
    }
}

/// The known name closest to `word`, if any is close (clap's measure).
pub fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `--name[=value]` split, for any word starting with `-`.
fn flag_name(word: &str) -> (&str, Option<&str>) {
    let bare = word.trim_start_matches('-');
    match bare.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (bare, None),
    }
}

/// Splits the words after the pod flags of `command` (run, prepare) into one request per
/// app. `pod_flag_names` gives the
/// long names of the command's pod flags (for messages about flags out of place), asked
/// for only when a flag is not an app flag: building them costs clap's whole `run`.
pub fn parse(
    words: &[String],
    command: &str,
    pod_flag_names: impl Fn() -> Vec<String>,
) -> Result<Parsed, String> {
    let names = std::cell::OnceCell::new();
    let pod_flags = || names.get_or_init(&pod_flag_names).as_slice();
    let mut out = Parsed::default();
    let mut shared_mounts = Vec::new();
    let mut i = 0;
    let unknown = |name: &str, app_level: bool| -> String {
        if let Some((_, why)) = NOT_SUPPORTED.iter().find(|(n, _)| *n == name) {
            return format!("--{name} is not supported: {why}");
        }
        let candidates = APP_FLAGS.iter().copied().chain(
            pod_flags()
                .iter()
                .map(String::as_str)
                .filter(|_| !app_level),
        );
        let hint = match suggest(name, candidates) {
            Some(s) => format!(" (did you mean --{s}?)"),
            None if app_level => format!(" (app flags: --{})", APP_FLAGS.join(", --")),
            None => String::new(),
        };
        format!(
            "unknown {}flag --{name}{hint}",
            if app_level { "app " } else { "" }
        )
    };
    // Before the first image: only --mount (for every app) belongs here.
    while i < words.len() && words[i].starts_with('-') && words[i] != "-" {
        let (name, inline) = flag_name(&words[i]);
        match name {
            "mount" => {
                let v = match inline {
                    Some(v) => v.to_string(),
                    None => {
                        i += 1;
                        words
                            .get(i)
                            .cloned()
                            .ok_or("--mount needs a value (volume=NAME,target=PATH)")?
                    }
                };
                shared_mounts
                    .push(schema::Mount::from_flag(&v).map_err(|e| format!("--mount {v:?}: {e}"))?);
                i += 1;
            }
            "" => return Err(format!("{:?}: give an image before it", words[i])),
            n if APP_FLAGS.contains(&n) || DEPRECATED.iter().any(|(d, _)| *d == n) => {
                return Err(format!(
                    "--{n} is an app flag: it follows the image it applies to (IMAGE --{n} ...)"
                ))
            }
            n if pod_flags().iter().any(|p| p == n) => {
                return Err(format!(
                    "--{n} must come before --mount and the images (give pod flags first)"
                ))
            }
            n => return Err(unknown(n, false)),
        }
    }
    while i < words.len() {
        let image = &words[i];
        if image == "---" {
            i += 1;
            continue;
        }
        let mut app = AppRequest {
            image: image.clone(),
            mounts: shared_mounts.clone(),
            ..Default::default()
        };
        i += 1;
        while i < words.len() {
            let w = &words[i];
            if w == "---" {
                i += 1;
                break;
            }
            if w == "--" {
                // The app's arguments, up to `---` or the end.
                let end = words[i + 1..]
                    .iter()
                    .position(|x| x == "---")
                    .map(|p| i + 1 + p)
                    .unwrap_or(words.len());
                app.args = Some(words[i + 1..end].to_vec());
                i = end;
                continue;
            }
            if !w.starts_with('-') || w == "-" {
                // rkt's `IMG1 IMG2`: a word that is not a flag is the next image.
                break;
            }
            let (raw_name, inline) = flag_name(w);
            let name = match DEPRECATED.iter().find(|(d, _)| *d == raw_name) {
                Some((d, new)) => {
                    out.notes
                        .push(format!("--{d} is deprecated: it is --{new} now"));
                    *new
                }
                None => raw_name,
            };
            if !APP_FLAGS.contains(&name) {
                if pod_flags().iter().any(|p| p == name) {
                    return Err(format!(
                        "--{name} is a pod flag: give it before the images (vessel {command} --{name} ... {})",
                        app.image
                    ));
                }
                return Err(unknown(name, true));
            }
            let takes_value = name != "readonly-rootfs";
            let value = if takes_value && inline.is_none() {
                i += 1;
                Some(
                    words
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                )
            } else {
                inline.map(str::to_string)
            };
            app_flag(&mut app, name, value)?;
            i += 1;
        }
        out.apps.push(app);
    }
    if out.apps.is_empty() {
        return Err("no image given".into());
    }
    Ok(out)
}

/// Applies one app flag to its app.
fn app_flag(app: &mut AppRequest, name: &str, value: Option<String>) -> Result<(), String> {
    let v = value.clone().unwrap_or_default();
    let num = |what: &str| -> Result<u64, String> {
        v.parse()
            .map_err(|_| format!("--{what}: {v:?} is not a number"))
    };
    match name {
        "exec" => app.exec = Some(v),
        "name" => app.name = Some(v),
        "user" | "group" => {
            let what = if name == "user" { "user" } else { "group" };
            schema::ids::check_user_or_group(what, &v, None)
                .map_err(|e| format!("--{name}: {e}"))?;
            if name == "user" {
                app.user = Some(v);
            } else {
                app.group = Some(v);
            }
        }
        "supplementary-gids" => {
            for g in v.split(',').filter(|g| !g.is_empty()) {
                let gid: u32 = g
                    .parse()
                    .map_err(|_| format!("--supplementary-gids: {g:?} is not a number"))?;
                schema::ids::check_id("supplementary group", gid, None)
                    .map_err(|e| format!("--supplementary-gids: {e}"))?;
                app.supplementary_gids.push(gid);
            }
        }
        "working-dir" => app.working_dir = Some(v),
        "environment" => app
            .environment
            .push(parse_env_pair(&v).map_err(|e| format!("--environment: {e}"))?),
        "readonly-rootfs" => {
            app.readonly_rootfs = parse_bool("--readonly-rootfs", value.as_deref())?
        }
        "memory" => {
            let q: schema::Quantity = v.parse().map_err(|e| {
                format!("--memory: {e} (write it as 512M, 1G, 256Mi or a number of bytes)")
            })?;
            if !q.is_whole() || q.units() == 0 {
                return Err(format!(
                    "--memory: {v:?} is not a whole, positive number of bytes"
                ));
            }
            app.memory = Some(
                u64::try_from(q.units()).map_err(|_| format!("--memory: {v:?} is too large"))?,
            );
        }
        "cpu" => {
            let q: schema::Quantity = v.parse().map_err(|e| format!("--cpu: {e}"))?;
            if q.millis() == 0 {
                return Err(format!("--cpu: {v:?} must be positive"));
            }
            app.cpu_millis =
                Some(u64::try_from(q.millis()).map_err(|_| format!("--cpu: {v:?} is too large"))?);
        }
        "cpu-shares" => app.cpu_shares = Some(num("cpu-shares")?),
        "oom-score-adj" => {
            let n: i32 = v
                .parse()
                .map_err(|_| format!("--oom-score-adj: {v:?} is not a number"))?;
            if !(-1000..=1000).contains(&n) {
                return Err(format!("--oom-score-adj: {n} is outside -1000..1000"));
            }
            app.oom_score_adj = Some(n);
        }
        "caps-retain" => app.caps_retain = Some(list(&v)),
        "caps-remove" => app.caps_remove = Some(list(&v)),
        "seccomp" => app.seccomp = Some(SeccompRequest::parse(&v)?),
        "annotation" => app
            .annotations
            .push(parse_env_pair(&v).map_err(|e| format!("--annotation: {e}"))?),
        "user-annotation" => app
            .user_annotations
            .push(parse_env_pair(&v).map_err(|e| format!("--user-annotation: {e}"))?),
        "user-label" | "label" => app
            .labels
            .push(parse_env_pair(&v).map_err(|e| format!("--{name}: {e}"))?),
        "mount" => app
            .mounts
            .push(schema::Mount::from_flag(&v).map_err(|e| format!("--mount {v:?}: {e}"))?),
        "signature" => app.signature = Some(v.into()),
        other => unreachable!("--{other} is in APP_FLAGS but not handled"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn pod_flags() -> Vec<String> {
        [
            "net",
            "volume",
            "hostname",
            "set-env",
            "inherit-env",
            "stage1-name",
        ]
        .map(String::from)
        .to_vec()
    }

    fn apps(s: &str) -> Vec<AppRequest> {
        parse(&words(s), "run", pod_flags).unwrap().apps
    }

    fn err(s: &str) -> String {
        parse(&words(s), "run", pod_flags).unwrap_err()
    }

    #[test]
    fn several_apps_with_flags_and_args() {
        let a = apps("img1 --exec /bin/sh --memory=128M -- -c true --- img2 --name=b --readonly-rootfs --environment A=1");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].exec.as_deref(), Some("/bin/sh"));
        assert_eq!(a[0].memory, Some(128_000_000));
        assert_eq!(
            a[0].args.as_deref(),
            Some(&["-c".to_string(), "true".to_string()][..])
        );
        assert_eq!(a[1].name.as_deref(), Some("b"));
        assert!(a[1].readonly_rootfs);
        assert_eq!(a[1].environment, vec![("A".to_string(), "1".to_string())]);
    }

    /// rkt's documented forms: `IMG1 IMG2`, and `img1 -- args --- img2 -- args`.
    #[test]
    fn rkt_multi_app_forms() {
        let a = apps("example.com/app1 example.com/app2");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].image, "example.com/app2");
        let a = apps("docker://busybox --name=busybox1 docker://busybox --name=busybox2");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].name.as_deref(), Some("busybox2"));
        let a = apps("example.com/worker --exec /bin/ov -- --loglevel verbose --- example.com/syncer --exec /bin/syncer2 -- --interval 30s");
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].args.as_deref(),
            Some(&["--loglevel".to_string(), "verbose".to_string()][..])
        );
        assert_eq!(a[1].exec.as_deref(), Some("/bin/syncer2"));
        assert_eq!(
            a[1].args.as_deref(),
            Some(&["--interval".to_string(), "30s".to_string()][..])
        );
        // `--` args run to the end when no `---` follows: later words are arguments.
        let a = apps("img -- x img2");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].args.as_ref().unwrap().len(), 2);
    }

    /// `--mount` before the images applies to every app (run.md).
    #[test]
    fn mount_before_the_images_is_for_every_app() {
        let a = apps("--mount volume=data,target=/var/log app1 app2 --mount volume=x,target=/x");
        assert_eq!(a[0].mounts.len(), 1);
        assert_eq!(a[1].mounts.len(), 2);
        assert_eq!(a[1].mounts[0].path, "/var/log");
    }

    #[test]
    fn flags_out_of_place_or_misspelled_say_so() {
        assert_eq!(
            err("--nett=host img"),
            "unknown flag --nett (did you mean --net?)"
        );
        assert!(err("img --exce /bin/true").contains("did you mean --exec?"));
        assert!(err("img --bogus 1").contains("unknown app flag --bogus"));
        assert!(err("--exec /bin/sh img").contains("--exec is an app flag"));
        assert!(err("img --net=host").contains("--net is a pod flag"));
        // A pod flag (the stage1's) after the image says where it belongs.
        assert!(err("img --stage1-name=x").contains("--stage1-name is a pod flag"));
        // The advice names the command that was given.
        assert!(err("img --net=host").contains("(vessel run --net ... img)"));
        let prepare = parse(&words("img --net=host"), "prepare", pod_flags).unwrap_err();
        assert!(
            prepare.contains("(vessel prepare --net ... img)"),
            "{prepare}"
        );
        assert!(err("img --no-overlay").contains("not supported"));
    }

    #[test]
    fn deprecated_and_renamed_flags() {
        let p = parse(
            &words("img --cap-retain=CAP_CHOWN --user-label a=b --label c=d --user-annotation e=f"),
            "run",
            pod_flags,
        )
        .unwrap();
        assert_eq!(
            p.apps[0].caps_retain.as_deref(),
            Some(&["CAP_CHOWN".to_string()][..])
        );
        assert!(p.notes[0].contains("deprecated"));
        assert_eq!(p.apps[0].labels.len(), 2);
        assert_eq!(p.apps[0].user_annotations, vec![("e".into(), "f".into())]);
    }

    #[test]
    fn security_flags_annotations_and_mounts() {
        let a = apps("i --caps-retain=CAP_NET_ADMIN,CAP_CHOWN --seccomp mode=remove,errno=ENOTSUP,reboot --annotation a.b/c=d --label=tier=web --mount volume=data,target=/data");
        let a = &a[0];
        assert_eq!(
            a.caps_retain.as_deref(),
            Some(&["CAP_NET_ADMIN".to_string(), "CAP_CHOWN".to_string()][..])
        );
        assert_eq!(a.seccomp.as_ref().unwrap().set, vec!["reboot"]);
        assert_eq!(a.annotations, vec![("a.b/c".to_string(), "d".to_string())]);
        assert_eq!(a.labels, vec![("tier".to_string(), "web".to_string())]);
        assert_eq!(a.mounts[0].path, "/data");
        assert!(err("i --mount target=/x").contains("--mount"));
        assert!(err("i --seccomp reboot").contains("mode"));
    }

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(apps("i --cpu=500m")[0].cpu_millis, Some(500));
        assert_eq!(apps("i --cpu 2")[0].cpu_millis, Some(2000));
    }

    #[test]
    fn bad_input_names_the_flag() {
        assert!(err("i --memory").contains("--memory"));
        assert!(err("i --memory=lots").contains("--memory"));
        assert!(err("i --oom-score-adj=5000").contains("-1000"));
        assert!(parse(&[], "run", pod_flags).is_err());
    }
}
