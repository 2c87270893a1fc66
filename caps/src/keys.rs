//! Issuer keys, key ids, and the verifier's set of trusted keys (several at once, for rotation).
//!
//! A verifier never takes a public key from a token: the token names a [`KeyId`], and the key is
//! looked up in the [`TrustedKeys`] the verifier was configured with.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const KEY_ID_DOMAIN: &[u8] = b"latchkey.key-id.v1\0";
const ISSUER_TEXT_PREFIX: &str = "lk-issuer-v1:";
const PUBLIC_TEXT_PREFIX: &str = "lk-pub-v1:";

hex_id!(
    /// Short, stable name of an issuer key: the first 8 bytes of a hash of its public key.
    KeyId,
    8,
    "key id"
);

impl KeyId {
    /// The key id of an ed25519 public key.
    fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(key.as_bytes())
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

/// The operating system's CSPRNG, for the convenience constructors (keys, block keys, nonces).
pub(crate) fn os_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// Why a key could not be decoded or added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text or byte form is malformed.
    #[error("malformed key: {0}")]
    Encoding(&'static str),
    /// The bytes are not a valid ed25519 public key.
    #[error("not a valid ed25519 public key")]
    InvalidPoint,
    /// The public key has small order; signatures under it prove nothing.
    #[error("weak (small-order) ed25519 public key rejected")]
    WeakKey,
    /// A different key with the same key id is already trusted.
    #[error("key id {0} is already used by a different trusted key")]
    IdCollision(KeyId),
}

/// An issuer's secret signing key: mints authority blocks. Keep it secret; it can mint anything.
pub struct IssuerKey {
    signing: SigningKey,
    public: PublicKey,
}

impl IssuerKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self::generate_with_rng(&mut os_rng())
    }

    /// A fresh key from the given cryptographic RNG (deterministic simulations and tests).
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_signing(SigningKey::generate(rng))
    }

    /// The key with this 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing(SigningKey::from_bytes(seed))
    }

    fn from_signing(signing: SigningKey) -> Self {
        let key = signing.verifying_key();
        let public = PublicKey {
            id: KeyId::of(&key),
            key,
        };
        IssuerKey { signing, public }
    }

    /// The 32-byte secret seed (zeroed when dropped).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// This key's id, written into every token it mints.
    pub fn id(&self) -> KeyId {
        self.public.id
    }

    /// The public half, to be added to verifiers' [`TrustedKeys`].
    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }

    /// Text form of the secret key, `lk-issuer-v1:<base64url seed>`, for key files.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let seed = self.seed();
        Zeroizing::new(format!("{ISSUER_TEXT_PREFIX}{}", B64.encode(*seed)))
    }

    /// Parses the text form written by [`IssuerKey::to_secret_text`] (surrounding whitespace is ignored).
    pub fn from_secret_text(text: &str) -> Result<Self, KeyError> {
        let body = text
            .trim()
            .strip_prefix(ISSUER_TEXT_PREFIX)
            .ok_or(KeyError::Encoding(
                "an issuer key starts with `lk-issuer-v1:`",
            ))?;
        let seed = Zeroizing::new(decode_32(body)?);
        Ok(Self::from_seed(&seed))
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKey")
            .field("id", &self.public.id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn decode_32(body: &str) -> Result<[u8; 32], KeyError> {
    let mut out = [0u8; 32];
    match B64.decode_slice(body, &mut out) {
        Ok(32) => Ok(out),
        _ => Err(KeyError::Encoding(
            "expected 32 bytes in unpadded base64url",
        )),
    }
}

/// An issuer's public key with its id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    /// A public key from its 32-byte compressed form; rejects invalid and small-order points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPoint)?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(PublicKey {
            id: KeyId::of(&key),
            key,
        })
    }

    /// The 32-byte compressed form.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    pub(crate) fn from_verifying(key: VerifyingKey) -> Self {
        PublicKey {
            id: KeyId::of(&key),
            key,
        }
    }
}

impl fmt::Display for PublicKey {
    /// `lk-pub-v1:<base64url key>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_TEXT_PREFIX}{}", B64.encode(self.key.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {self})", self.id)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let body = text
            .trim()
            .strip_prefix(PUBLIC_TEXT_PREFIX)
            .ok_or(KeyError::Encoding("a public key starts with `lk-pub-v1:`"))?;
        Self::from_bytes(&decode_32(body)?)
    }
}

/// The issuer keys a verifier accepts. Several may be active at once, which is how keys rotate:
/// add the new key everywhere, mint with it, then remove the old one.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: HashMap<KeyId, VerifyingKey>,
}

impl TrustedKeys {
    /// An empty set: every token is rejected with `UnknownKey`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; returns `false` if it was already trusted.
    pub fn insert(&mut self, key: &PublicKey) -> Result<bool, KeyError> {
        match self.keys.get(&key.id) {
            Some(existing) if *existing == key.key => Ok(false),
            Some(_) => Err(KeyError::IdCollision(key.id)),
            None => {
                self.keys.insert(key.id, key.key);
                Ok(true)
            }
        }
    }

    /// Stops trusting a key: tokens it minted no longer verify, even ones already cached.
    pub fn remove(&mut self, id: &KeyId) -> bool {
        self.keys.remove(id).is_some()
    }

    /// Whether the key with this id is trusted.
    pub fn contains(&self, id: &KeyId) -> bool {
        self.keys.contains_key(id)
    }

    /// The ids of all trusted keys.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.keys().copied()
    }

    /// Number of trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn get(&self, id: &KeyId) -> Option<&VerifyingKey> {
        self.keys.get(id)
    }
}

impl FromIterator<PublicKey> for TrustedKeys {
    /// Builds a set from keys; a key id collision (never seen in practice) keeps the first key.
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Self {
        let mut set = TrustedKeys::new();
        for key in iter {
            let _ = set.insert(&key);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let issuer = IssuerKey::from_seed(&[9; 32]);
        let again = IssuerKey::from_secret_text(&issuer.to_secret_text()).unwrap();
        assert_eq!(again.id(), issuer.id());
        let public: PublicKey = issuer.public().to_string().parse().unwrap();
        assert_eq!(public, issuer.public());
        let id: KeyId = issuer.id().to_string().parse().unwrap();
        assert_eq!(id, issuer.id());
    }

    #[test]
    fn malformed_keys_are_rejected_with_reason() {
        assert!(matches!(
            "lk-pub-v1:AAAA".parse::<PublicKey>(),
            Err(KeyError::Encoding(_))
        ));
        assert!(matches!(
            "pub:xyz".parse::<PublicKey>(),
            Err(KeyError::Encoding(_))
        ));
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::WeakKey));
        assert!(IssuerKey::from_secret_text("lk-issuer-v1:!!").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let issuer = IssuerKey::from_seed(&[7; 32]);
        let seed_text = B64.encode([7u8; 32]);
        assert!(!format!("{issuer:?}").contains(&seed_text));
    }

    #[test]
    fn rotation_keeps_several_keys_and_removal_forgets() {
        let a = IssuerKey::from_seed(&[1; 32]);
        let b = IssuerKey::from_seed(&[2; 32]);
        let mut keys: TrustedKeys = [a.public(), b.public()].into_iter().collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.insert(&a.public()), Ok(false));
        assert!(keys.remove(&a.id()));
        assert!(!keys.contains(&a.id()));
        assert!(keys.contains(&b.id()));
    }
}
