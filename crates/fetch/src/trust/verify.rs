//! Checking an ACI against its detached OpenPGP signature with the keys trusted for its
//! name. Every refusal names the image, the key's fingerprint, and the command that would
//! trust the key.
//!
//! The check is split in two so that an image is read once: the signing key is chosen by
//! the signature's issuer before the data streams (`SignerCheck::start` hashes it on a
//! thread of its own while the store extracts it), and the verdict (`judge`) is given once
//! the image's name is known from its manifest, before anything is committed.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{PublicKey, PublicSubkey, Signature};
use pgp::types::KeyDetails;

use super::keys::{fingerprint_hex, primary_state, subkey_state};
use super::keystore::{Scope, TrustedKey};
use crate::error::{FetchError, Result};

/// The key that vouched for an image.
#[derive(Debug, Clone)]
pub struct Verified {
    pub fingerprint: String,
    pub scope: Scope,
}

/// Parses an armored (or binary) detached signature.
pub fn parse_signature(data: &[u8], image: &str, from: &str) -> Result<DetachedSignature> {
    let trimmed = data.trim_ascii_start();
    let parsed = if trimmed.starts_with(b"-----BEGIN") {
        DetachedSignature::from_armor_single(BufReader::new(trimmed)).map(|(s, _)| s)
    } else {
        DetachedSignature::from_bytes(trimmed)
    };
    parsed.map_err(|e| {
        FetchError::refused(
            image,
            format!("the signature {from} is not an OpenPGP signature ({e})"),
        )
    })
}

/// Who the signature says made it: fingerprints and key IDs, in hex.
fn issuers(sig: &Signature) -> Vec<String> {
    sig.issuer_fingerprint()
        .iter()
        .map(|f| hex::encode(f.as_bytes()))
        .chain(sig.issuer_key_id().iter().map(|k| hex::encode(k.as_ref())))
        .collect()
}

/// Which part of a key made the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    Primary,
    Sub(usize),
}

fn component_matching(key: &SignedPublicKey, issuers: &[String]) -> Option<Component> {
    let matches =
        |fp: String, id: String| issuers.is_empty() || issuers.iter().any(|i| *i == fp || *i == id);
    if matches(
        fingerprint_hex(&key.primary_key),
        hex::encode(key.primary_key.legacy_key_id().as_ref()),
    ) {
        return Some(Component::Primary);
    }
    key.public_subkeys
        .iter()
        .position(|s| {
            matches(
                fingerprint_hex(&s.key),
                hex::encode(s.key.legacy_key_id().as_ref()),
            )
        })
        .map(Component::Sub)
}

enum VerifyingKey {
    Primary(PublicKey),
    Sub(PublicSubkey),
}

/// The chosen key's fingerprint, the part of it that signed, and the thread checking.
type Signer = (
    String,
    Component,
    JoinHandle<std::result::Result<(), String>>,
);

/// The cryptographic check of a signature over a stream, run on its own thread.
pub struct SignerCheck {
    signature: DetachedSignature,
    issuers: Vec<String>,
    /// The trusted key (any scope) the issuer names, if there is one, and the thread
    /// checking the signature with it.
    signer: Option<Signer>,
    tx: Option<SyncSender<Vec<u8>>>,
}

