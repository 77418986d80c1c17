//! appc ACIs for tests: built by Debian's `actool` from an image layout, or written raw
//! for hostile archives.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::compress::Compression;
use super::digest::aci_id;
use super::oci::run_tool;
use super::rootfs::busybox_rootfs;
use super::tar::TarWriter;

/// An appc image manifest for linux/amd64 running /bin/sh.
pub fn aci_manifest(name: &str, version: &str) -> Value {
    json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": [
            {"name": "version", "value": version},
            {"name": "os", "value": "linux"},
            {"name": "arch", "value": "amd64"},
        ],
        "app": {"exec": ["/bin/sh"], "user": "0", "group": "0"},
    })
}

/// An ACI file on disk and the ID vessel should give it.
#[derive(Debug, Clone)]
pub struct BuiltAci {
    pub path: PathBuf,
    /// `sha512-` of the uncompressed tar.
    pub id: String,
}

impl BuiltAci {
    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// An appc image layout (`manifest` and `rootfs/`) that `actool build` packs.
pub struct AciLayout {
    dir: PathBuf,
    pub manifest: Value,
}

impl AciLayout {
    pub fn create(dir: &Path, name: &str, version: &str) -> AciLayout {
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        AciLayout {
            dir: dir.to_path_buf(),
            manifest: aci_manifest(name, version),
        }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Adds a dependency on an image already built, by name and version label.
    pub fn depend_on(&mut self, name: &str, version: &str) {
        let deps = self.manifest["dependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut deps = deps;
        deps.push(json!({"imageName": name, "labels": [{"name": "version", "value": version}]}));
        self.manifest["dependencies"] = Value::Array(deps);
    }

    /// `actool build --no-compression`, then the compressor's own tool; `out` gets the
    /// compressed file.
    pub fn build(&self, out: &Path, compression: Compression) -> BuiltAci {
        std::fs::write(
            self.dir.join("manifest"),
            serde_json::to_vec_pretty(&self.manifest).unwrap(),
        )
        .unwrap();
        let plain = out.with_extension("plain.aci");
        run_tool(
            Command::new("actool")
                .args(["build", "--overwrite", "--no-compression"])
                .arg(&self.dir)
                .arg(&plain),
        );
        let tar = std::fs::read(&plain).unwrap();
        std::fs::remove_file(&plain).unwrap();
        std::fs::write(out, compression.compress(&tar)).unwrap();
        BuiltAci {
            path: out.to_path_buf(),
            id: aci_id(&tar),
        }
    }
}

/// A busybox ACI named `name` at `version`, built by actool into `work`.
pub fn busybox_aci(work: &Path, name: &str, version: &str, compression: Compression) -> BuiltAci {
    let tag = name.rsplit('/').next().unwrap();
    let layout = AciLayout::create(&work.join(format!("{tag}-{version}.layout")), name, version);
    busybox_rootfs(&layout.rootfs());
    layout.build(
        &work.join(format!("{tag}-{version}-{compression:?}.aci")),
        compression,
    )
}

/// A raw ACI tar: `manifest` (exactly these bytes), `rootfs/`, then whatever `entries`
/// writes (names must include the `rootfs/` prefix).
pub fn raw_aci(manifest: &[u8], entries: impl FnOnce(&mut TarWriter)) -> Vec<u8> {
    let mut t = TarWriter::new();
    t.file("manifest", manifest);
    t.dir("rootfs");
    entries(&mut t);
    t.finish()
}

/// A well-formed manifest's bytes for raw ACIs.
pub fn manifest_bytes(name: &str) -> Vec<u8> {
    serde_json::to_vec(&aci_manifest(name, "1.0")).unwrap()
}

/// Writes a raw ACI to `path` and returns it with its expected ID.
pub fn write_aci(path: &Path, tar: &[u8], compression: Compression) -> BuiltAci {
    std::fs::write(path, compression.compress(tar)).unwrap();
    BuiltAci {
        path: path.to_path_buf(),
        id: aci_id(tar),
    }
}
