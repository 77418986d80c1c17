//! The app a pod runs, as its manifest records it: the image's app with the command
//! line's overrides applied (exec and arguments, user, group, supplementary groups,
//! working directory, environment, resource and security isolators, user annotations
//! and labels), as rkt writes `apps[].app` of the pod manifest.

use schema::isolator::{CapabilitySet, SeccompSet, TypedIsolator};
use schema::{App, Isolator, Quantity};

use crate::error::{PodError, Result};
use crate::request::AppRequest;

fn set(isolators: &mut schema::Isolators, i: Isolator, what: &str) -> Result<()> {
    isolators
        .set(i)
        .map_err(|e| PodError::Invalid(format!("{what}: {e}")))
}

/// Capabilities as appc names them (`CAP_CHOWN`): the flags also take `chown`.
fn cap_names(caps: &[String]) -> Vec<String> {
    caps.iter()
        .map(|c| {
            let up = c.to_ascii_uppercase();
            if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            }
        })
        .collect()
}

/// The effective app, or None when the image has none and nothing replaces it. `argv`
/// is the command the app runs (the image's, `--exec` and `-- ARGS` applied).
pub fn effective_app(
    image_app: Option<&App>,
    req: &AppRequest,
    argv: &[String],
) -> Result<Option<App>> {
    let Some(mut app) = req.app.clone().or_else(|| image_app.cloned()) else {
        return Ok(None);
    };
    if !argv.is_empty() {
        app.exec = schema::Exec::new(argv.to_vec())
            .map_err(|e| PodError::Invalid(format!("exec: {e}")))?;
    }
    if let Some(u) = &req.user {
        app.user = u.clone();
    }
    if let Some(g) = &req.group {
        app.group = g.clone();
    }
    app.supplementary_gids.extend(&req.supplementary_gids);
    if let Some(w) = &req.working_dir {
        app.working_directory = Some(w.clone());
    }
    for (k, v) in &req.environment {
        app.environment
            .set(k, v)
            .map_err(|e| PodError::Invalid(format!("--environment {k}: {e}")))?;
    }
    let iso = &mut app.isolators;
    if let Some(m) = req.memory {
        set(
            iso,
            Isolator::memory_limit(Quantity::from_units(m)),
            "--memory",
        )?;
    }
    if let Some(c) = req.cpu_millis {
        set(iso, Isolator::cpu_limit(Quantity::from_millis(c)), "--cpu")?;
    }
    if let Some(s) = req.cpu_shares {
        let shares = u32::try_from(s).unwrap_or(u32::MAX);
        set(iso, TypedIsolator::CpuShares(shares).into(), "--cpu-shares")?;
    }
    if let Some(o) = req.oom_score_adj {
        set(iso, TypedIsolator::OomScoreAdj(o).into(), "--oom-score-adj")?;
    }
    if let Some(caps) = &req.caps_retain {
        iso.remove(schema::isolator::names::CAPABILITIES_REMOVE_SET);
        let t = TypedIsolator::CapabilitiesRetain(CapabilitySet {
            set: cap_names(caps),
        });
        set(iso, t.into(), "--caps-retain")?;
    }
    if let Some(caps) = &req.caps_remove {
        iso.remove(schema::isolator::names::CAPABILITIES_RETAIN_SET);
        let t = TypedIsolator::CapabilitiesRemove(CapabilitySet {
            set: cap_names(caps),
        });
        set(iso, t.into(), "--caps-remove")?;
    }
    if let Some(s) = &req.seccomp {
        iso.remove(schema::isolator::names::SECCOMP_RETAIN_SET);
        iso.remove(schema::isolator::names::SECCOMP_REMOVE_SET);
        let set_ = SeccompSet {
            set: s.set.clone(),
            errno: s.errno.clone(),
        };
        let t = match s.mode {
            exec::seccomp::AppcSeccompMode::RetainSet => TypedIsolator::SeccompRetain(set_),
            exec::seccomp::AppcSeccompMode::RemoveSet => TypedIsolator::SeccompRemove(set_),
        };
        set(iso, t.into(), "--seccomp")?;
    }
    for (k, v) in &req.user_annotations {
        app.user_annotations.insert(k.clone(), v.clone());
    }
    for (k, v) in &req.labels {
        app.user_labels.insert(k.clone(), v.clone());
    }
    Ok(Some(app))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_app() -> App {
        let m: schema::ImageManifest = serde_json::from_str(
            r#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/app","app":{"exec":["/bin/app"],"user":"0","group":"0","environment":[{"name":"A","value":"image"}]}}"#,
        )
        .unwrap();
        m.app.unwrap()
    }

    #[test]
    fn overrides_reach_the_manifest() {
        let req = AppRequest {
            user: Some("1000".into()),
            working_dir: Some("/srv".into()),
            environment: vec![("A".into(), "flag".into()), ("B".into(), "2".into())],
            memory: Some(128 << 20),
            caps_retain: Some(vec!["chown".into()]),
            user_annotations: vec![("k".into(), "v".into())],
            labels: vec![("tier".into(), "web".into())],
            ..Default::default()
        };
        let argv = vec!["/bin/sh".to_string(), "-c".into(), "true".into()];
        let app = effective_app(Some(&image_app()), &req, &argv)
            .unwrap()
            .unwrap();
        assert_eq!(app.exec.argv(), &argv[..]);
        assert_eq!(app.user, "1000");
        assert_eq!(app.working_directory.as_deref(), Some("/srv"));
        assert_eq!(app.environment.get("A"), Some("flag"));
        assert_eq!(app.environment.get("B"), Some("2"));
        assert!(app.isolators.get("resource/memory").is_some());
        assert!(app
            .isolators
            .get("os/linux/capabilities-retain-set")
            .is_some());
        assert_eq!(app.user_annotations["k"], "v");
        assert_eq!(app.user_labels["tier"], "web");
    }

    #[test]
    fn no_app_stays_none() {
        assert!(effective_app(None, &AppRequest::default(), &[])
            .unwrap()
            .is_none());
    }
}
