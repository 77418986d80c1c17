//! The default app name of an image reference, the way rkt derives it.

use crate::error::SchemaError;
use crate::name::AcName;

/// Transport prefixes (skopeo's and URL schemes) that come before a name.
const TRANSPORTS: &[&str] = &[
    "docker://",
    "oci-archive:",
    "oci:",
    "docker-archive:",
    "docker-daemon:",
    "containers-storage:",
    "dir:",
    "https://",
    "http://",
    "file://",
];

/// Archive suffixes that are not part of the app's name.
const SUFFIXES: &[&str] = &[".aci", ".tar.gz", ".tgz", ".tar"];

/// The last path component of an image name, without transport, tag or
/// digest, made into an AC name:
/// `coreos.com/etcd` → `etcd`, `docker://host/library/redis:7` → `redis`,
/// `127.0.0.1:5000/a/b@sha256:...` → `b`, `./app.aci` → `app`.
pub fn app_name_for_image(image: &str) -> Result<AcName, SchemaError> {
    let mut rest = image;
    if let Some(t) = TRANSPORTS.iter().find(|t| rest.starts_with(*t)) {
        rest = &rest[t.len()..];
    }
    // A digest ends the reference; a tag is a colon in the last component
    // (an earlier colon is a registry port).
    if let Some((before, _)) = rest.split_once('@') {
        rest = before;
    }
    let last = rest
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let last = last.split_once(':').map_or(last, |(name, _)| name);
    let last = SUFFIXES
        .iter()
        .find_map(|s| last.strip_suffix(s))
        .unwrap_or(last);
    AcName::sanitize(last).map_err(|_| {
        SchemaError::invalid_because("image name", image, "no app name can be derived from it")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_names_like_rkt() {
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let cases = [
            ("coreos.com/etcd", "etcd"),
            ("coreos.com/etcd:v3.5.0", "etcd"),
            ("docker://host/library/redis:7", "redis"),
            ("docker://redis", "redis"),
            (&format!("127.0.0.1:5000/a/b@sha256:{sha}"), "b"),
            ("127.0.0.1:5000/a/b:latest", "b"),
            ("localhost:5000/My_App", "my-app"),
            (
                "https://example.com/images/app-1.0.0-linux-amd64.aci",
                "app-1-0-0-linux-amd64",
            ),
            ("./app.aci", "app"),
            ("/tmp/images/reduce-worker.aci", "reduce-worker"),
            ("oci:/var/tmp/layout:v1", "layout"),
            ("oci-archive:/tmp/busybox.tar", "busybox"),
            ("docker-archive:/tmp/nginx.tar.gz", "nginx"),
            ("example.com/app/", "app"),
        ];
        for (image, want) in cases {
            assert_eq!(app_name_for_image(image).unwrap().as_str(), want, "{image}");
        }
    }

    #[test]
    fn fails_when_nothing_is_left() {
        for image in ["", "docker://", "___", "example.com/:tag"] {
            assert!(app_name_for_image(image).is_err(), "{image:?}");
        }
    }
}
