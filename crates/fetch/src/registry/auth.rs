//! Registry authentication: the `WWW-Authenticate` challenge of a 401, and the bearer
//! token dance of the distribution spec (token endpoint, `service`, `scope`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::credentials::Credential;
use crate::error::{FetchError, Result};
use crate::http::{self, Http};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
        /// Why the last token was refused (`invalid_token`, `insufficient_scope`).
        error: Option<String>,
    },
}

/// Parses `Bearer realm="https://auth",service="reg",scope="repository:x:pull"` or
/// `Basic realm="..."`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
            error: params.get("error").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` with quoted values that may hold commas.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Answers a challenge: the Authorization header to send from now on.
pub fn answer(
    http: &Http,
    challenge: &Challenge,
    credential: Option<&Credential>,
    repository: &str,
    registry: &str,
) -> Result<String> {
    match challenge {
        Challenge::Basic => match credential {
            Some(c) => Ok(c.header()),
            None => Err(no_credentials(registry)),
        },
        Challenge::Bearer {
            realm,
            service,
            scope,
            ..
        } => {
            let scope = scope
                .clone()
                .unwrap_or_else(|| format!("repository:{repository}:pull"));
            let mut url = format!("{realm}?scope={}", encode(&scope));
            if let Some(s) = service {
                url.push_str(&format!("&service={}", encode(s)));
            }
            let mut headers = Vec::new();
            if let Some(c) = credential {
                headers.push(("Authorization", c.header()));
            }
            let resp = http.get(&url, &headers)?;
            if resp.status().as_u16() == 401 || resp.status().as_u16() == 403 {
                return Err(match credential {
                    None => no_credentials(registry),
                    Some(_) => FetchError::http(
                        &url,
                        format!(
                            "the token service refused the credentials configured for {registry} ({}); check them in auth.d or Docker's config.json",
                            resp.status()
                        ),
                    ),
                });
            }
            if !resp.status().is_success() {
                return Err(http::status_error(&url, resp));
            }
            let body = http::read_limited(resp, &url, 1 << 20)?;
            let token = parse_token_answer(&body).map_err(|e| FetchError::http(&url, e))?;
            Ok(format!("Bearer {token}"))
        }
    }
}

/// The token of a token service's answer (`token`, or OAuth's `access_token`).
pub fn parse_token_answer(body: &[u8]) -> Result<String, String> {
    let t: TokenAnswer =
        serde_json::from_slice(body).map_err(|e| format!("the token answer is not JSON: {e}"))?;
    t.token
        .or(t.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the token answer holds no token".to_string())
}

pub fn no_credentials(registry: &str) -> FetchError {
    FetchError::Invalid(format!(
        "registry {registry} wants credentials (401 Unauthorized) and none are configured for it: add an auth.d file (rktKind \"dockerAuth\", registries [\"{registry}\"]) to the local config, or log in with a tool that writes a Docker config.json"
    ))
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
                error: None,
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        let refused = parse_challenge(
            r#"Bearer realm="http://t/token",service="r",scope="repository:a:pull",error="invalid_token""#,
        );
        assert!(
            matches!(refused, Some(Challenge::Bearer { error: Some(e), .. }) if e == "invalid_token")
        );
    }
}
