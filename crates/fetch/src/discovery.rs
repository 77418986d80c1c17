//! appc meta discovery (discovery.md of the appc spec): `https://{name}?ac-discovery=1`,
//! then each parent path of the name, until a page's `ac-discovery` templates render an
//! image and signature URL for the name and its labels.

use std::collections::BTreeMap;

use crate::credentials::Credentials;
use crate::error::{FetchError, Result};
use crate::http::{self, Http};

/// Where discovery says an image lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub aci: String,
    pub signature: String,
    /// `ac-discovery-pubkeys` URLs that apply to the name.
    pub pubkeys: Vec<String>,
}

/// `(name, content)` of every `<meta>` tag of a page.
pub fn meta_tags(html: &str) -> Vec<(String, String)> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<meta") {
        let start = at + i + 5;
        let end = match lower[start..].find('>') {
            Some(e) => start + e,
            None => break,
        };
        let attrs = parse_attrs(&html[start..end]);
        if let (Some(n), Some(c)) = (attrs.get("name"), attrs.get("content")) {
            out.push((n.clone(), c.clone()));
        }
        at = end;
    }
    out
}

fn parse_attrs(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[ks..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            if !key.is_empty() {
                out.insert(key, String::new());
            }
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
            let q = b[i];
            i += 1;
            let vs = i;
            while i < b.len() && b[i] != q {
                i += 1;
            }
            let v = &s[vs..i];
            i += 1;
            v
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            &s[vs..i]
        };
        out.insert(key, unescape(value));
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// Renders a template; `None` if a placeholder has no value.
pub fn render(template: &str, values: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let key = &rest[open + 1..close];
        out.push_str(values.get(key)?);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The labels discovery fills templates with: the user's, plus this host's os and arch
/// in appc's names (`amd64`, `aarch64`, `i386`, `armv7l`: what ACIs are labelled with,
/// not OCI's `arm64` or `386`), and version `latest` if none is given (as rkt does).
pub fn discovery_labels(given: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let (os, arch) = appc_host();
    let mut l = given.clone();
    l.entry("os".into()).or_insert_with(|| os.into());
    l.entry("arch".into()).or_insert_with(|| arch.into());
    l.entry("version".into()).or_insert_with(|| "latest".into());
    l
}

/// This host's os and arch as appc names them; OCI's names where appc has none.
fn appc_host() -> (&'static str, &'static str) {
    schema::os_arch::host().unwrap_or_else(store::import::oci::host_platform)
}

/// `name`, then each parent path: `a/b/c`, `a/b`, `a`.
fn paths(name: &str) -> Vec<&str> {
    let mut v = vec![name];
    let mut cur = name;
    while let Some((parent, _)) = cur.rsplit_once('/') {
        v.push(parent);
        cur = parent;
    }
    v
}

/// Reads the discovery page for `path`: HTTPS, or plain HTTP when allowed and HTTPS does
/// not answer. `Ok(None)` for a 4xx (the spec says: try the parent).
fn page(http: &Http, creds: &Credentials, path: &str) -> Result<Option<(String, String)>> {
    let https = format!("https://{path}?ac-discovery=1");
    let host = path.split('/').next().unwrap_or(path);
    let mut headers = Vec::new();
    if let Some(c) = creds.for_host(host) {
        headers.push(("Authorization", c.header()));
    }
    let (url, resp) = match http.get(&https, &headers) {
        Ok(r) => (https, r),
        Err(e) if http.settings().allow_http => {
            let plain = format!("http://{path}?ac-discovery=1");
            match http.get(&plain, &[]) {
                Ok(r) => (plain, r),
                Err(_) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let status = resp.status().as_u16();
    if (400..500).contains(&status) {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(http::status_error(&url, resp));
    }
    let body = http::read_limited(resp, &url, http::SMALL_LIMIT)?;
    Ok(Some((url, String::from_utf8_lossy(&body).into_owned())))
}

/// Finds the image and signature URLs for `name` with `labels` (see discovery_labels).
pub fn discover(
    http: &Http,
    creds: &Credentials,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Discovered> {
    let mut values = labels.clone();
    values.insert("name".into(), name.into());
    let mut tried = Vec::new();
    for path in paths(name) {
        let Some((url, html)) = page(http, creds, path)? else {
            tried.push(format!("{path}: 4xx"));
            continue;
        };
        let tags = meta_tags(&html);
        let templates: Vec<&String> = tags
            .iter()
            .filter(|(n, c)| n == "ac-discovery" && applies(c, name))
            .filter_map(|(_, c)| c.split_whitespace().nth(1).map(|_| c))
            .collect();
        let pubkeys = pubkeys_in(&tags, name);
        let mut found = None;
        for t in &templates {
            let tmpl = t.split_whitespace().nth(1).expect("checked");
            let mut v = values.clone();
            v.insert("ext".into(), "aci".into());
            let aci = render(tmpl, &v);
            v.insert("ext".into(), "aci.asc".into());
            let sig = render(tmpl, &v);
            if let (Some(aci), Some(signature)) = (aci, sig) {
                // HTTPS templates first; plain HTTP ones only as a fallback.
                let better = found.as_ref().is_none_or(|(a, _): &(String, String)| {
                    !a.starts_with("https://") && aci.starts_with("https://")
                });
                if better {
                    found = Some((aci, signature));
                }
            }
        }
        if let Some((aci, signature)) = found {
            return Ok(Discovered {
                aci,
                signature,
                pubkeys,
            });
        }
        let any = tags.iter().any(|(n, _)| n == "ac-discovery");
        tried.push(if any {
            format!("{url}: no ac-discovery template renders for this name and these labels")
        } else {
            format!("{url}: no ac-discovery meta tag")
        });
    }
    let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Err(FetchError::refused(
        name,
        format!(
            "appc discovery found no image for {name} ({}); tried {}",
            shown.join(", "),
            tried.join("; ")
        ),
    ))
}

/// Whether a tag's prefix-match (its first word) applies to `name`.
fn applies(content: &str, name: &str) -> bool {
    content
        .split_whitespace()
        .next()
        .is_some_and(|prefix| name.starts_with(prefix))
}

fn pubkeys_in(tags: &[(String, String)], name: &str) -> Vec<String> {
    tags.iter()
        .filter(|(n, c)| n == "ac-discovery-pubkeys" && applies(c, name))
        .filter_map(|(_, c)| c.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

/// The `ac-discovery-pubkeys` URLs for a name prefix (for `vessel trust --prefix`).
pub fn discover_pubkeys(http: &Http, creds: &Credentials, prefix: &str) -> Result<Vec<String>> {
    let mut tried = Vec::new();
    for path in paths(prefix) {
        let Some((url, html)) = page(http, creds, path)? else {
            tried.push(format!("{path}: 4xx"));
            continue;
        };
        let keys = pubkeys_in(&meta_tags(&html), prefix);
        if !keys.is_empty() {
            return Ok(keys);
        }
        tried.push(format!(
            "{url}: no ac-discovery-pubkeys meta tag for {prefix}"
        ));
    }
    Err(FetchError::Invalid(format!(
        "appc discovery found no public keys for {prefix}; tried {}",
        tried.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_asks_with_appcs_arch_names() {
        let l = discovery_labels(&BTreeMap::new());
        let (os, arch) = schema::os_arch::host().expect("a host appc knows");
        assert_eq!((l["os"].as_str(), l["arch"].as_str()), (os, arch));
        // appc's own check accepts what discovery asks for (OCI's "arm64" it would not).
        schema::os_arch::validate(Some(&l["os"]), Some(&l["arch"])).unwrap();
        #[cfg(target_arch = "aarch64")]
        assert_eq!(l["arch"], "aarch64");
        #[cfg(target_arch = "x86")]
        assert_eq!(l["arch"], "i386");
    }

    #[test]
    fn metas_and_templates() {
        let html = r#"<html><head>
<meta name="ac-discovery" content="example.com https://s.example.com/{os}/{arch}/{name}-{version}.{ext}">
<META NAME='ac-discovery-pubkeys' CONTENT='example.com https://example.com/pubkeys.gpg' />
</head></html>"#;
        let tags = meta_tags(html);
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[1].0, "ac-discovery-pubkeys");
        let mut v = discovery_labels(&BTreeMap::from([("version".into(), "1.0".into())]));
        v.insert("name".into(), "example.com/app".into());
        v.insert("ext".into(), "aci".into());
        let tmpl = tags[0].1.split_whitespace().nth(1).unwrap();
        assert_eq!(
            render(tmpl, &v).unwrap(),
            "https://s.example.com/linux/amd64/example.com/app-1.0.aci"
        );
        assert_eq!(render("https://x/{name}-{channel}.{ext}", &v), None);
        assert_eq!(paths("a/b/c"), vec!["a/b/c", "a/b", "a"]);
        assert_eq!(
            pubkeys_in(&tags, "example.com/app"),
            vec!["https://example.com/pubkeys.gpg"]
        );
        assert!(pubkeys_in(&tags, "other.org/app").is_empty());
    }
}
