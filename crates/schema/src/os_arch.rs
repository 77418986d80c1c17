//! The `os` and `arch` labels: which combinations appc allows, and how they
//! map to OCI/Go platform names and to the host we were built for.

use crate::error::SchemaError;

/// The os/arch combinations appc 0.8.11 allows (its `types.ValidOSArch`).
pub const VALID_OS_ARCH: &[(&str, &[&str])] = &[
    (
        "linux",
        &[
            "amd64",
            "i386",
            "aarch64",
            "aarch64_be",
            "armv6l",
            "armv7l",
            "armv7b",
            "ppc64",
            "ppc64le",
            "s390x",
        ],
    ),
    ("freebsd", &["amd64", "i386", "arm"]),
    ("darwin", &["x86_64", "i386"]),
];

fn archs_of(os: &str) -> Option<&'static [&'static str]> {
    VALID_OS_ARCH
        .iter()
        .find(|(o, _)| *o == os)
        .map(|(_, archs)| *archs)
}

/// Checks an os/arch pair. `arch` means something only with `os`, so an
/// arch alone is accepted, as appc does.
pub fn validate(os: Option<&str>, arch: Option<&str>) -> Result<(), SchemaError> {
    let Some(os) = os else { return Ok(()) };
    let archs = archs_of(os).ok_or_else(|| {
        let oses: Vec<&str> = VALID_OS_ARCH.iter().map(|(o, _)| *o).collect();
        SchemaError::invalid_because(
            "os label",
            os,
            format!("must be one of {}", oses.join(", ")),
        )
    })?;
    match arch {
        Some(arch) if !archs.contains(&arch) => Err(SchemaError::invalid_because(
            "arch label",
            arch,
            format!("for os {os} must be one of {}", archs.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Maps an OCI platform (Go's GOOS/GOARCH plus variant) to appc os/arch,
/// or `None` when appc has no name for it.
pub fn from_oci(
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> Option<(&'static str, &'static str)> {
    let variant = variant.unwrap_or_default();
    let pair = match (os, arch, variant) {
        ("linux", "amd64", _) => ("linux", "amd64"),
        ("linux", "386", _) => ("linux", "i386"),
        ("linux", "arm64", "" | "v8") => ("linux", "aarch64"),
        ("linux", "arm64be", "" | "v8") => ("linux", "aarch64_be"),
        ("linux", "arm", "v6") => ("linux", "armv6l"),
        // OCI's default variant for arm is v7.
        ("linux", "arm", "" | "v7") => ("linux", "armv7l"),
        ("linux", "armbe", "" | "v7") => ("linux", "armv7b"),
        ("linux", "ppc64", _) => ("linux", "ppc64"),
        ("linux", "ppc64le", _) => ("linux", "ppc64le"),
        ("linux", "s390x", _) => ("linux", "s390x"),
        ("freebsd", "amd64", _) => ("freebsd", "amd64"),
        ("freebsd", "386", _) => ("freebsd", "i386"),
        ("freebsd", "arm", _) => ("freebsd", "arm"),
        ("darwin", "amd64", _) => ("darwin", "x86_64"),
        ("darwin", "386", _) => ("darwin", "i386"),
        _ => return None,
    };
    Some(pair)
}

/// Maps appc os/arch to an OCI platform: (os, architecture, variant).
pub fn to_oci(os: &str, arch: &str) -> Option<(&'static str, &'static str, Option<&'static str>)> {
    let triple = match (os, arch) {
        ("linux", "amd64") => ("linux", "amd64", None),
        ("linux", "i386") => ("linux", "386", None),
        ("linux", "aarch64") => ("linux", "arm64", None),
        ("linux", "aarch64_be") => ("linux", "arm64be", None),
        ("linux", "armv6l") => ("linux", "arm", Some("v6")),
        ("linux", "armv7l") => ("linux", "arm", Some("v7")),
        ("linux", "armv7b") => ("linux", "armbe", Some("v7")),
        ("linux", "ppc64") => ("linux", "ppc64", None),
        ("linux", "ppc64le") => ("linux", "ppc64le", None),
        ("linux", "s390x") => ("linux", "s390x", None),
        ("freebsd", "amd64") => ("freebsd", "amd64", None),
        ("freebsd", "i386") => ("freebsd", "386", None),
        ("freebsd", "arm") => ("freebsd", "arm", None),
        ("darwin", "x86_64") => ("darwin", "amd64", None),
        ("darwin", "i386") => ("darwin", "386", None),
        _ => return None,
    };
    Some(triple)
}

/// The appc os/arch of the platform this crate was compiled for, used as
/// the default `os`/`arch` labels when fetching. Compile-time facts only.
pub fn host() -> Option<(&'static str, &'static str)> {
    let os = std::env::consts::OS;
    let arch = match std::env::consts::ARCH {
        "x86_64" if os == "darwin" => "x86_64",
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" if cfg!(target_endian = "big") => "aarch64_be",
        "aarch64" => "aarch64",
        "arm" if cfg!(target_endian = "big") => "armv7b",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        _ => return None,
    };
    validate(Some(os), Some(arch)).ok()?;
    Some((os, arch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_pairs() {
        assert!(validate(Some("linux"), Some("amd64")).is_ok());
        assert!(validate(Some("linux"), Some("aarch64")).is_ok());
        assert!(validate(Some("darwin"), Some("x86_64")).is_ok());
        assert!(validate(None, Some("anything")).is_ok());
        assert!(validate(Some("linux"), None).is_ok());
        let e = validate(Some("linux"), Some("arm64")).unwrap_err();
        assert!(
            e.to_string().starts_with(
                r#""arm64" is not a valid arch label (for os linux must be one of amd64"#
            ),
            "{e}"
        );
        let e = validate(Some("windows"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""windows" is not a valid os label (must be one of linux, freebsd, darwin)"#
        );
    }

    #[test]
    fn oci_mapping_round_trips() {
        for (os, archs) in VALID_OS_ARCH {
            for arch in *archs {
                let (oos, oarch, variant) = to_oci(os, arch).unwrap();
                assert_eq!(
                    from_oci(oos, oarch, variant),
                    Some((*os, *arch)),
                    "{os}/{arch}"
                );
            }
        }
        assert_eq!(from_oci("linux", "arm", None), Some(("linux", "armv7l")));
        assert_eq!(
            from_oci("linux", "arm64", Some("v8")),
            Some(("linux", "aarch64"))
        );
        assert_eq!(from_oci("linux", "riscv64", None), None);
        assert_eq!(from_oci("windows", "amd64", None), None);
    }

    #[test]
    fn host_is_valid_where_known() {
        if let Some((os, arch)) = host() {
            assert!(validate(Some(os), Some(arch)).is_ok());
        }
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(host(), Some(("linux", "amd64")));
    }
}
