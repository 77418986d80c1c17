//! Identity: the service holds one random key; each pod's HMAC key is derived from it and
//! the pod's UUID (`HMAC-SHA512(service key, "vessel-mds-pod-key" || uuid bytes)`). So each
//! pod has a key of its own, nothing per pod needs storing, a signature still verifies
//! after its pod has gone, and restarting the service (the key file survives it) changes
//! nothing. Signatures are `HMAC-SHA512(pod key, content)`, base64 (standard, padded).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha512;

type HmacSha512 = Hmac<Sha512>;

/// Length of an HMAC-SHA512.
pub const SIGNATURE_LEN: usize = 64;
const KEY_LEN: usize = 64;

pub struct ServiceKey([u8; KEY_LEN]);

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature is not base64")]
    NotBase64,
    #[error("signature is {0} bytes; an HMAC-SHA512 is {SIGNATURE_LEN}")]
    WrongLength(usize),
    #[error("signature does not match")]
    Mismatch,
}

impl ServiceKey {
    pub fn from_bytes(b: [u8; KEY_LEN]) -> ServiceKey {
        ServiceKey(b)
    }

    /// Reads the key at `path`, or makes one (random, 0600, written whole or not at all).
    pub fn load_or_create(path: &Path) -> io::Result<ServiceKey> {
        match fs::read(path) {
            Ok(b) if b.len() == KEY_LEN => {
                let mut k = [0u8; KEY_LEN];
                k.copy_from_slice(&b);
                return Ok(ServiceKey(k));
            }
            Ok(b) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {} bytes, expected {KEY_LEN}", path.display(), b.len()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut k = [0u8; KEY_LEN];
        rustix::rand::getrandom(&mut k, rustix::rand::GetRandomFlags::empty())?;
        let tmp = path.with_extension("tmp");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&k)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(ServiceKey(k))
    }

    fn pod_mac(&self, uuid: &uuid::Uuid) -> HmacSha512 {
        let mut m = HmacSha512::new_from_slice(&self.0).expect("any key length");
        m.update(b"vessel-mds-pod-key");
        m.update(uuid.as_bytes());
        let pod_key = m.finalize().into_bytes();
        HmacSha512::new_from_slice(&pod_key).expect("any key length")
    }

    /// The signature of `content` by the pod `uuid`, base64.
    pub fn sign(&self, uuid: &uuid::Uuid, content: &[u8]) -> String {
        let mut m = self.pod_mac(uuid);
        m.update(content);
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    }

    /// Checks `signature` (base64) of `content` by the pod `uuid`, in constant time.
    pub fn verify(
        &self,
        uuid: &uuid::Uuid,
        content: &[u8],
        signature: &str,
    ) -> Result<(), VerifyError> {
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| VerifyError::NotBase64)?;
        if sig.len() != SIGNATURE_LEN {
            return Err(VerifyError::WrongLength(sig.len()));
        }
        let mut m = self.pod_mac(uuid);
        m.update(content);
        m.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_pods_uuid_and_content() {
        let k = ServiceKey([7; KEY_LEN]);
        let a = uuid::Uuid::new_v4();
        let b = uuid::Uuid::new_v4();
        let sig = k.sign(&a, b"hello");
        assert_eq!(sig.len(), 88);
        assert_eq!(k.verify(&a, b"hello", &sig), Ok(()));
        assert_eq!(k.verify(&b, b"hello", &sig), Err(VerifyError::Mismatch));
        assert_eq!(k.verify(&a, b"hellO", &sig), Err(VerifyError::Mismatch));
        assert_ne!(k.sign(&b, b"hello"), sig);
        // Another service key, another identity.
        assert_eq!(
            ServiceKey([8; KEY_LEN]).verify(&a, b"hello", &sig),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn malformed_signatures_are_told_apart() {
        let k = ServiceKey([7; KEY_LEN]);
        let a = uuid::Uuid::new_v4();
        assert_eq!(k.verify(&a, b"x", "%%%"), Err(VerifyError::NotBase64));
        assert_eq!(k.verify(&a, b"x", "AAAA"), Err(VerifyError::WrongLength(3)));
        let sig = k.sign(&a, b"x");
        assert_eq!(
            k.verify(&a, b"x", &sig[..44]),
            Err(VerifyError::WrongLength(33))
        );
    }

    #[test]
    fn the_key_file_is_made_once_and_read_again() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        let a = uuid::Uuid::new_v4();
        let s1 = ServiceKey::load_or_create(&p).unwrap().sign(&a, b"c");
        let s2 = ServiceKey::load_or_create(&p).unwrap().sign(&a, b"c");
        assert_eq!(s1, s2);
        fs::write(&p, b"short").unwrap();
        assert!(ServiceKey::load_or_create(&p).is_err());
    }
}
