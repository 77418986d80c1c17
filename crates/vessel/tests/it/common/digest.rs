//! Digests as OCI and appc write them.

use sha2::{Digest as _, Sha256, Sha512};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// `sha256:<hex>`, as OCI descriptors name blobs.
pub fn sha256_oci(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// `sha512-<hex>`: an ACI's image ID, the hash of its uncompressed tar.
pub fn aci_id(uncompressed_tar: &[u8]) -> String {
    format!("sha512-{}", hex(&Sha512::digest(uncompressed_tar)))
}

/// `sha256-<hex>`: an OCI image's ID, the hash of its config blob.
pub fn oci_id(config: &[u8]) -> String {
    format!("sha256-{}", sha256_hex(config))
}

/// Streams a file through sha256.
pub fn sha256_file(path: &std::path::Path) -> String {
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if n == 0 {
            return hex(&h.finalize());
        }
        h.update(&buf[..n]);
    }
}
