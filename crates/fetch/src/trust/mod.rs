//! rkt's trust model: OpenPGP keys trusted for image name prefixes (or every image), and
//! ACIs checked against their detached signatures before they are stored.

pub mod keys;
pub mod keystore;
pub mod verify;

pub use keystore::{Keystore, Origin, Scope, TrustedKey};
pub use pgp::composed::SignedPublicKey;
pub use verify::{parse_signature, SignerCheck, Verified};
