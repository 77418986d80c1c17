//! The endpoints (ace.md's tables, under `/acMetadata/v1`): a request, the pod it came
//! from and the service key in; the response out. No I/O, so every status, content type
//! and body is unit-tested here.
//!
//! | path | method | answer |
//! |---|---|---|
//! | `pod/annotations` | GET | `application/json`: the pod manifest's annotations (`null` if none) |
//! | `pod/annotations/NAME` | GET | `text/plain`: one annotation's value (rkt's extension) |
//! | `pod/manifest` | GET | `application/json`: the pod manifest |
//! | `pod/uuid` | GET | `text/plain`: the UUID, canonical, no newline |
//! | `apps/APP/annotations` | GET | `application/json`: image annotations merged with the pod's for APP |
//! | `apps/APP/annotations/NAME` | GET | `text/plain`: one of those (rkt's extension) |
//! | `apps/APP/image/manifest` | GET | `application/json`: APP's image manifest |
//! | `apps/APP/image/id` | GET | `text/plain`: APP's image ID |
//! | `pod/hmac/sign` | POST form `content` | `text/plain`: base64 HMAC-SHA512 by the requesting pod |
//! | `pod/hmac/verify` | POST form `content`, `uuid`, `signature` | 200 if pod `uuid` signed `content`, else 403 |
//!
//! A request from an address no registered pod has: 403. Unknown path: 404. Wrong method:
//! 405 with `Allow`. A form that is not `application/x-www-form-urlencoded`: 415; a missing
//! or repeated field, a malformed UUID or a signature that is not base64: 400. A body
//! over [`MAX_BODY`]: 413 (the server checks). Error bodies are plain text saying why.

use std::net::IpAddr;

use crate::keys::{ServiceKey, VerifyError};
use crate::registry::PodView;

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=us-ascii";
pub const PREFIX: &str = "/acMetadata/v1/";
/// Cap on a request body (a form to sign).
pub const MAX_BODY: usize = 1 << 20;

pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// For 405: the methods the path takes.
    pub allow: Option<&'static str>,
}

impl Response {
    fn ok(content_type: &'static str, body: impl Into<String>) -> Response {
        Response {
            status: 200,
            content_type,
            body: body.into(),
            allow: None,
        }
    }

    pub fn error(status: u16, why: impl AsRef<str>) -> Response {
        Response {
            status,
            content_type: TEXT,
            // us-ascii, as the content type says, whatever a hostile path held.
            body: why.as_ref().escape_default().to_string(),
            allow: None,
        }
    }
}

enum Endpoint<'a> {
    PodAnnotations,
    PodAnnotation(&'a str),
    PodManifest,
    PodUuid,
    AppAnnotations(&'a str),
    AppAnnotation(&'a str, &'a str),
    AppImageManifest(&'a str),
    AppImageId(&'a str),
    Sign,
    Verify,
}

impl Endpoint<'_> {
    fn methods(&self) -> &'static str {
        match self {
            Endpoint::Sign | Endpoint::Verify => "POST",
            _ => "GET, HEAD",
        }
    }
}

fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    let rest = path.strip_prefix(PREFIX)?;
    Some(match rest {
        "pod/annotations" => Endpoint::PodAnnotations,
        "pod/manifest" => Endpoint::PodManifest,
        "pod/uuid" => Endpoint::PodUuid,
        "pod/hmac/sign" => Endpoint::Sign,
        "pod/hmac/verify" => Endpoint::Verify,
        _ => {
            if let Some(name) = rest.strip_prefix("pod/annotations/") {
                return (!name.is_empty()).then_some(Endpoint::PodAnnotation(name));
            }
            let app_rest = rest.strip_prefix("apps/")?;
            let (app, what) = app_rest.split_once('/')?;
            if app.is_empty() {
                return None;
            }
            match what {
                "annotations" => Endpoint::AppAnnotations(app),
                "image/manifest" => Endpoint::AppImageManifest(app),
                "image/id" => Endpoint::AppImageId(app),
                _ => {
                    let name = what.strip_prefix("annotations/")?;
                    if name.is_empty() {
                        return None;
                    }
                    Endpoint::AppAnnotation(app, name)
                }
            }
        }
    })
}

