//! One target per parser of outside input. A target never panics on any input; where its
//! parser accepts, it checks what must then hold (a manifest that parses writes out and
//! parses again; an extraction stays inside its scratch root).

use std::path::Path;

pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Tokens the mutator inserts: the format's keys and markers.
    pub dictionary: &'static [&'static [u8]],
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "appc_image_manifest",
        run: appc_image_manifest,
        dictionary: APPC,
    },
    Target {
        name: "appc_pod_manifest",
        run: appc_pod_manifest,
        dictionary: APPC,
    },
    Target {
        name: "oci_manifest_and_index",
        run: oci_manifest_and_index,
        dictionary: OCI,
    },
    Target {
        name: "oci_config",
        run: oci_config,
        dictionary: OCI,
    },
    Target {
        name: "docker_archive_manifest",
        run: docker_archive_manifest,
        dictionary: OCI,
    },
    Target {
        name: "tar_entries",
        run: tar_entries,
        dictionary: TAR,
    },
    Target {
        name: "flags",
        run: flags,
        dictionary: FLAGS,
    },
    Target {
        name: "registry_auth",
        run: registry_auth,
        dictionary: AUTH,
    },
    Target {
        name: "openpgp_armor",
        run: openpgp_armor,
        dictionary: ARMOR,
    },
    Target {
        name: "cni_result",
        run: cni_result,
        dictionary: CNI,
    },
];

const APPC: &[&[u8]] = &[
    b"\"acKind\"",
    b"\"ImageManifest\"",
    b"\"PodManifest\"",
    b"\"acVersion\"",
    b"\"0.8.11\"",
    b"\"name\"",
    b"\"labels\"",
    b"\"app\"",
    b"\"exec\"",
    b"\"user\"",
    b"\"group\"",
    b"\"isolators\"",
    b"\"resource/memory\"",
    b"\"os/linux/seccomp-retain-set\"",
    b"\"os/linux/capabilities-retain-set\"",
    b"\"mountPoints\"",
    b"\"ports\"",
    b"\"volumes\"",
    b"\"apps\"",
    b"\"image\"",
    b"\"id\"",
    b"\"sha512-",
    b"\"dependencies\"",
    b"\"pathWhitelist\"",
    b"\"annotations\"",
    b"\"eventHandlers\"",
    b"\"supplementaryGIDs\"",
];

const OCI: &[&[u8]] = &[
    b"\"schemaVersion\"",
    b"\"mediaType\"",
    b"\"application/vnd.oci.image.manifest.v1+json\"",
    b"\"application/vnd.oci.image.index.v1+json\"",
    b"\"config\"",
    b"\"layers\"",
    b"\"manifests\"",
    b"\"platform\"",
    b"\"digest\"",
    b"\"sha256:",
    b"\"size\"",
    b"\"architecture\"",
    b"\"amd64\"",
    b"\"os\"",
    b"\"linux\"",
    b"\"rootfs\"",
    b"\"diff_ids\"",
    b"\"User\"",
    b"\"WorkingDir\"",
    b"\"Env\"",
    b"\"Entrypoint\"",
    b"\"Cmd\"",
    b"\"ExposedPorts\"",
    b"\"Volumes\"",
    b"\"Config\"",
    b"\"RepoTags\"",
    b"\"Layers\"",
];

const TAR: &[&[u8]] = &[
    b"ustar\x0000",
    b"ustar  \x00",
    b"rootfs/",
    b"manifest",
    b".wh.",
    b".wh..wh..opq",
    b"../",
    b"path=",
    b"linkpath=",
    b"SCHILY.xattr.",
    b"GNU.sparse",
];

const FLAGS: &[&[u8]] = &[
    b"kind=host",
    b"kind=empty",
    b"source=/",
    b"readOnly=true",
    b"recursive=false",
    b"mode=0755",
    b"uid=",
    b"gid=",
    b"volume=",
    b"target=",
    b"mode=remove",
    b"errno=",
    b"[::1]",
    b"\n",
];

const AUTH: &[&[u8]] = &[
    b"Bearer ",
    b"Basic ",
    b"realm=\"",
    b"service=\"",
    b"scope=\"",
    b"error=\"",
    b"\"token\"",
    b"\"access_token\"",
    b"\\\"",
];

const ARMOR: &[&[u8]] = &[
    b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
    b"-----END PGP PUBLIC KEY BLOCK-----\n",
    b"-----BEGIN PGP SIGNATURE-----\n",
    b"-----END PGP SIGNATURE-----\n",
    b"\n=",
    b"Version: ",
];

const CNI: &[&[u8]] = &[
    b"\"cniVersion\"",
    b"\"1.0.0\"",
    b"\"0.4.0\"",
    b"\"interfaces\"",
    b"\"ips\"",
    b"\"address\"",
    b"\"gateway\"",
    b"\"interface\"",
    b"\"routes\"",
    b"\"dst\"",
    b"\"dns\"",
    b"\"nameservers\"",
    b"\"10.0.0.2/24\"",
    b"\"::1/64\"",
];

