//! Checking an ACI against its detached OpenPGP signature with the keys trusted for its
//! name. Every refusal names the image, the key's fingerprint, and the command that would
//! trust the key.
//!
//! The check is split in two so that an image is read once: before the data streams,
//! `SignerCheck::start` checks the signature, on threads of their own while the store
//! extracts the image, with each trusted key part (primary key or subkey, by fingerprint)
//! the signature's issuer names; the verdict (`judge`) is given once the image's name is
//! known from its manifest, before anything is committed. It takes a key trusted for that
//! name, and the signature and the key's state (revoked, expired, allowed to sign) are
//! judged on the same part of the same key; no part is ever found by position.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{PublicKey, PublicSubkey, Signature};
use pgp::types::KeyDetails;

use super::keys::{fingerprint_hex, signing_state};
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

/// Who the signature says made it: its issuer fingerprints if it names any (exact), else
/// its issuer key IDs, in lower-case hex.
#[derive(Debug, Clone, Default)]
struct Issuers {
    fingerprints: Vec<String>,
    key_ids: Vec<String>,
}

impl Issuers {
    fn of(sig: &Signature) -> Issuers {
        Issuers {
            fingerprints: sig
                .issuer_fingerprint()
                .iter()
                .map(|f| hex::encode(f.as_bytes()))
                .collect(),
            key_ids: sig
                .issuer_key_id()
                .iter()
                .map(|k| hex::encode(k.as_ref()))
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.fingerprints.is_empty() && self.key_ids.is_empty()
    }

    /// Whether a key (primary or subkey) is the one named. A fingerprint, when the
    /// signature gives one, is the only thing that counts; a key ID otherwise. A signature
    /// that names no key matches nothing (as in rkt, whose Go OpenPGP needs the issuer).
    fn names(&self, key: &impl KeyDetails) -> bool {
        if !self.fingerprints.is_empty() {
            let fp = fingerprint_hex(key);
            return self.fingerprints.contains(&fp);
        }
        let id = hex::encode(key.legacy_key_id().as_ref());
        self.key_ids.contains(&id)
    }

    fn shown(&self) -> String {
        self.fingerprints
            .first()
            .or(self.key_ids.first())
            .cloned()
            .unwrap_or_else(|| "(the signature names no key)".into())
    }
}

/// A part of a trusted key the signature names: the key's (primary) fingerprint and the
/// fingerprint of the part (the same for the primary key, a subkey's own otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    key: String,
    component: String,
}

/// The parts of `key` the issuer names: its primary key and its subkeys, by fingerprint.
fn parts_named<'k>(
    key: &'k SignedPublicKey,
    issuers: &'k Issuers,
) -> impl Iterator<Item = (Part, VerifyingKey)> + 'k {
    let key_fp = fingerprint_hex(&key.primary_key);
    let primary = issuers.names(&key.primary_key).then(|| {
        (
            Part {
                key: key_fp.clone(),
                component: key_fp.clone(),
            },
            VerifyingKey::Primary(key.primary_key.clone()),
        )
    });
    let subs = key
        .public_subkeys
        .iter()
        .filter(|s| issuers.names(&s.key))
        .map(move |s| {
            (
                Part {
                    key: key_fp.clone(),
                    component: fingerprint_hex(&s.key),
                },
                VerifyingKey::Sub(s.key.clone()),
            )
        });
    primary.into_iter().chain(subs)
}

enum VerifyingKey {
    Primary(PublicKey),
    Sub(PublicSubkey),
}

/// At most this many different keys are tried for one signature (several only when key
/// IDs collide).
const MAX_CANDIDATES: usize = 4;

/// The cryptographic check of a signature over a stream, run on threads of their own: one
/// per distinct key (by fingerprint) among the trusted keys that the issuer names.
pub struct SignerCheck {
    signature: DetachedSignature,
    issuers: Issuers,
    /// (fingerprint of the key part, the thread checking the signature with it).
    checks: Vec<(String, JoinHandle<std::result::Result<(), String>>)>,
    txs: Vec<SyncSender<Vec<u8>>>,
}

impl SignerCheck {
    /// Starts checking the signature with every key part, among all trusted keys, that the
    /// signature's issuer names; feed the data through `tee`. Which of them may vouch for
    /// the image is decided by `judge`, once the image's name is known.
    pub fn start(all: &[TrustedKey], signature: DetachedSignature) -> SignerCheck {
        let issuers = Issuers::of(&signature.signature);
        let mut checks = Vec::new();
        let mut txs = Vec::new();
        for tk in all {
            for (part, key) in parts_named(&tk.key, &issuers) {
                if checks.len() >= MAX_CANDIDATES
                    || checks.iter().any(|(c, _)| *c == part.component)
                {
                    continue; // the same key material (same fingerprint) is checked once
                }
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
                checks.push((part.component, handle));
                txs.push(tx);
            }
        }
        SignerCheck {
            signature,
            issuers,
            checks,
            txs,
        }
    }