/// The fields of a url-encoded form; a field given twice is refused.
fn form(req: &Request) -> Result<Vec<(String, String)>, Response> {
    let ct = req.content_type.unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Response::error(
            415,
            format!(
                "the body must be a form (application/x-www-form-urlencoded), not {:?}",
                ct
            ),
        ));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(req.body) {
        if out.iter().any(|(o, _)| *o == k) {
            return Err(Response::error(
                400,
                format!("form field {k:?} given twice"),
            ));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Result<&'a str, Response> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| Response::error(400, format!("form field {name:?} missing")))
}

fn find<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Answers one request from `peer`, which is `pod` (if some registered pod has that address).
pub fn route(pod: Option<&PodView>, peer: IpAddr, key: &ServiceKey, req: &Request) -> Response {
    let Some(ep) = endpoint(req.path) else {
        return Response::error(404, format!("no such endpoint: {}", req.path));
    };
    let allowed = ep.methods();
    let method_ok = allowed.split(", ").any(|m| m == req.method);
    if !method_ok {
        let mut r = Response::error(405, format!("{} takes {allowed}", req.path));
        r.allow = Some(allowed);
        return r;
    }
    let Some(pod) = pod else {
        return Response::error(403, format!("no pod is registered at {peer}"));
    };
    let app = |name: &str| {
        pod.apps.get(name).ok_or_else(|| {
            Response::error(404, format!("app {name:?} is not in pod {}", pod.uuid_text))
        })
    };
    let answer = match ep {
        Endpoint::PodAnnotations => Ok(Response::ok(JSON, pod.annotations_json.clone())),
        Endpoint::PodAnnotation(name) => find(&pod.annotations, name)
            .map(|v| Response::ok(TEXT, v))
            .ok_or_else(|| Response::error(404, format!("pod annotation {name:?} not found"))),
        Endpoint::PodManifest => Ok(Response::ok(JSON, pod.manifest.clone())),
        Endpoint::PodUuid => Ok(Response::ok(TEXT, pod.uuid_text.clone())),
        Endpoint::AppAnnotations(a) => {
            app(a).map(|a| Response::ok(JSON, a.annotations_json.clone()))
        }
        Endpoint::AppAnnotation(a, name) => app(a).and_then(|a| {
            find(&a.annotations, name)
                .map(|v| Response::ok(TEXT, v))
                .ok_or_else(|| Response::error(404, format!("app annotation {name:?} not found")))
        }),
        Endpoint::AppImageManifest(a) => {
            app(a).map(|a| Response::ok(JSON, a.image_manifest.clone()))
        }
        Endpoint::AppImageId(a) => app(a).map(|a| Response::ok(TEXT, a.image_id.clone())),
        Endpoint::Sign => sign(pod, key, req),
        Endpoint::Verify => verify(key, req),
    };
    answer.unwrap_or_else(|e| e)
}

fn sign(pod: &PodView, key: &ServiceKey, req: &Request) -> Result<Response, Response> {
    let form = form(req)?;
    let content = field(&form, "content")?;
    Ok(Response::ok(TEXT, key.sign(&pod.uuid, content.as_bytes())))
}

fn verify(key: &ServiceKey, req: &Request) -> Result<Response, Response> {
    let form = form(req)?;
    let content = field(&form, "content")?;
    let uuid_text = field(&form, "uuid")?;
    let signature = field(&form, "signature")?;
    let uuid = uuid::Uuid::parse_str(uuid_text)
        .map_err(|_| Response::error(400, format!("uuid {uuid_text:?} is not a UUID")))?;
    match key.verify(&uuid, content.as_bytes(), signature) {
        Ok(()) => Ok(Response::ok(TEXT, "")),
        Err(VerifyError::NotBase64) => Err(Response::error(400, "signature is not base64")),
        // The check fails: 403, as the spec says, with the reason.
        Err(e) => Err(Response::error(403, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::view_of;

    const U: &str = "6f1d4a54-4c1b-4e44-8a8e-1f0c2b3d4e5f";

    fn pod() -> PodView {
        let reg: crate::proto::Registration = serde_json::from_value(serde_json::json!({
            "uuid": U,
            "ips": ["10.0.0.2"],
            "manifest": {"acKind":"PodManifest","acVersion":"0.8.11",
                "apps":[{"name":"web","image":{"id":"sha512-aa"}}],
                "annotations":[{"name":"ip-address","value":"10.1.2.3"}]},
            "apps": [{"name":"web","image_id":"sha512-aa",
                "image_manifest":{"acKind":"ImageManifest","name":"x.com/web",
                    "annotations":[{"name":"appc.io/executor/supports-systemd-notify","value":"true"}]}}]
        }))
        .unwrap();
        view_of(&reg).unwrap()
    }

    fn get(p: Option<&PodView>, path: &str) -> Response {
        let key = ServiceKey::from_bytes([1; 64]);
        route(
            p,
            "10.0.0.2".parse().unwrap(),
            &key,
            &Request {
                method: "GET",
                path,
                content_type: None,
                body: b"",
            },
        )
    }

    fn post(p: Option<&PodView>, path: &str, ct: &str, body: &str) -> Response {
        let key = ServiceKey::from_bytes([1; 64]);
        route(
            p,
            "10.0.0.2".parse().unwrap(),
            &key,
            &Request {
                method: "POST",
                path,
                content_type: Some(ct),
                body: body.as_bytes(),
            },
        )
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    #[test]
    fn gets_answer_with_the_spec_types() {
        let p = pod();
        let r = get(Some(&p), "/acMetadata/v1/pod/uuid");
        assert_eq!((r.status, r.content_type, r.body.as_str()), (200, TEXT, U));
        let r = get(Some(&p), "/acMetadata/v1/pod/annotations");
        assert_eq!(r.content_type, JSON);
        assert_eq!(r.body, r#"[{"name":"ip-address","value":"10.1.2.3"}]"#);
        let r = get(Some(&p), "/acMetadata/v1/pod/manifest");
        assert_eq!(r.content_type, JSON);
        assert!(r.body.contains("PodManifest"));
        let r = get(Some(&p), "/acMetadata/v1/apps/web/image/id");
        assert_eq!((r.content_type, r.body.as_str()), (TEXT, "sha512-aa"));
        let r = get(Some(&p), "/acMetadata/v1/apps/web/image/manifest");
        assert_eq!(r.content_type, JSON);
        assert!(r.body.contains("x.com/web"));
        let r = get(
            Some(&p),
            "/acMetadata/v1/apps/web/annotations/appc.io/executor/supports-systemd-notify",
        );
        assert_eq!((r.status, r.body.as_str()), (200, "true"));
        let r = get(Some(&p), "/acMetadata/v1/pod/annotations/ip-address");
        assert_eq!((r.status, r.body.as_str()), (200, "10.1.2.3"));
    }

    #[test]
    fn errors_have_their_status() {
        let p = pod();
        assert_eq!(get(None, "/acMetadata/v1/pod/uuid").status, 403);
        assert!(get(None, "/acMetadata/v1/pod/uuid")
            .body
            .contains("10.0.0.2"));
        assert_eq!(get(Some(&p), "/acMetadata/v1/pod/uuidx").status, 404);
        assert_eq!(get(Some(&p), "/acMetadata/v1/apps/db/image/id").status, 404);
        assert_eq!(get(Some(&p), "/acMetadata/v1/apps//image/id").status, 404);
        assert_eq!(
            get(Some(&p), "/acMetadata/v1/pod/annotations/none").status,
            404
        );
        assert_eq!(get(Some(&p), "/").status, 404);
        let r = get(Some(&p), "/acMetadata/v1/pod/hmac/sign");
        assert_eq!((r.status, r.allow), (405, Some("POST")));
        let r = post(Some(&p), "/acMetadata/v1/pod/uuid", FORM, "");
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
        let r = get(Some(&p), "/acMetadata/v1/apps/\u{e9}/image/id");
        assert!(r.body.is_ascii());
    }

    #[test]
    fn sign_then_verify() {
        let p = pod();
        let r = post(
            Some(&p),
            "/acMetadata/v1/pod/hmac/sign",
            FORM,
            "content=hello+world",
        );
        assert_eq!((r.status, r.content_type), (200, TEXT));
        assert_eq!(r.body.len(), 88);
        assert!(!r.body.ends_with('\n'));
        let sig: String = form_urlencoded::byte_serialize(r.body.as_bytes()).collect();
        let good = format!("content=hello+world&uuid={U}&signature={sig}");
        let r = post(Some(&p), "/acMetadata/v1/pod/hmac/verify", FORM, &good);
        assert_eq!((r.status, r.body.as_str()), (200, ""));
        let other = format!(
            "content=hello+world&uuid=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d&signature={sig}"
        );
        assert_eq!(
            post(Some(&p), "/acMetadata/v1/pod/hmac/verify", FORM, &other).status,
            403
        );
        let changed = format!("content=hello&uuid={U}&signature={sig}");
        assert_eq!(
            post(Some(&p), "/acMetadata/v1/pod/hmac/verify", FORM, &changed).status,
            403
        );
    }

    #[test]
    fn bad_forms_are_refused() {
        let p = pod();
        let sign = "/acMetadata/v1/pod/hmac/sign";
        let verify = "/acMetadata/v1/pod/hmac/verify";
        assert_eq!(post(Some(&p), sign, "application/json", "{}").status, 415);
        assert_eq!(post(Some(&p), sign, FORM, "other=1").status, 400);
        assert_eq!(
            post(Some(&p), sign, FORM, "content=a&content=b").status,
            400
        );
        let r = post(
            Some(&p),
            verify,
            FORM,
            &format!("content=a&uuid={U}&signature=AAAA"),
        );
        assert_eq!(r.status, 403);
        assert!(r.body.contains("3 bytes"), "{}", r.body);
        let r = post(
            Some(&p),
            verify,
            FORM,
            &format!("content=a&uuid={U}&signature=%25%25"),
        );
        assert_eq!(r.status, 400);
        let r = post(Some(&p), verify, FORM, "content=a&uuid=nope&signature=AAAA");
        assert_eq!(r.status, 400);
        assert_eq!(post(None, sign, FORM, "content=a").status, 403);
    }
}