fn appc_image_manifest(data: &[u8]) {
    if let Ok(m) = schema::ImageManifest::from_slice(data) {
        let bytes = m
            .to_vec()
            .expect("a manifest that parsed must write out again");
        let again = schema::ImageManifest::from_slice(&bytes)
            .expect("a manifest written out must parse again");
        assert_eq!(again, m, "a manifest changed through a round trip");
    }
}

fn appc_pod_manifest(data: &[u8]) {
    if let Ok(m) = schema::PodManifest::from_slice(data) {
        if let Ok(bytes) = m.to_vec() {
            schema::PodManifest::from_slice(&bytes)
                .expect("a pod manifest written out must parse again");
        }
    }
}

fn oci_manifest_and_index(data: &[u8]) {
    let _ = serde_json::from_slice::<oci_spec::image::ImageManifest>(data);
    let _ = serde_json::from_slice::<oci_spec::image::ImageIndex>(data);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(d) = store::import::oci::select_platform(&v, "fuzz") {
            // A digest the store accepts is always a safe file name.
            assert!(!d.hex().contains('/') && !d.hex().contains(".."));
        }
        let _ = store::import::layout::pick_from_index(&v, Some("latest"), "fuzz");
        let _ = store::import::layout::pick_from_index(&v, None, "fuzz");
    }
}

fn oci_config(data: &[u8]) {
    let Ok(config) = serde_json::from_slice::<oci_spec::image::ImageConfiguration>(data) else {
        return;
    };
    if let Ok(converted) = schema::oci::convert_config(&config) {
        let name = schema::AcIdentifier::sanitize("example.com/fuzz").expect("a valid name");
        let manifest = converted.into_image_manifest(name);
        // What the conversion gives must be a valid appc manifest.
        let bytes = manifest
            .to_vec()
            .expect("a converted config must make a valid manifest");
        schema::ImageManifest::from_slice(&bytes).expect("and parse again");
    }
}

/// A docker-archive whose manifest.json is the input, imported into a scratch store.
fn docker_archive_manifest(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut tar = tar_member("manifest.json", data);
    tar.extend(tar_member(
        "config.json",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    ));
    tar.extend([0u8; 1024]);
    let file = dir.path().join("archive.tar");
    std::fs::write(&file, &tar).expect("writing the archive");
    let store = store::Store::open(&dir.path().join("vessel")).expect("a scratch store");
    let _ = store::import::archive::import_docker_archive(&store, &file, None, "fuzz");
}

/// One ustar member (name under 100 bytes).
fn tar_member(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{v:0w$o}\0", w = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Extraction of the input as a tar into a scratch root: as an OCI layer (whiteouts) or,
/// when the first byte is odd, as an ACI. Whatever it holds, nothing appears beside the
/// root.
fn tar_entries(data: &[u8]) {
    let Some((&mode, tar)) = data.split_first() else {
        return;
    };
    let aci = mode & 1 == 1;
    let dir = tempfile::tempdir().expect("a scratch directory");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("the scratch root");
    let mut writer = store::extract::writer::RootWriter::new(
        &root,
        store::extract::writer::Whiteouts::Overlay,
        true,
    )
    .expect("a writer");
    let opts = store::extract::ExtractOptions {
        image: "fuzz",
        aci,
        whiteouts: !aci,
        max_bytes: 1 << 20,
    };
    let _ = store::extract::extract_tar(tar, &mut writer, &opts);
    assert_only_root(dir.path());
}

fn assert_only_root(scratch: &Path) {
    let names: Vec<String> = std::fs::read_dir(scratch)
        .expect("reading the scratch directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["root"], "an extraction wrote beside its root");
}

/// `--volume`, `--mount`, `--port` and `--seccomp`, and isolators from JSON, one per line
/// of the input (the first byte picks which).
fn flags(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            let _ = schema::Volume::from_flag(&text);
        }
        1 => {
            let _ = schema::Mount::from_flag(&text);
        }
        2 => {
            let _ = schema::ExposedPort::from_flag(&text);
        }
        3 => {
            let _ = schema::oci::user::parse(&text);
            let _ = schema::ids::check_user_or_group("user", &text, Some(65536));
        }
        _ => {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
                for name in [
                    "resource/memory",
                    "resource/cpu",
                    "os/linux/seccomp-retain-set",
                    "os/linux/seccomp-remove-set",
                    "os/linux/capabilities-retain-set",
                    "os/linux/no-new-privileges",
                    "os/linux/oom-score-adj",
                ] {
                    let name = schema::AcIdentifier::sanitize(name).expect("a valid name");
                    let _ = schema::TypedIsolator::parse(&name, &v);
                }
            }
        }
    }
}

fn registry_auth(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = fetch::registry::auth::parse_challenge(&text);
    let _ = fetch::registry::auth::parse_token_answer(data);
}

fn openpgp_armor(data: &[u8]) {
    if let Ok(keys) = fetch::trust::keys::parse_keys(data) {
        for k in &keys {
            let _ = fetch::trust::keys::fingerprint_hex(k);
            let _ = fetch::trust::keys::user_ids(k);
        }
    }
    let _ = fetch::trust::verify::parse_signature(data, "fuzz", "fuzz.asc");
}

fn cni_result(data: &[u8]) {
    if let Ok((result, _)) = net::CniResult::parse(data) {
        let _ = result.pod_ips("eth0");
        let _ = result.primary_ip("eth0");
    }
}