    /// Wraps the image's byte stream so the check sees exactly what the store reads.
    pub fn tee<R: Read>(&mut self, inner: R) -> Tee<R> {
        Tee {
            inner,
            txs: std::mem::take(&mut self.txs),
        }
    }

    /// The verdict for an image named `name` (from its manifest), shown as `image`.
    ///
    /// The signing key is chosen among the trusted keys covering `name` by the signature's
    /// issuer; the signature, and the revocation, expiry and signing capability of the
    /// very part (primary key or subkey, by fingerprint) that made it, are checked on that
    /// key. Copies of the same key elsewhere in the trust store count too: a revocation in
    /// any of them refuses, and the newest self-signature among them rules.
    pub fn judge(self, all: &[TrustedKey], name: &str, image: &str) -> Result<Verified> {
        let SignerCheck {
            signature,
            issuers,
            checks,
            txs,
        } = self;
        drop(txs);
        let crypto: Vec<(String, std::result::Result<(), String>)> = checks
            .into_iter()
            .map(|(fp, handle)| {
                let r = handle
                    .join()
                    .unwrap_or_else(|_| Err("the checking thread failed".into()));
                (fp, r)
            })
            .collect();
        // The parts the issuer names in keys trusted for this name, each once.
        let mut candidates: Vec<(Part, &TrustedKey)> = Vec::new();
        for tk in all.iter().filter(|k| k.scope.covers(name)) {
            for (part, _) in parts_named(&tk.key, &issuers) {
                if !candidates.iter().any(|(p, _)| *p == part) {
                    candidates.push((part, tk));
                }
            }
        }
        if candidates.is_empty() {
            return Err(untrusted(all, name, image, &issuers));
        }
        let now = chrono::Utc::now();
        let mut refusal = None;
        for (part, tk) in &candidates {
            let verdict = judge_part(all, part, &crypto, &signature.signature, image, name, now);
            match verdict {
                Ok(()) => {
                    return Ok(Verified {
                        fingerprint: part.key.clone(),
                        scope: tk.scope.clone(),
                    })
                }
                Err(e) => {
                    refusal.get_or_insert(e);
                }
            }
        }
        Err(refusal.unwrap_or_else(|| untrusted(all, name, image, &issuers)))
    }
}

/// Whether `part` of a trusted key may vouch for the image: usable now (taking every
/// trusted copy of its key together), and the signature checks out with it.
fn judge_part(
    all: &[TrustedKey],
    part: &Part,
    crypto: &[(String, std::result::Result<(), String>)],
    sig: &Signature,
    image: &str,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let fp = &part.key;
    let copies: Vec<&SignedPublicKey> = all
        .iter()
        .filter(|k| fingerprint_hex(&k.key.primary_key) == *fp)
        .map(|k| &k.key)
        .collect();
    if let Err(why) = signing_state(&copies, &part.component, now) {
        let what = if part.component == *fp {
            format!("key {fp}")
        } else {
            format!("subkey {} of key {fp}", part.component)
        };
        return Err(FetchError::refused(
            image,
            format!(
                "signed by {what}, which {why}; get a current key from the image's publisher and trust it with `vessel trust {} KEY_FILE`",
                Scope::Prefix(name.into()).flag()
            ),
        ));
    }
    let checked = crypto
        .iter()
        .find(|(c, _)| *c == part.component)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| Err("too many keys match the signature's issuer".into()));
    if let Err(e) = checked {
        return Err(FetchError::refused(
            image,
            format!("the signature by key {fp} does not match the image: bad signature ({e})"),
        ));
    }
    if let (Some(created), Some(valid_for)) = (sig.created(), sig.signature_expiration_time()) {
        let created =
            chrono::DateTime::from_timestamp(created.as_secs() as i64, 0).unwrap_or_default();
        let until = created + chrono::Duration::seconds(valid_for.as_secs() as i64);
        if valid_for.as_secs() != 0 && until <= now {
            return Err(FetchError::refused(
                image,
                format!(
                    "the signature by key {fp} expired on {}",
                    until.format("%Y-%m-%d")
                ),
            ));
        }
    }
    Ok(())
}

/// The error for a signature by no key trusted for `name`: say whether the key is trusted
/// for another prefix, and how to trust it for this image.
fn untrusted(all: &[TrustedKey], name: &str, image: &str, issuers: &Issuers) -> FetchError {
    let elsewhere = all
        .iter()
        .find(|k| !issuers.is_empty() && parts_named(&k.key, issuers).next().is_some());
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
    let shown = issuers.shown();
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
    txs: Vec<SyncSender<Vec<u8>>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            // A check that ended early is dropped; its verdict says why.
            self.txs.retain(|tx| tx.send(buf[..n].to_vec()).is_ok());
        } else {
            self.txs.clear(); // end of data: the checks finish
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
