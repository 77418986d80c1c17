//! A bearer token service on 127.0.0.1 for a docker-registry run with `auth: token:`: it
//! checks the Basic credentials a client sends, grants the scopes asked for, and answers
//! `{"token": JWT}` signed by a key the registry trusts. Tests can make it refuse
//! everyone (401) or hand out tokens that have already expired, and read what it was
//! asked.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::encoding::{base64_decode, percent_decode};
use super::httpd::{read_head, Acceptor};
use super::jwt::SigningKey;

/// What the registry is called in tokens (`aud`) and in its challenge (`service`).
pub const SERVICE: &str = "vessel-test-registry";
/// Who issues the tokens (`iss`); the registry trusts only this issuer.
pub const ISSUER: &str = "vessel-test-token-service";

/// One token request as the service saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The user of the Basic credentials sent, if any.
    pub user: Option<String>,
    pub service: Option<String>,
    pub scopes: Vec<String>,
    /// 200 with a token, or 401.
    pub status: u16,
    /// The token given had already expired.
    pub expired: bool,
}

#[derive(Default)]
struct Policy {
    refuse_everyone: bool,
    expired_tokens_left: usize,
    seen: Vec<TokenRequest>,
}

pub struct TokenService {
    acceptor: Acceptor,
    key: Arc<SigningKey>,
    policy: Arc<Mutex<Policy>>,
}

impl TokenService {
    /// A service that grants tokens to `user` with `password` only.
    pub fn start(user: &str, password: &str) -> TokenService {
        let key = Arc::new(SigningKey::new());
        let policy: Arc<Mutex<Policy>> = Arc::default();
        let account = (user.to_string(), password.to_string());
        let (k, p) = (key.clone(), policy.clone());
        let acceptor = Acceptor::start(move |conn, _stop: &AtomicBool| {
            answer(conn, &k, &p, &account);
        });
        TokenService {
            acceptor,
            key,
            policy,
        }
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.acceptor.port)
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// From now on every request gets 401, whatever its credentials.
    pub fn refuse_everyone(&self) {
        self.policy.lock().unwrap().refuse_everyone = true;
    }

    /// The next `n` tokens granted have expired before they are issued.
    pub fn issue_expired_tokens(&self, n: usize) {
        self.policy.lock().unwrap().expired_tokens_left = n;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.policy.lock().unwrap().seen.clone()
    }

    /// Forgets the requests seen so far (those of the test's own setup, say).
    pub fn forget_requests(&self) {
        self.policy.lock().unwrap().seen.clear();
    }
}

fn answer(
    mut conn: TcpStream,
    key: &SigningKey,
    policy: &Mutex<Policy>,
    account: &(String, String),
) {
    let Some(seen) = read_head(&mut conn) else {
        return;
    };
    let query = seen.path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut scopes = Vec::new();
    let mut service = None;
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match k {
            // One scope parameter may hold several, space-separated.
            "scope" => scopes.extend(percent_decode(v).split(' ').map(str::to_string)),
            "service" => service = Some(percent_decode(v)),
            _ => {}
        }
    }
    let sent = seen.header("authorization").and_then(basic_credentials);
    let user = sent.as_ref().map(|(u, _)| u.clone());
    let mut p = policy.lock().unwrap();
    let authorized = !p.refuse_everyone && sent.as_ref() == Some(account);
    let expired = authorized && p.expired_tokens_left > 0;
    if expired {
        p.expired_tokens_left -= 1;
    }
    p.seen.push(TokenRequest {
        user: user.clone(),
        service,
        scopes: scopes.clone(),
        status: if authorized { 200 } else { 401 },
        expired,
    });
    drop(p);
    if !authorized {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        respond(
            &mut conn,
            "401 Unauthorized",
            &["WWW-Authenticate: Basic realm=\"vessel-test-token-service\""],
            body,
        );
        return;
    }
    let token = key.sign(&claims(user.as_deref().unwrap_or(""), &scopes, expired));
    let body = json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    respond(&mut conn, "200 OK", &[], &body);
}

/// The claim set of the spec: who, for whom, when, and the access granted (all that was
/// asked for: this service's one user may do anything).
fn claims(subject: &str, scopes: &[String], expired: bool) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // docker-registry allows 60 s of clock skew: an expired token is well past that.
    let (issued, expires) = if expired {
        (now - 900, now - 600)
    } else {
        (now, now + 300)
    };
    let access: Vec<Value> = scopes.iter().filter_map(|s| access_entry(s)).collect();
    json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": expires,
        "nbf": issued,
        "iat": issued,
        "jti": format!("vessel-test-{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()),
        "access": access,
    })
}

/// `repository:NAME:pull,push` → an access entry (NAME may hold `:`, a registry's port).
fn access_entry(scope: &str) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(json!({
        "type": kind,
        "name": name,
        "actions": actions.split(',').collect::<Vec<_>>(),
    }))
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[&str], body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
}
