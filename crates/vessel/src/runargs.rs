//! The image part of `run` and `prepare`, as rkt spells it:
//! `IMAGE [APP FLAGS] [-- ARGS] [--- IMAGE2 [APP FLAGS] [-- ARGS] ...]`.

use pod::request::{parse_env_pair, AppRequest, SeccompRequest};

const APP_FLAGS: &str = "--exec, --name, --user, --group, --supplementary-gids, --working-dir, --environment, --readonly-rootfs, --memory, --cpu, --cpu-shares, --oom-score-adj, --caps-retain, --caps-remove, --seccomp, --mount, --annotation, --label";

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

/// Splits the words after the pod flags into one request per app.
pub fn parse(words: &[String]) -> Result<Vec<AppRequest>, String> {
    let mut apps = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let image = &words[i];
        if image == "---" {
            i += 1;
            continue;
        }
        if image.starts_with("--") {
            return Err(format!(
                "{image}: an app flag must follow its image (IMAGE {image} ...)"
            ));
        }
        let mut app = AppRequest {
            image: image.clone(),
            ..Default::default()
        };
        i += 1;
        while i < words.len() && words[i] != "---" {
            let w = &words[i];
            if w == "--" {
                let end = words[i + 1..]
                    .iter()
                    .position(|x| x == "---")
                    .map(|p| i + 1 + p)
                    .unwrap_or(words.len());
                app.args = Some(words[i + 1..end].to_vec());
                i = end;
                break;
            }
            let Some(flag) = w.strip_prefix("--") else {
                return Err(format!(
                    "unexpected {w:?} after image {}: separate apps with ---, arguments with --",
                    app.image
                ));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
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
                inline
            };
            let v = value.clone().unwrap_or_default();
            let num = |what: &str| -> Result<u64, String> {
                v.parse()
                    .map_err(|_| format!("--{what}: {v:?} is not a number"))
            };
            match name {
                "exec" => app.exec = Some(v),
                "name" => app.name = Some(v),
                "user" => app.user = Some(v),
                "group" => app.group = Some(v),
                "supplementary-gids" => {
                    for g in v.split(',').filter(|g| !g.is_empty()) {
                        app.supplementary_gids.push(
                            g.parse().map_err(|_| {
                                format!("--supplementary-gids: {g:?} is not a number")
                            })?,
                        );
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
                    let q: schema::Quantity = v.parse().map_err(|e| format!("--memory: {e}"))?;
                    if !q.is_whole() || q.units() == 0 {
                        return Err(format!(
                            "--memory: {v:?} is not a whole, positive number of bytes"
                        ));
                    }
                    app.memory = Some(
                        u64::try_from(q.units())
                            .map_err(|_| format!("--memory: {v:?} is too large"))?,
                    );
                }
                "cpu" => {
                    let q: schema::Quantity = v.parse().map_err(|e| format!("--cpu: {e}"))?;
                    if q.millis() == 0 {
                        return Err(format!("--cpu: {v:?} must be positive"));
                    }
                    app.cpu_millis = Some(
                        u64::try_from(q.millis())
                            .map_err(|_| format!("--cpu: {v:?} is too large"))?,
                    );
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
                "label" => app
                    .labels
                    .push(parse_env_pair(&v).map_err(|e| format!("--label: {e}"))?),
                "mount" => app
                    .mounts
                    .push(schema::Mount::from_flag(&v).map_err(|e| format!("--mount {v:?}: {e}"))?),
                other => {
                    return Err(format!(
                        "unknown app flag --{other} (app flags: {APP_FLAGS})"
                    ))
                }
            }
            i += 1;
        }
        apps.push(app);
    }
    if apps.is_empty() {
        return Err("no image given".into());
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn several_apps_with_flags_and_args() {
        let apps = parse(&words("img1 --exec /bin/sh --memory=128M -- -c true --- img2 --name=b --readonly-rootfs --environment A=1")).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].exec.as_deref(), Some("/bin/sh"));
        assert_eq!(apps[0].memory, Some(128_000_000));
        assert_eq!(
            apps[0].args.as_deref(),
            Some(&["-c".to_string(), "true".to_string()][..])
        );
        assert_eq!(apps[1].name.as_deref(), Some("b"));
        assert!(apps[1].readonly_rootfs);
        assert_eq!(
            apps[1].environment,
            vec![("A".to_string(), "1".to_string())]
        );
    }

    #[test]
    fn security_flags_annotations_and_mounts() {
        let apps = parse(&words("i --caps-retain=CAP_NET_ADMIN,CAP_CHOWN --seccomp mode=remove,errno=ENOTSUP,reboot --annotation a.b/c=d --label=tier=web --mount volume=data,target=/data")).unwrap();
        let a = &apps[0];
        assert_eq!(
            a.caps_retain.as_deref(),
            Some(&["CAP_NET_ADMIN".to_string(), "CAP_CHOWN".to_string()][..])
        );
        assert_eq!(a.seccomp.as_ref().unwrap().set, vec!["reboot"]);
        assert_eq!(a.annotations, vec![("a.b/c".to_string(), "d".to_string())]);
        assert_eq!(a.labels, vec![("tier".to_string(), "web".to_string())]);
        assert_eq!(a.mounts[0].path, "/data");
        assert!(parse(&words("i --mount target=/x"))
            .unwrap_err()
            .contains("--mount"));
        assert!(parse(&words("i --seccomp reboot"))
            .unwrap_err()
            .contains("mode"));
    }

    #[test]
    fn cpu_in_millicores() {
        assert_eq!(
            parse(&words("i --cpu=500m")).unwrap()[0].cpu_millis,
            Some(500)
        );
        assert_eq!(
            parse(&words("i --cpu 2")).unwrap()[0].cpu_millis,
            Some(2000)
        );
    }

    #[test]
    fn bad_input_names_the_flag() {
        assert!(parse(&words("i --bogus 1"))
            .unwrap_err()
            .contains("--bogus"));
        assert!(parse(&words("i --memory"))
            .unwrap_err()
            .contains("--memory"));
        assert!(parse(&words("i --memory=lots"))
            .unwrap_err()
            .contains("--memory"));
        assert!(parse(&words("i --oom-score-adj=5000"))
            .unwrap_err()
            .contains("-1000"));
        assert!(parse(&words("i stray")).unwrap_err().contains("stray"));
        assert!(parse(&[]).is_err());
    }
}
