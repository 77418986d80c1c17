//! `docker://[REGISTRY[:PORT]/]REPO[:TAG|@DIGEST]`, as Docker and skopeo read it.

use store::images::split_tag;
use store::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    /// As users write it and as the store names images: `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The repository on the registry: `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl DockerRef {
    pub fn parse(s: &str) -> Result<DockerRef, String> {
        let bad = |why: &str| format!("docker://{s}: {why}");
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let d: Digest = d.parse().map_err(|e: String| bad(&e))?;
                (r, Some(d))
            }
            None => (s, None),
        };
        let (name, tag) = split_tag(rest);
        let first = name.split('/').next().unwrap_or("");
        let has_registry = name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let (registry, repository) = if has_registry {
            let (r, repo) = name.split_once('/').expect("has a slash");
            (r.to_string(), repo.to_string())
        } else if name.contains('/') {
            ("docker.io".to_string(), name.to_string())
        } else {
            ("docker.io".to_string(), format!("library/{name}"))
        };
        if repository.is_empty()
            || !repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            })
        {
            return Err(bad(&format!(
                "{repository:?} is not a valid repository name (lower-case letters, digits, '.', '_', '-', and '/' between components)"
            )));
        }
        if let Some(t) = tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                return Err(bad(&format!("{t:?} is not a valid tag")));
            }
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(DockerRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is served from (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// `registry/repository`: the name the store records.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the manifests endpoint for: the digest if given, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.oci(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// `registry/repository:tag` (or `@digest`), as shown to users.
    pub fn shown(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => format!("{}:{t}@{}", self.name(), d.oci()),
            (Some(t), None) => format!("{}:{t}", self.name()),
            (None, Some(d)) => format!("{}@{}", self.name(), d.oci()),
            (None, None) => self.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker_reads_them() {
        let r = DockerRef::parse("busybox").unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.api_host(), "registry-1.docker.io");

        let r = DockerRef::parse("127.0.0.1:5000/a/b:v2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v2"));

        let d = format!("sha256:{}", "a".repeat(64));
        let r = DockerRef::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), d);

        assert!(DockerRef::parse("Upper/case").is_err());
        assert!(DockerRef::parse("a:b c").is_err());
        assert!(DockerRef::parse("x@sha256:zz").is_err());
    }
}
