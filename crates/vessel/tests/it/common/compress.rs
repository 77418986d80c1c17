//! Compression by the system's own tools (the producers users have), and a gzip bomb made
//! in-process.

use std::io::Write;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    fn tool(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Bzip2 => Some("bzip2"),
            Compression::Xz => Some("xz"),
            Compression::Zstd => Some("zstd"),
        }
    }

    /// The OCI layer media type for this compression, where OCI defines one.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            other => panic!("OCI has no layer media type for {other:?}"),
        }
    }

    /// Compresses `data` by piping it through `gzip -c`, `xz -c` and so on.
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        let Some(tool) = self.tool() else {
            return data.to_vec();
        };
        let mut child = Command::new(tool)
            .args(["-c", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {tool} (is it installed?): {e}"));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = data.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child
            .wait_with_output()
            .expect("waiting for the compressor");
        feeder
            .join()
            .expect("feeder thread")
            .expect("writing to the compressor");
        assert!(out.status.success(), "{tool} -c failed: {}", out.status);
        out.stdout
    }
}

/// A gzip stream of a tar holding one file of `zero_bytes` zeros named `name`, made
/// without ever holding the zeros in memory. Deflate shrinks zeros about 1000 times.
pub fn gzip_bomb_tar(prefix: &super::tar::TarWriter, name: &str, zero_bytes: u64) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut head = super::tar::TarWriter::new();
    let mut h = super::tar::Header::new(b'0', name);
    h.size = zero_bytes;
    head.header(&h);
    enc.write_all(&prefix.unterminated()).unwrap();
    enc.write_all(&head.unterminated()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let pad = (512 - zero_bytes % 512) % 512;
    let mut left = zero_bytes + pad + 1024; // the data, its padding, the end-of-archive blocks
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    enc.finish().unwrap()
}
