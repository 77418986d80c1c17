//! OpenPGP public keys as the trust store holds them: parsed, named by fingerprint, and
//! judged usable (not revoked, not expired) at a given time.

use std::io::{BufReader, Read};

use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};

/// A key's fingerprint as the trust store names its files: lower-case hex.
pub fn fingerprint_hex(key: &impl KeyDetails) -> String {
    hex::encode(key.fingerprint().as_bytes())
}

/// Every public key in `data`: ASCII-armored (one or several blocks) or binary.
pub fn parse_keys(data: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let text_start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let keys: Vec<SignedPublicKey> = if data[text_start..].starts_with(b"-----BEGIN") {
        let (iter, _) = SignedPublicKey::from_armor_many(BufReader::new(data))
            .map_err(|e| format!("not an armored OpenPGP public key: {e}"))?;
        iter.collect::<Result<_, _>>()
            .map_err(|e| format!("not a valid OpenPGP public key: {e}"))?
    } else {
        SignedPublicKey::from_bytes_many(data)
            .map_err(|e| format!("not an OpenPGP public key: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("not a valid OpenPGP public key: {e}"))?
    };
    if keys.is_empty() {
        return Err("holds no OpenPGP public key".into());
    }
    for k in &keys {
        k.verify_bindings().map_err(|e| {
            format!(
                "key {} has an invalid self-signature: {e}",
                fingerprint_hex(k)
            )
        })?;
    }
    Ok(keys)
}

/// The armored form a key is stored in.
pub fn armored(key: &SignedPublicKey) -> Vec<u8> {
    key.to_armored_bytes(Default::default())
        .expect("serialising a parsed key")
}

/// The user IDs of a key, for showing it to a person.
pub fn user_ids(key: &SignedPublicKey) -> Vec<String> {
    key.details
        .users
        .iter()
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .collect()
}

/// Why a key (or the subkey that signed) may not be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Revoked,
    Expired(chrono::DateTime<chrono::Utc>),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Revoked => write!(f, "is revoked"),
            Unusable::Expired(t) => write!(f, "expired on {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        }
    }
}

fn to_utc(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.as_secs() as i64, 0).unwrap_or_default()
}

fn created_secs(sig: &Signature) -> u32 {
    sig.created().map(|t| t.as_secs()).unwrap_or(0)
}

/// When a key created at `created` expires, by its newest valid self-signature.
fn expiry(created: Timestamp, newest: Option<&Signature>) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = newest?.key_expiration_time()?.as_secs();
    if secs == 0 {
        return None; // zero means "does not expire"
    }
    Some(to_utc(created) + chrono::Duration::seconds(secs as i64))
}

/// Whether the primary key may be used at `now`.
pub fn primary_state(
    key: &SignedPublicKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Unusable> {
    let revoked = key
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(&key.primary_key).is_ok());
    if revoked {
        return Err(Unusable::Revoked);
    }
    // The newest self-signature (user ID certification or direct key signature) holds the
    // key's current expiration time. verify_bindings checked them when the key was parsed.
    let newest = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .filter(|s| {
            !matches!(
                s.typ(),
                Some(SignatureType::CertRevocation) | Some(SignatureType::KeyRevocation)
            )
        })
        .max_by_key(|s| created_secs(s));
    match expiry(key.primary_key.created_at(), newest) {
        Some(t) if t <= now => Err(Unusable::Expired(t)),
        _ => Ok(()),
    }
}

/// Whether a subkey may sign at `now` (its primary key checked separately).
pub fn subkey_state(
    primary: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Unusable> {
    let valid: Vec<&Signature> = sub
        .signatures
        .iter()
        .filter(|s| {
            s.verify_subkey_binding(&primary.primary_key, &sub.key)
                .is_ok()
        })
        .collect();
    if valid
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return Err(Unusable::Revoked);
    }
    let newest = valid
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|s| created_secs(s))
        .copied();
    match expiry(sub.key.created_at(), newest) {
        Some(t) if t <= now => Err(Unusable::Expired(t)),
        _ => Ok(()),
    }
}

/// Reads a whole (small) key or signature file.
pub fn read_all(mut r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}
