//! `--insecure-options`: the security checks a user chose to skip, each by name.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsecureOptions {
    /// Skip image signature verification.
    pub image: bool,
    /// Skip TLS certificate verification.
    pub tls: bool,
    /// Allow plain HTTP.
    pub http: bool,
    /// Accept public keys fetched without verification.
    pub pubkey: bool,
    /// Give apps every capability.
    pub capabilities: bool,
    /// Do not mask or make read-only the sensitive /proc and /sys paths.
    pub paths: bool,
    /// Do not install a seccomp filter.
    pub seccomp: bool,
    /// rkt's `ondisk`: named, with no effect (noted on stderr).
    pub ondisk: bool,
}

const NAMES: &str =
    "none, image, tls, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all, ondisk";

impl FromStr for InsecureOptions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut o = InsecureOptions::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "none" => {}
                // rkt accepted it (on-disk image verification) and then ignored it; unit
                // files still name it.
                "ondisk" => o.ondisk = true,
                "image" => o.image = true,
                "tls" => o.tls = true,
                "http" => o.http = true,
                "pubkey" => o.pubkey = true,
                "capabilities" => o.capabilities = true,
                "paths" => o.paths = true,
                "seccomp" => o.seccomp = true,
                "all-fetch" => {
                    o.image = true;
                    o.tls = true;
                    o.http = true;
                    o.pubkey = true;
                }
                "all-run" => {
                    o.capabilities = true;
                    o.paths = true;
                    o.seccomp = true;
                }
                "all" => {
                    o = InsecureOptions {
                        image: true,
                        tls: true,
                        http: true,
                        pubkey: true,
                        capabilities: true,
                        paths: true,
                        seccomp: true,
                        ondisk: o.ondisk,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown insecure option {other:?} (known: {NAMES})"
                    ))
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_groups() {
        let o: InsecureOptions = "image,tls".parse().unwrap();
        assert!(o.image && o.tls && !o.http && !o.seccomp);
        let o: InsecureOptions = "all-run".parse().unwrap();
        assert!(o.capabilities && o.paths && o.seccomp && !o.image);
        assert_eq!(
            "none".parse::<InsecureOptions>().unwrap(),
            InsecureOptions::default()
        );
        let o: InsecureOptions = "image,ondisk".parse().unwrap();
        assert!(o.image && o.ondisk && !o.tls);
        assert!("imag"
            .parse::<InsecureOptions>()
            .unwrap_err()
            .contains("imag"));
    }
}
