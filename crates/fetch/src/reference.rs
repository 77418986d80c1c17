//! Image references as users write them, with transports named as skopeo names them.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A local ACI: a path or `file://` URL.
    AciFile(PathBuf),
    /// `https://host/path.aci` (signature at `.aci.asc`).
    AciUrl(String),
    /// `oci:DIR[:REF]`
    OciLayout {
        dir: PathBuf,
        reference: Option<String>,
    },
    /// `oci-archive:FILE[:REF]`
    OciArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    /// `docker-archive:FILE[:REF]`
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    /// `docker://[REGISTRY[:PORT]/]REPO[:TAG|@DIGEST]`
    Docker(String),
    /// `example.com/app[:version]`: an appc name (the store first, then discovery), or a
    /// name, tag or ID already in the store.
    Name(String),
}

fn split_ref(rest: &str) -> (PathBuf, Option<String>) {
    // As skopeo does: the path ends at the first ':'.
    match rest.split_once(':') {
        Some((p, r)) if !r.is_empty() => (PathBuf::from(p), Some(r.to_string())),
        Some((p, _)) => (PathBuf::from(p), None),
        None => (PathBuf::from(rest), None),
    }
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty image reference".into());
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, reference) = split_ref(rest);
            return Ok(ImageRef::OciLayout { dir, reference });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, reference) = split_ref(rest);
            return Ok(ImageRef::OciArchive { file, reference });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, reference) = split_ref(rest);
            return Ok(ImageRef::DockerArchive { file, reference });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(format!("{s:?} names no image"));
            }
            return Ok(ImageRef::Docker(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("file://") {
            return Ok(ImageRef::AciFile(PathBuf::from(rest)));
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            return Ok(ImageRef::AciUrl(s.to_string()));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(format!("unknown transport {scheme:?} in {s:?} (known: file, http, https, docker, and oci:, oci-archive:, docker-archive:)"));
        }
        // A path to a file: anything with a path separator start, or an .aci that exists.
        let looks_like_path = s.starts_with('/')
            || s.starts_with("./")
            || s.starts_with("../")
            || s.ends_with(".aci");
        if looks_like_path || Path::new(s).is_file() {
            return Ok(ImageRef::AciFile(PathBuf::from(s)));
        }
        Ok(ImageRef::Name(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/layout:latest").unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                reference: Some("latest".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:/tmp/layout").unwrap(),
            ImageRef::OciLayout {
                dir: "/tmp/layout".into(),
                reference: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:/x.tar").unwrap(),
            ImageRef::DockerArchive {
                file: "/x.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker://busybox:1").unwrap(),
            ImageRef::Docker("busybox:1".into())
        );
        assert_eq!(
            ImageRef::parse("file:///a.aci").unwrap(),
            ImageRef::AciFile("/a.aci".into())
        );
        assert_eq!(
            ImageRef::parse("./a.aci").unwrap(),
            ImageRef::AciFile("./a.aci".into())
        );
        assert_eq!(
            ImageRef::parse("example.com/app:v1").unwrap(),
            ImageRef::Name("example.com/app:v1".into())
        );
        assert!(ImageRef::parse("ftp://x").is_err());
        assert!(ImageRef::parse("").is_err());
    }
}
