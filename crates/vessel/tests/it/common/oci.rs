//! OCI images for tests: layouts made by Debian's umoci, archives by skopeo, and layouts
//! written by hand from raw tars (hostile layers, indexes, broken manifests).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::compress::Compression;
use super::digest::{oci_id, sha256_hex, sha256_oci};
use super::rootfs::busybox_rootfs;
use super::tar::TarWriter;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const REF_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Runs a tool and returns its stdout; panics with everything it printed if it fails.
pub fn run_tool(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An OCI image layout made and changed only by umoci.
pub struct UmociLayout {
    dir: PathBuf,
    tag: String,
}

impl UmociLayout {
    /// `umoci init` and `umoci new`: an image with no layers yet.
    pub fn create(dir: &Path, tag: &str) -> UmociLayout {
        run_tool(Command::new("umoci").args(["init", "--layout"]).arg(dir));
        let layout = UmociLayout {
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
        };
        run_tool(Command::new("umoci").args(["new", "--image", &layout.image()]));
        layout
    }

    /// `DIR:TAG`, as umoci names an image.
    pub fn image(&self) -> String {
        format!("{}:{}", self.dir.display(), self.tag)
    }

    /// `oci:DIR:TAG`, as vessel and skopeo name it.
    pub fn reference(&self) -> String {
        format!("oci:{}", self.image())
    }

    /// Adds a layer: unpacks the image, lets `change` edit the root filesystem (deletions
    /// become whiteouts), and repacks it.
    pub fn add_layer(&self, change: impl FnOnce(&Path)) {
        let scratch = tempfile::Builder::new()
            .prefix("umoci-bundle-")
            .tempdir_in(self.dir.parent().unwrap())
            .unwrap();
        let bundle = scratch.path().join("bundle");
        run_tool(
            Command::new("umoci")
                .args(["unpack", "--image", &self.image()])
                .arg(&bundle),
        );
        change(&bundle.join("rootfs"));
        run_tool(
            Command::new("umoci")
                .args(["repack", "--image", &self.image()])
                .arg(&bundle),
        );
    }

    /// `umoci config --image DIR:TAG ARGS...`
    pub fn config(&self, args: &[&str]) {
        run_tool(
            Command::new("umoci")
                .args(["config", "--image", &self.image()])
                .args(args),
        );
    }

    /// The manifest digest `index.json` gives for the tag.
    pub fn manifest_digest(&self) -> String {
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"][REF_ANNOTATION] == self.tag.as_str())
            .unwrap_or_else(|| panic!("tag {} not in {}/index.json", self.tag, self.dir.display()))
            ["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The manifest JSON for the tag.
    pub fn manifest(&self) -> Value {
        serde_json::from_slice(&self.read_blob(&self.manifest_digest())).unwrap()
    }

    /// The image ID vessel should print: `sha256-` and the config blob's hex.
    pub fn image_id(&self) -> String {
        self.manifest()["config"]["digest"]
            .as_str()
            .unwrap()
            .replacen(':', "-", 1)
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algo, hex) = digest.split_once(':').unwrap();
        self.dir.join("blobs").join(algo).join(hex)
    }

    pub fn read_blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.blob_path(digest)).unwrap()
    }

    /// Writes the image as an `oci-archive` tarball; returns `oci-archive:FILE:TAG`.
    pub fn to_oci_archive(&self, file: &Path) -> String {
        skopeo_copy(
            &self.reference(),
            &format!("oci-archive:{}:{}", file.display(), self.tag),
        );
        format!("oci-archive:{}:{}", file.display(), self.tag)
    }

    /// Writes the image as a `docker save` tarball tagged `repo_tag`; returns
    /// `docker-archive:FILE`.
    pub fn to_docker_archive(&self, file: &Path, repo_tag: &str) -> String {
        skopeo_copy(
            &self.reference(),
            &format!("docker-archive:{}:{repo_tag}", file.display()),
        );
        format!("docker-archive:{}", file.display())
    }
}

pub fn skopeo_copy(from: &str, to: &str) {
    run_tool(Command::new("skopeo").args(["copy", "--quiet", from, to]));
}

/// A one-layer busybox image made by umoci, with `/bin/sh` as its command.
pub fn busybox_layout(dir: &Path, tag: &str) -> UmociLayout {
    let layout = UmociLayout::create(dir, tag);
    layout.add_layer(busybox_rootfs);
    layout.config(&["--config.cmd", "/bin/sh"]);
    layout
}

/// A layer blob as it goes into a layout: possibly compressed, with its diff_id.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
}

impl Layer {
    pub fn new(tar: &[u8], compression: Compression) -> Layer {
        Layer {
            blob: compression.compress(tar),
            media_type: compression.oci_media_type().to_string(),
            diff_id: sha256_oci(tar),
        }
    }

