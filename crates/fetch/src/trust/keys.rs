//! OpenPGP public keys as the trust store holds them: parsed, named by fingerprint, and
//! judged usable (not revoked, not expired) at a given time.

use std::io::BufReader;

use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Tag, Timestamp};

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

/// Why a key (or the subkey that signed) may not be used to sign now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Revoked,
    Expired(chrono::DateTime<chrono::Utc>),
    /// Its key flags do not allow signing.
    NotForSigning,
    /// No valid binding signature (with a valid back-signature) ties it to its primary key.
    NotBound,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Revoked => write!(f, "is revoked"),
            Unusable::Expired(t) => write!(f, "expired on {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            Unusable::NotForSigning => write!(f, "is not marked for signing (its key flags)"),
            Unusable::NotBound => write!(
                f,
                "is not bound to its primary key by a valid signing-subkey binding"
            ),
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
fn expiry(created: Timestamp, newest: &Signature) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = newest.key_expiration_time()?.as_secs();
    if secs == 0 {
        return None; // zero means "does not expire"
    }
    Some(to_utc(created) + chrono::Duration::seconds(secs as i64))
}

/// Whether a self-signature carries a key flags subpacket at all (an empty set of flags
/// and no subpacket read the same through `key_flags`).
fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

/// Whether the part of a key whose fingerprint is `component` (the primary key or one of
/// its subkeys) may make signatures at `now`.
///
/// `copies` are the trust store's copies of one key (the same primary fingerprint, from
/// different scopes or configs; copies of other keys are ignored). Their signatures count
/// together, as gpg merges copies of a key: a valid revocation in any copy revokes, and
/// the newest valid self-signature (or subkey binding) among all of them gives the
/// expiration time and the key flags. Every signature is checked here against the primary
/// key, so nothing rests on how the copies were parsed. Subkeys are found by fingerprint.
pub fn signing_state(
    copies: &[&SignedPublicKey],
    component: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Unusable> {
    let Some(first) = copies.first() else {
        return Err(Unusable::NotBound);
    };
    let primary = &first.primary_key;
    let primary_fp = fingerprint_hex(primary);
    let copies: Vec<&SignedPublicKey> = copies
        .iter()
        .copied()
        .filter(|k| fingerprint_hex(&k.primary_key) == primary_fp)
        .collect();

    // The primary key: revoked in any copy?
    let revoked = copies
        .iter()
        .flat_map(|k| k.details.revocation_signatures.iter())
        .any(|s| s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(primary).is_ok());
    if revoked {
        return Err(Unusable::Revoked);
    }
    // Its newest valid self-signature (user ID certification or direct key signature)
    // holds its current expiration time and flags.
    let mut self_sigs: Vec<&Signature> = Vec::new();
    for k in &copies {
        for u in &k.details.users {
            for s in &u.signatures {
                let certification = matches!(
                    s.typ(),
                    Some(
                        SignatureType::CertGeneric
                            | SignatureType::CertPersona
                            | SignatureType::CertCasual
                            | SignatureType::CertPositive
                    )
                );
                if certification && s.verify_certification(primary, Tag::UserId, &u.id).is_ok() {
                    self_sigs.push(s);
                }
            }
        }
        for s in &k.details.direct_signatures {
            if s.typ() == Some(SignatureType::Key) && s.verify_key(primary).is_ok() {
                self_sigs.push(s);
            }
        }
    }
    let Some(newest) = self_sigs.into_iter().max_by_key(|s| created_secs(s)) else {
        return Err(Unusable::NotBound);
    };
    if let Some(t) = expiry(primary.created_at(), newest) {
        if t <= now {
            return Err(Unusable::Expired(t));
        }
    }
    if component == primary_fp {
        if has_key_flags(newest) && !newest.key_flags().sign() {
            return Err(Unusable::NotForSigning);
        }
        return Ok(());
    }

    // A subkey, by fingerprint, with its bindings from every copy.
    let subs: Vec<&SignedPublicSubKey> = copies
        .iter()
        .flat_map(|k| k.public_subkeys.iter())
        .filter(|s| fingerprint_hex(&s.key) == component)
        .collect();
    let Some(sub_key) = subs.first().map(|s| &s.key) else {
        return Err(Unusable::NotBound);
    };
    let valid: Vec<&Signature> = subs
        .iter()
        .flat_map(|s| s.signatures.iter())
        .filter(|s| s.verify_subkey_binding(primary, sub_key).is_ok())
        .collect();
    if valid
        .iter()
        .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return Err(Unusable::Revoked);
    }
    let Some(binding) = valid
        .iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|s| created_secs(s))
        .copied()
    else {
        return Err(Unusable::NotBound);
    };
    if !binding.key_flags().sign() {
        return Err(Unusable::NotForSigning);
    }
    // A signing subkey's binding carries the subkey's own signature over the primary key
    // (the back-signature), so nobody can claim another's signing subkey as their own.
    let backsig = binding
        .embedded_signature()
        .is_some_and(|b| b.verify_primary_key_binding(sub_key, primary).is_ok());
    if !backsig {
        return Err(Unusable::NotBound);
    }
    match expiry(sub_key.created_at(), binding) {
        Some(t) if t <= now => Err(Unusable::Expired(t)),
        _ => Ok(()),
    }
}
