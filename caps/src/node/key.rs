//! A node's identity key: ed25519, generated on the node's first start and kept there.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer as _, SigningKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::request::SignedRequest;
use crate::keys::{KeyError, PublicKey, decode_32, os_rng};

const NODE_TEXT_PREFIX: &str = "lk-node-v1:";

/// A node's secret key. It signs the node's requests; it never leaves the node.
pub struct NodeKey {
    signing: SigningKey,
    public: PublicKey,
}

impl NodeKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Self::generate_with_rng(&mut os_rng())
    }

    /// A fresh key from the given cryptographic RNG (deterministic simulations and tests).
    pub fn generate_with_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_signing(SigningKey::generate(rng))
    }

    /// The key with this 32-byte secret seed (deterministic simulations).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing(SigningKey::from_bytes(seed))
    }

    fn from_signing(signing: SigningKey) -> Self {
        let public = PublicKey::from_verifying(signing.verifying_key());
        NodeKey { signing, public }
    }

    /// The public half, which the control plane certifies.
    pub fn public(&self) -> PublicKey {
        self.public.clone()
    }

    /// Text form of the secret key, `lk-node-v1:<base64url seed>`, for the node's key file.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.signing.to_bytes());
        Zeroizing::new(format!("{NODE_TEXT_PREFIX}{}", B64.encode(*seed)))
    }

    /// Parses the text form written by [`NodeKey::to_secret_text`].
    pub fn from_secret_text(text: &str) -> Result<Self, KeyError> {
        let body = text
            .trim()
            .strip_prefix(NODE_TEXT_PREFIX)
            .ok_or(KeyError::Encoding("a node key starts with `lk-node-v1:`"))?;
        let seed = Zeroizing::new(decode_32(body)?);
        Ok(Self::from_signing(SigningKey::from_bytes(&seed)))
    }

    /// Signs `request`: the 64-byte signature a recipient checks with [`SignedRequest::verify`].
    pub fn sign(&self, request: &SignedRequest<'_>) -> [u8; 64] {
        self.signing.sign(&request.message()).to_bytes()
    }

    /// Signs `request` and returns the signature header's value.
    pub fn sign_header(&self, request: &SignedRequest<'_>) -> String {
        request.header(&self.sign(request))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
