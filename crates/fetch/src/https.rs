//! ACIs from web servers: `https://HOST/PATH.aci` with its signature at `PATH.aci.asc`,
//! streamed straight into the store (no temporary copy) while the signature is checked.
//! The server's ETag and Cache-Control max-age are remembered in the store: under
//! `--pull-policy=update` a fresh copy is used without asking, a stale one is asked for
//! with If-None-Match.

use store::images::ImageRecord;
use store::import::remote::RemoteRecord;

use crate::aci::{import_checked, Expected, Signature};
use crate::error::{FetchError, Result};
use crate::http;
use crate::{Fetcher, PullPolicy};

/// Fetches the ACI at `url` (signature at `sig_url`), as the pull policy says.
pub fn fetch_aci(
    f: &Fetcher<'_>,
    url: &str,
    sig_url: &str,
    shown: &str,
    expected: Option<&Expected>,
) -> Result<ImageRecord> {
    let known = f.store.remote_record(url);
    if let Some(rec) = &known {
        let use_stored = match f.opts.pull_policy {
            PullPolicy::Never | PullPolicy::New => true,
            PullPolicy::Update => rec.is_fresh(),
        };
        if use_stored {
            return Ok(f.store.image_record(&rec.image)?);
        }
    } else if f.opts.pull_policy == PullPolicy::Never {
        return Err(FetchError::refused(
            shown,
            "it is not in the store (--pull-policy=never)",
        ));
    }
    // The signature first (it is small): the image's answer then streams straight into
    // the store, and a server that serves one connection at a time still works.
    let signature = if f.opts.insecure_skip_verify {
        None
    } else {
        Some(fetch_signature(f, sig_url, shown)?)
    };
    let mut headers = f.auth_headers(url);
    if let Some(etag) = known.as_ref().and_then(|r| r.etag.clone()) {
        headers.push(("If-None-Match", etag));
    }
    let resp = f.http.get(url, &headers)?;
    let status = resp.status().as_u16();
    if status == 304 {
        let mut rec = known.expect("asked conditionally only with a record");
        rec.fresh_until = fresh_until(&http::header(&resp, "cache-control"));
        rec.fetched = chrono::Utc::now();
        f.store.set_remote_record(&rec)?;
        return Ok(f.store.image_record(&rec.image)?);
    }
    if !resp.status().is_success() {
        return Err(http::status_error(url, resp).for_image(shown));
    }
    let content_type = http::header(&resp, "content-type").unwrap_or_default();
    if content_type.to_ascii_lowercase().starts_with("text/html") {
        return Err(FetchError::refused(
            shown,
            format!("{url} answered with an HTML page ({content_type}), not an ACI"),
        ));
    }
    let etag = http::header(&resp, "etag");
    let cache = http::header(&resp, "cache-control");
    let total = http::header(&resp, "content-length").and_then(|v| v.parse().ok());
    let label = url.rsplit('/').next().unwrap_or(url).to_string();
    let body = f
        .progress
        .track(&label, total, resp.into_body().into_reader());
    let record = import_checked(
        f,
        http::Described::new(url, body),
        shown,
        signature,
        expected,
    )?;
    f.store.set_remote_record(&RemoteRecord {
        url: url.to_string(),
        image: record.id.clone(),
        etag,
        fetched: chrono::Utc::now(),
        fresh_until: fresh_until(&cache),
    })?;
    Ok(record)
}

fn fetch_signature(f: &Fetcher<'_>, sig_url: &str, shown: &str) -> Result<Signature> {
    if let Some(sig) = &f.opts.signature {
        return crate::local::read_signature(sig, shown);
    }
    let resp = f.http.get(sig_url, &f.auth_headers(sig_url))?;
    if resp.status().as_u16() == 404 {
        return Err(FetchError::refused(
            shown,
            format!("no signature at {sig_url} (404); pass --insecure-options=image to fetch it unverified"),
        ));
    }
    if !resp.status().is_success() {
        return Err(http::status_error(sig_url, resp).for_image(shown));
    }
    let content_type = http::header(&resp, "content-type").unwrap_or_default();
    if content_type.to_ascii_lowercase().starts_with("text/html") {
        return Err(FetchError::refused(
            shown,
            format!("{sig_url} answered with an HTML page ({content_type}), not a signature"),
        ));
    }
    let data = http::read_limited(resp, sig_url, 1 << 20)?;
    Ok(Signature {
        data,
        from: sig_url.to_string(),
    })
}

/// Until when a copy may be used without asking, from Cache-Control.
pub fn fresh_until(cache_control: &Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    let cc = cache_control.as_ref()?.to_ascii_lowercase();
    if cc.contains("no-cache") || cc.contains("no-store") {
        return None;
    }
    let secs: i64 = cc
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse().ok())?;
    Some(chrono::Utc::now() + chrono::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert!(fresh_until(&Some("public, max-age=60".into())).is_some());
        assert!(fresh_until(&Some("no-cache, max-age=60".into())).is_none());
        assert!(fresh_until(&None).is_none());
    }
}
