//! Content digests: `sha256:<hex>` (OCI) and `sha512-<hex>` (appc image IDs), and
//! readers/writers that hash what passes through them.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest. The hex part is lower-case and of the algorithm's exact length, so
/// it is always safe to use as a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algo: Algorithm,
    hex: String,
}

impl Digest {
    pub fn new(algo: Algorithm, hex: &str) -> Result<Self, String> {
        if hex.len() != algo.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "{hex:?} is not a {} digest ({} lower-case hex digits)",
                algo.name(),
                algo.hex_len()
            ));
        }
        Ok(Digest {
            algo,
            hex: hex.to_string(),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The OCI form, `sha256:<hex>`.
    pub fn oci(&self) -> String {
        format!("{}:{}", self.algo.name(), self.hex)
    }

    /// The appc form, `sha512-<hex>`, used for image IDs and store file names.
    pub fn key(&self) -> String {
        format!("{}-{}", self.algo.name(), self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.algo.name(), self.hex)
    }
}

/// Accepts `sha256:<hex>`, `sha256-<hex>`, `sha512:<hex>` and `sha512-<hex>`.
impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (algo, hex) = s
            .split_once([':', '-'])
            .ok_or_else(|| format!("{s:?} is not a digest (expected sha256:<hex>)"))?;
        let algo = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(format!("unsupported digest algorithm {other:?} in {s:?}")),
        };
        Digest::new(algo, hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A running hash of either algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algo: Algorithm) -> Self {
        match algo {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algo, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algo, hex }
    }
}

pub fn sha256(data: &[u8]) -> Digest {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(data);
    h.finish()
}

/// Hashes everything read through it, and counts it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R, algo: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algo),
            count: 0,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Reads whatever is left (a tar's trailing padding, say) so the digest covers the
    /// whole stream, then returns the digest and the byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, algo: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(algo),
        }
    }

    pub fn finish(self) -> (W, Digest) {
        (self.inner, self.hasher.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let hex = "a".repeat(64);
        let a: Digest = format!("sha256:{hex}").parse().unwrap();
        let b: Digest = format!("sha256-{hex}").parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.oci(), format!("sha256:{hex}"));
        assert_eq!(a.key(), format!("sha256-{hex}"));
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "sha256:abc",
            "md5:abcd",
            "sha256:../../../../etc/passwd",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha512-{}", "a".repeat(64)),
            "nocolon",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn hashes_known_value() {
        assert_eq!(
            sha256(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut r = HashingReader::new(&b"abc"[..], Algorithm::Sha512);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 3);
        assert!(d.hex().starts_with("ddaf35a193617aba"));
    }
}