impl SignerCheck {
    /// Chooses the signing key among every trusted key and starts checking; feed the
    /// data through `tee`.
    pub fn start(all: &[TrustedKey], signature: DetachedSignature) -> SignerCheck {
        let issuers = issuers(&signature.signature);
        let found = all
            .iter()
            .find_map(|k| component_matching(&k.key, &issuers).map(|c| (k, c)));
        let Some((tk, comp)) = found else {
            return SignerCheck {
                signature,
                issuers,
                signer: None,
                tx: None,
            };
        };
        let key = match comp {
            Component::Primary => VerifyingKey::Primary(tk.key.primary_key.clone()),
            Component::Sub(i) => VerifyingKey::Sub(tk.key.public_subkeys[i].key.clone()),
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(16);
        let sig = signature.signature.clone();
        let handle = std::thread::spawn(move || {
            let data = ChannelReader {
                rx,
                buf: Vec::new(),
                pos: 0,
            };
            let r = match &key {
                VerifyingKey::Primary(k) => sig.verify(k, data),
                VerifyingKey::Sub(k) => sig.verify(k, data),
            };
            r.map_err(|e| e.to_string())
        });
        SignerCheck {
            signature,
            issuers,
            signer: Some((tk.fingerprint.clone(), comp, handle)),
            tx: Some(tx),
        }
    }

    /// Wraps the image's byte stream so the check sees exactly what the store reads.
    pub fn tee<R: Read>(&mut self, inner: R) -> Tee<R> {
        Tee {
            inner,
            tx: self.tx.take(),
        }
    }

    /// The verdict for an image named `name` (from its manifest), shown as `image`.
    pub fn judge(self, all: &[TrustedKey], name: &str, image: &str) -> Result<Verified> {
        let SignerCheck {
            signature,
            issuers,
            signer,
            tx,
        } = self;
        drop(tx);
        let Some((fp, comp, handle)) = signer else {
            return Err(untrusted(all, name, image, &issuers));
        };
        let crypto = handle
            .join()
            .unwrap_or_else(|_| Err("the checking thread failed".into()));
        let Some(tk) = all
            .iter()
            .find(|k| k.fingerprint == fp && k.scope.covers(name))
        else {
            return Err(untrusted(all, name, image, &issuers));
        };
        let now = chrono::Utc::now();
        if let Err(why) = primary_state(&tk.key, now) {
            return Err(FetchError::refused(
                image,
                format!(
                    "signed by key {fp}, which {why}; get a current key from the image's publisher and trust it with `vessel trust {} KEY_FILE`",
                    Scope::Prefix(name.into()).flag()
                ),
            ));
        }
        if let Component::Sub(i) = comp {
            let sub = &tk.key.public_subkeys[i];
            if let Err(why) = subkey_state(&tk.key, sub, now) {
                return Err(FetchError::refused(
                    image,
                    format!(
                        "signed by subkey {} of key {fp}, which {why}",
                        fingerprint_hex(&sub.key)
                    ),
                ));
            }
        }
        if let Err(e) = crypto {
            return Err(FetchError::refused(
                image,
                format!("the signature by key {fp} does not match the image: bad signature ({e})"),
            ));
        }
        let sig = &signature.signature;
        if let (Some(created), Some(valid_for)) = (sig.created(), sig.signature_expiration_time()) {
            let created =
                chrono::DateTime::from_timestamp(created.as_secs() as i64, 0).unwrap_or_default();
            let d = chrono::Duration::seconds(valid_for.as_secs() as i64);
            {
                if valid_for.as_secs() != 0 && created + d <= now {
                    return Err(FetchError::refused(
                        image,
                        format!(
                            "the signature by key {fp} expired on {}",
                            (created + d).format("%Y-%m-%d")
                        ),
                    ));
                }
            }
        }
        Ok(Verified {
            fingerprint: fp,
            scope: tk.scope.clone(),
        })
    }
}

/// The error for a signature by no key trusted for `name`: say whether the key is trusted
/// for another prefix, and how to trust it for this image.
fn untrusted(all: &[TrustedKey], name: &str, image: &str, issuers: &[String]) -> FetchError {
    let elsewhere = all
        .iter()
        .find(|k| !issuers.is_empty() && component_matching(&k.key, issuers).is_some());
    if let Some(k) = elsewhere {
        return FetchError::refused(
            image,
            format!(
                "signed by key {}, which is trusted only for {}, not for {name}; to trust it for this image: vessel trust --prefix={name} {}",
                k.fingerprint,
                k.scope,
                k.path.display()
            ),
        );
    }
    let shown = issuers
        .first()
        .cloned()
        .unwrap_or_else(|| "(the signature names no key)".into());
    FetchError::refused(
        image,
        format!(
            "signed by key {shown}, which is not trusted for {name}; if you trust its publisher: vessel trust --prefix={name} KEY_FILE_OR_URL (or --root for every image)"
        ),
    )
}

/// Passes reads through, sending a copy of every byte to the signature check.
pub struct Tee<R> {
    inner: R,
    tx: Option<SyncSender<Vec<u8>>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(tx) = &self.tx {
                if tx.send(buf[..n].to_vec()).is_err() {
                    self.tx = None; // the check ended early; its verdict says why
                }
            }
        } else {
            self.tx = None; // end of data: the check finishes
        }
        Ok(n)
    }
}

struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