    pub fn digest(&self) -> String {
        sha256_oci(&self.blob)
    }
}

/// The JSON descriptor of a blob.
pub fn descriptor(media_type: &str, blob: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256_oci(blob), "size": blob.len()})
}

/// A minimal image configuration for linux/`arch` with these layers.
pub fn image_config(arch: &str, layers: &[Layer]) -> Value {
    image_config_for(arch, layers.iter().map(|l| l.diff_id.clone()).collect())
}

/// A minimal image configuration for linux/`arch` with layers of these diff_ids.
pub fn image_config_for(arch: &str, diff_ids: Vec<String>) -> Value {
    json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
}

/// A layer blob already in a layout: its descriptor and diff_id.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    pub descriptor: Value,
    pub diff_id: String,
}

/// An image written into a `RawLayout`.
#[derive(Debug, Clone)]
pub struct RawImage {
    /// The manifest's descriptor, to tag or put in an index.
    pub descriptor: Value,
    /// The ID vessel should give it: `sha256-<hex of the config>`.
    pub id: String,
}

/// An OCI image layout written file by file, without any tool's checks.
pub struct RawLayout {
    dir: PathBuf,
    tagged: Vec<Value>,
}

impl RawLayout {
    pub fn create(dir: &Path) -> RawLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = RawLayout {
            dir: dir.to_path_buf(),
            tagged: Vec::new(),
        };
        layout.write_index();
        layout
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a blob under its true digest; returns `sha256:<hex>`.
    pub fn put_blob(&self, data: &[u8]) -> String {
        self.put_blob_as(&sha256_hex(data), data);
        sha256_oci(data)
    }

    /// Stores `data` under the name `hex`, true or not.
    pub fn put_blob_as(&self, hex: &str, data: &[u8]) {
        std::fs::write(self.dir.join("blobs/sha256").join(hex), data).unwrap();
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Writes layers, config and manifest; returns the manifest's descriptor.
    pub fn add_image_with(&self, layers: &[Layer], config: &Value) -> RawImage {
        let stored: Vec<StoredLayer> = layers.iter().map(|l| self.put_layer(l)).collect();
        self.add_image_of_stored(&stored, config)
    }

    /// Writes config and manifest for layers already in the layout.
    pub fn add_image_of_stored(&self, layers: &[StoredLayer], config: &Value) -> RawImage {
        let config = serde_json::to_vec(config).unwrap();
        self.put_blob(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": descriptor(CONFIG_MEDIA_TYPE, &config),
            "layers": layers.iter().map(|l| l.descriptor.clone()).collect::<Vec<_>>(),
        });
        RawImage {
            descriptor: self.add_manifest_bytes(&serde_json::to_vec(&manifest).unwrap()),
            id: oci_id(&config),
        }
    }

    pub fn put_layer(&self, layer: &Layer) -> StoredLayer {
        self.put_blob(&layer.blob);
        StoredLayer {
            descriptor: descriptor(&layer.media_type, &layer.blob),
            diff_id: layer.diff_id.clone(),
        }
    }

    /// Streams an uncompressed layer of `files` files of `file_size` pseudo-random bytes
    /// (under `data/`) into the layout, never holding it in memory.
    pub fn put_random_layer(&self, files: usize, file_size: usize, seed: u64) -> StoredLayer {
        let part = self.dir.join("blobs/sha256/.partial");
        let mut out = HashingWriter::create(&part);
        let mut rng = XorShift(seed | 1);
        out.put(&TarWriter::new().dir("data").unterminated());
        let mut data = vec![0u8; file_size];
        for i in 0..files {
            rng.fill(&mut data);
            out.put(
                &TarWriter::new()
                    .file(&format!("data/{i:05}"), &data)
                    .unterminated(),
            );
        }
        out.put(&[0u8; 1024]);
        let (hex, size) = out.finish();
        std::fs::rename(&part, self.dir.join("blobs/sha256").join(&hex)).unwrap();
        let digest = format!("sha256:{hex}");
        StoredLayer {
            descriptor: json!({"mediaType": Compression::None.oci_media_type(), "digest": digest, "size": size}),
            diff_id: digest,
        }
    }

    /// An image for linux/amd64 with these layers.
    pub fn add_image(&self, layers: &[Layer]) -> RawImage {
        self.add_image_with(layers, &image_config("amd64", layers))
    }

    /// Stores a manifest exactly as given; returns its descriptor.
    pub fn add_manifest_bytes(&self, manifest: &[u8]) -> Value {
        self.put_blob(manifest);
        descriptor(MANIFEST_MEDIA_TYPE, manifest)
    }

