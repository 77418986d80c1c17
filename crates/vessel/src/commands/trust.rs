//! `vessel trust`: adds OpenPGP keys to the trust store (for a name prefix or every image)
//! after showing their fingerprints, or lists the keys trusted and where each came from.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context as _, Result};
use fetch::http::{self, Http};
use fetch::trust::keys::{fingerprint_hex, parse_keys, user_ids};
use fetch::trust::keystore::validate_prefix;
use fetch::trust::{Keystore, Origin, Scope};
use serde::Serialize;

use crate::cli::{Format, TrustArgs};
use crate::context::Context;
use crate::output::{self, Table};

pub fn run(ctx: &Context, args: TrustArgs) -> Result<i32> {
    let keystore = ctx
        .fetch_options(crate::cli::PullPolicy::New, false)
        .keystore();
    if args.list {
        return list(&keystore, args.format.format);
    }
    let scope = match (&args.prefix, args.root) {
        (Some(p), false) => Scope::Prefix(validate_prefix(p)?),
        (None, true) => Scope::Root,
        _ => bail!("say which images the keys are for: --prefix=PREFIX, or --root for every image"),
    };
    let opts = ctx.fetch_options(crate::cli::PullPolicy::New, false);
    let mut settings = fetch::http_settings(&opts);
    settings.allow_http = settings.allow_http || args.insecure_allow_http;
    let client = Http::new(settings);
    let credentials = fetch::credentials::Credentials::load(&opts.config_dirs())?;
    let mut sources: Vec<(String, String)> = args
        .keys
        .iter()
        .map(|k| {
            let how = if k.starts_with("https://") {
                "https"
            } else if k.starts_with("http://") {
                "http"
            } else {
                "file"
            };
            (k.clone(), how.to_string())
        })
        .collect();
    if sources.is_empty() {
        let Scope::Prefix(p) = &scope else {
            bail!("name the key files or URLs to trust for every image");
        };
        // As rkt: with only a prefix, the keys its appc discovery names.
        for url in fetch::discovery::discover_pubkeys(&client, &credentials, p)? {
            sources.push((url, "discovery".into()));
        }
    }
    let mut added = 0;
    for (source, how) in &sources {
        let data = read_source(&client, source, args.insecure_allow_http)?;
        let keys = parse_keys(&data).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        for key in keys {
            let fp = fingerprint_hex(&key);
            if !args.skip_fingerprint_review && !confirm(&key, &fp, &scope, source)? {
                eprintln!("vessel: not trusting key {fp}");
                continue;
            }
            let origin = Origin {
                source: source.clone(),
                how: how.clone(),
                added: chrono::Utc::now(),
            };
            let path = keystore.add(&key, &scope, &origin)?;
            eprintln!("vessel: trusting key {fp} for {scope}");
            println!("{}", path.display());
            added += 1;
        }
    }
    Ok(if added == 0 && !sources.is_empty() {
        1
    } else {
        0
    })
}

/// A key file, or a key fetched over HTTPS (plain HTTP only with --insecure-allow-http).
fn read_source(client: &Http, source: &str, allow_http: bool) -> Result<Vec<u8>> {
    if source.starts_with("https://") || source.starts_with("http://") {
        if source.starts_with("http://") && !allow_http {
            bail!("{source}: fetching a key over plain HTTP needs --insecure-allow-http");
        }
        let resp = client.get(source, &[])?;
        if !resp.status().is_success() {
            return Err(http::status_error(source, resp).into());
        }
        return Ok(http::read_limited(resp, source, 1 << 20)?);
    }
    let path = source.strip_prefix("file://").unwrap_or(source);
    std::fs::read(path).with_context(|| format!("reading the key file {path}"))
}

/// Shows the key and asks; refuses to guess when nobody can answer.
fn confirm(
    key: &fetch::trust::SignedPublicKey,
    fp: &str,
    scope: &Scope,
    source: &str,
) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "key {fp} from {source}: cannot ask for confirmation because standard input is not a terminal; check the fingerprint and pass --skip-fingerprint-review"
        );
    }
    let mut err = std::io::stderr();
    writeln!(
        err,
        "Key from {} for {scope}:",
        schema::text::escape_controls(source)
    )?;
    writeln!(err, "  fingerprint: {}", spaced(fp))?;
    for uid in user_ids(key) {
        writeln!(
            err,
            "  user id:     {}",
            schema::text::escape_controls(&uid)
        )?;
    }
    write!(err, "Are you sure you want to trust this key (yes/no)? ")?;
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `ABCD 1234 ...`: the way gpg shows fingerprints, easier to compare by eye.
fn spaced(fp: &str) -> String {
    fp.to_ascii_uppercase()
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Serialize)]
struct Listed {
    fingerprint: String,
    scope: String,
    prefix: Option<String>,
    path: String,
    config: &'static str,
    source: Option<String>,
    how: Option<String>,
    added: Option<chrono::DateTime<chrono::Utc>>,
    user_ids: Vec<String>,
}

fn list(keystore: &Keystore, format: Format) -> Result<i32> {
    let keys = keystore.list()?;
    let listed: Vec<Listed> = keys
        .iter()
        .map(|k| Listed {
            fingerprint: k.fingerprint.clone(),
            scope: match &k.scope {
                Scope::Root => "root".into(),
                Scope::Prefix(_) => "prefix".into(),
            },
            prefix: match &k.scope {
                Scope::Root => None,
                Scope::Prefix(p) => Some(p.clone()),
            },
            path: k.path.display().to_string(),
            config: k.config,
            source: k.origin.as_ref().map(|o| o.source.clone()),
            how: k.origin.as_ref().map(|o| o.how.clone()),
            added: k.origin.as_ref().map(|o| o.added),
            user_ids: user_ids(&k.key),
        })
        .collect();
    if format != Format::Table {
        print!("{}", output::json(&listed, format));
        return Ok(0);
    }
    let mut t = Table::new(&["FINGERPRINT", "FOR", "FROM", "USER ID"]);
    for l in &listed {
        let for_ = l.prefix.clone().unwrap_or_else(|| "(root)".into());
        let from = match (&l.how, &l.source) {
            (Some(h), Some(s)) => format!("{h} {s}"),
            _ => format!("{} config", l.config),
        };
        t.row(vec![
            l.fingerprint.clone(),
            for_,
            from,
            l.user_ids.first().cloned().unwrap_or_default(),
        ]);
    }
    print!("{}", t.render(true));
    Ok(0)
}