    /// Stores an image index over `(manifest descriptor, os, arch)`; returns its descriptor.
    pub fn add_index(&self, entries: &[(&Value, &str, &str)]) -> Value {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(desc, os, arch)| {
                let mut d = (*desc).clone();
                d["platform"] = json!({"os": os, "architecture": arch});
                d
            })
            .collect();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": manifests,
        }))
        .unwrap();
        self.put_blob(&index);
        descriptor(INDEX_MEDIA_TYPE, &index)
    }

    /// Names `descriptor` `tag` in index.json.
    pub fn tag(&mut self, descriptor: &Value, tag: &str) -> String {
        let mut d = descriptor.clone();
        d["annotations"] = json!({ REF_ANNOTATION: tag });
        self.tagged.push(d);
        self.write_index();
        self.reference(tag)
    }

    fn write_index(&self) {
        let index =
            json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": self.tagged});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// `oci:DIR:TAG`
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

/// A layout at `dir` holding one amd64 image of `layers`, tagged `latest`; returns the
/// reference to fetch and the ID to expect.
pub fn raw_image_layout(dir: &Path, layers: &[Layer]) -> (String, String) {
    let mut layout = RawLayout::create(dir);
    let image = layout.add_image(layers);
    (layout.tag(&image.descriptor, "latest"), image.id)
}

/// xorshift64*: fast pseudo-random bytes that no compressor can shrink.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A layout at `dir` holding one image whose single uncompressed layer is `files` files
/// of `file_size` random bytes; returns the reference and the ID to expect.
pub fn random_image_layout(dir: &Path, files: usize, file_size: usize) -> (String, String) {
    let mut layout = RawLayout::create(dir);
    let layer = layout.put_random_layer(files, file_size, 0x5eed);
    let config = image_config_for("amd64", vec![layer.diff_id.clone()]);
    let image = layout.add_image_of_stored(&[layer], &config);
    (layout.tag(&image.descriptor, "latest"), image.id)
}

/// A file written through sha256: (hex digest, size) at the end.
struct HashingWriter {
    out: std::io::BufWriter<std::fs::File>,
    hasher: sha2::Sha256,
    size: u64,
}

impl HashingWriter {
    fn create(path: &Path) -> HashingWriter {
        HashingWriter {
            out: std::io::BufWriter::new(std::fs::File::create(path).unwrap()),
            hasher: sha2::Digest::new(),
            size: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self.out, bytes).unwrap();
        sha2::Digest::update(&mut self.hasher, bytes);
        self.size += bytes.len() as u64;
    }

    fn finish(mut self) -> (String, u64) {
        std::io::Write::flush(&mut self.out).unwrap();
        let hex = sha2::Digest::finalize(self.hasher)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (hex, self.size)
    }
}

/// A `docker save` tarball written by hand: a manifest.json naming `config` and `layers`
/// (member names, which may be hostile) and tagged `repo_tag`, then whatever `members`
/// writes.
pub fn raw_docker_archive(
    config: &str,
    layers: &[&str],
    repo_tag: &str,
    members: impl FnOnce(&mut TarWriter),
) -> Vec<u8> {
    let manifest = json!([{"Config": config, "RepoTags": [repo_tag], "Layers": layers}]);
    let mut t = TarWriter::new();
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    members(&mut t);
    t.finish()
}

/// A `docker save` tarball of several images, written by hand.
#[derive(Default)]
pub struct DockerArchiveBuilder {
    tar: TarWriter,
    entries: Vec<Value>,
}

impl DockerArchiveBuilder {
    pub fn new() -> DockerArchiveBuilder {
        DockerArchiveBuilder::default()
    }

    /// Adds an image of these uncompressed layer tars tagged `repo_tag`; returns the ID
    /// vessel should give it (`sha256-` of its config).
    pub fn add_image(&mut self, repo_tag: &str, layers: &[Vec<u8>]) -> String {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_oci(l)).collect();
        let mut config = image_config_for("amd64", diff_ids);
        config["config"]["Labels"] = json!({ "tag": repo_tag });
        let config = serde_json::to_vec(&config).unwrap();
        let config_name = format!("{}.json", sha256_hex(&config));
        self.tar.file(&config_name, &config);
        let mut names = Vec::new();
        for layer in layers {
            let name = format!("{}/layer.tar", sha256_hex(layer));
            self.tar.file(&name, layer);
            names.push(name);
        }
        self.entries
            .push(json!({"Config": config_name, "RepoTags": [repo_tag], "Layers": names}));
        oci_id(&config)
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.tar
            .file("manifest.json", &serde_json::to_vec(&self.entries).unwrap());
        self.tar.finish()
    }
}

/// Packs a layout directory as an `oci-archive` tarball with the system's tar.
pub fn tar_layout(layout: &Path, file: &Path) {
    run_tool(
        Command::new("tar")
            .arg("-C")
            .arg(layout)
            .arg("-cf")
            .arg(file)
            .args(["oci-layout", "index.json", "blobs"]),
    );
}
