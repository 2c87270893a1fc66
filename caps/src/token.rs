//! The token value: minting, offline attenuation, sealing, and the binary and text forms.
//!
//! A [`Token`] is only known to be well formed, not authentic: anyone can hold, attenuate or seal
//! one without trusting anything; only [`crate::verify`] decides what it grants.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::capability::{Capability, Field};
use crate::chain::{block_message, revocation_id, seal_message};
use crate::codec::{
    FieldError, Layout, MAX_BLOCKS, MAX_TOKEN_BYTES, RawBlock, RawProof, decode_payload,
    decode_token, encode_payload, encode_token,
};
use crate::error::VerifyError;
use crate::keys::{IssuerKey, KeyId, os_rng};
use crate::revocation::RevocationId;

/// Prefix of the text form; the digit is the format version.
pub const TEXT_PREFIX: &str = "lk1.";
/// Longest text form: the prefix plus base64 of [`MAX_TOKEN_BYTES`].
pub const MAX_TEXT_BYTES: usize = TEXT_PREFIX.len() + MAX_TOKEN_BYTES.div_ceil(3) * 4;

/// Why a token could not be minted, attenuated or sealed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is sealed; it cannot be extended.
    #[error("token is sealed and cannot be attenuated or sealed again")]
    Sealed,
    /// The token already has the maximum number of blocks.
    #[error("token already has {max} blocks, the most allowed")]
    TooManyBlocks {
        /// The limit.
        max: usize,
    },
    /// The result would exceed the size limit.
    #[error("token would be {size} bytes; the limit is {max}")]
    TooLarge {
        /// Size of the result.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The new block would widen its parent in this field.
    #[error("attenuation would widen the {0}; a block can only narrow its parent")]
    Widening(Field),
    /// A field value is invalid (empty or too long).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The token being extended does not decode.
    #[error("token is malformed: {0}")]
    Malformed(#[from] VerifyError),
}

/// A capability token. Its bytes hold the proof secret of an open token, so it is zeroed on drop
/// and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    bytes: Vec<u8>,
}

impl Drop for Token {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl Token {
    /// Mints a token with one authority block, signed by `issuer`.
    pub fn mint(issuer: &IssuerKey, capability: &Capability) -> Result<Token, TokenError> {
        Self::mint_with_rng(issuer, capability, &mut os_rng())
    }

    /// [`Token::mint`] with an explicit RNG for the fresh block key.
    pub fn mint_with_rng<R: CryptoRng + ?Sized>(
        issuer: &IssuerKey,
        capability: &Capability,
        rng: &mut R,
    ) -> Result<Token, TokenError> {
        append(
            issuer.id(),
            &[],
            issuer.signing_key(),
            None,
            capability,
            rng,
        )
    }

    /// Appends a block that narrows this token. Works offline, without any trusted key; fails if
    /// the block would widen any field, if the token is sealed, or if limits would be exceeded.
    pub fn attenuate(&self, capability: &Capability) -> Result<Token, TokenError> {
        self.attenuate_with_rng(capability, &mut os_rng())
    }

    /// [`Token::attenuate`] with an explicit RNG for the fresh block key.
    pub fn attenuate_with_rng<R: CryptoRng + ?Sized>(
        &self,
        capability: &Capability,
        rng: &mut R,
    ) -> Result<Token, TokenError> {
        if self.is_sealed() {
            return Err(TokenError::Sealed);
        }
        self.claimed_capability()?
            .narrow(capability)
            .map_err(TokenError::Widening)?;
        self.append_unchecked(capability, rng)
    }

    /// Appends a block **without** checking that it narrows. Exists to test verifiers: a block
    /// that widens makes [`crate::verify`] reject the whole token.
    #[doc(hidden)]
    pub fn append_unchecked<R: CryptoRng + ?Sized>(
        &self,
        capability: &Capability,
        rng: &mut R,
    ) -> Result<Token, TokenError> {
        let layout = self.layout();
        let RawProof::Secret(secret) = layout.proof else {
            return Err(TokenError::Sealed);
        };
        if layout.blocks.len() >= MAX_BLOCKS {
            return Err(TokenError::TooManyBlocks { max: MAX_BLOCKS });
        }
        let signer = SigningKey::from_bytes(secret);
        let last = layout
            .blocks
            .last()
            .expect("a token has at least one block");
        append(
            layout.key_id,
            &layout.blocks,
            &signer,
            Some(last.signature),
            capability,
            rng,
        )
    }

    /// Seals the token: replaces the proof secret with a signature, so nobody can extend it.
    pub fn seal(&self) -> Result<Token, TokenError> {
        let layout = self.layout();
        let RawProof::Secret(secret) = layout.proof else {
            return Err(TokenError::Sealed);
        };
        let last = layout
            .blocks
            .last()
            .expect("a token has at least one block");
        let message = seal_message(layout.blocks.len(), layout.key_id, last.signature);
        let seal = SigningKey::from_bytes(secret).sign(&message).to_bytes();
        let blocks = layout.blocks.iter().map(|b| (b.payload, b.signature));
        Ok(Token {
            bytes: encode_token(layout.key_id, blocks, RawProof::Seal(&seal)),
        })
    }

    /// The capability the token's blocks claim, **unverified**: what [`crate::verify`] would grant
    /// if every signature checks out. Useful to inspect a token one holds.
    pub fn claimed_capability(&self) -> Result<Capability, TokenError> {
        let layout = self.layout();
        let mut effective = Capability::unrestricted();
        for (block, raw) in layout.blocks.iter().enumerate() {
            let payload = decode_payload(raw.payload)
                .map_err(|source| VerifyError::MalformedBlock { block, source })?;
            effective = effective
                .narrow(&payload.caveats)
                .map_err(|field| VerifyError::Widening { block, field })?;
        }
        Ok(effective)
    }

    /// The revocation id of each block, authority block first. They are hashes of the blocks'
    /// payloads, so any holder can compute them; they are what a verifier reports if the token
    /// verifies.
    pub fn revocation_ids(&self) -> Vec<RevocationId> {
        let layout = self.layout();
        let mut ids: Vec<RevocationId> = Vec::with_capacity(layout.blocks.len());
        for (index, block) in layout.blocks.iter().enumerate() {
            let id = revocation_id(index, layout.key_id, ids.last(), block.payload);
            ids.push(id);
        }
        ids
    }

    /// The revocation id of the last block: revoking it revokes exactly this token (and tokens
    /// attenuated from it).
    pub fn token_id(&self) -> RevocationId {
        *self
            .revocation_ids()
            .last()
            .expect("a token has at least one block")
    }

    /// Parses the binary form, checking structure and limits only (no signatures).
    pub fn from_bytes(bytes: &[u8]) -> Result<Token, VerifyError> {
        decode_token(bytes)?;
        Ok(Token {
            bytes: bytes.to_vec(),
        })
    }

    /// Parses the text form `lk1.<base64url>`, checking structure and limits only.
    pub fn from_text(text: &str) -> Result<Token, VerifyError> {
        let bytes = decode_text(text)?;
        decode_token(&bytes)?;
        Ok(Token {
            bytes: bytes.to_vec(),
        })
    }

    /// Parses a token presented in either form: text (`lk1.…`) or binary. Binary tokens start
    /// with the version byte, never with the `l` of the text prefix.
    pub fn from_presented(presented: &[u8]) -> Result<Token, VerifyError> {
        if presented.starts_with(b"lk") {
            let text = std::str::from_utf8(presented)
                .map_err(|_| VerifyError::Encoding("token text is not ASCII"))?;
            Token::from_text(text)
        } else {
            Token::from_bytes(presented)
        }
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text form, `lk1.` followed by unpadded base64url: safe in headers and URLs.
    pub fn to_text(&self) -> String {
        format!("{TEXT_PREFIX}{}", B64.encode(&self.bytes))
    }

    /// Whether the token is sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self.layout().proof, RawProof::Seal(_))
    }

    /// Number of blocks (1 = as minted).
    pub fn block_count(&self) -> usize {
        self.layout().blocks.len()
    }

    /// The id of the issuer key that signed block 0.
    pub fn key_id(&self) -> KeyId {
        self.layout().key_id
    }

    fn layout(&self) -> Layout<'_> {
        decode_token(&self.bytes).expect("a Token is always well formed")
    }
}

/// Signs a new block continuing `blocks` (empty: a new authority block) and returns the token.
fn append<R: CryptoRng + ?Sized>(
    key_id: KeyId,
    blocks: &[RawBlock<'_>],
    signer: &SigningKey,
    previous_signature: Option<&[u8; 64]>,
    capability: &Capability,
    rng: &mut R,
) -> Result<Token, TokenError> {
    let next = SigningKey::generate(rng);
    // Field limits keep a payload under 10 KiB, so its length always fits the u16 prefix.
    let payload = encode_payload(next.verifying_key().as_bytes(), capability)?;
    let message = block_message(blocks.len(), key_id, previous_signature, &payload);
    let signature = signer.sign(&message).to_bytes();
    let secret = Zeroizing::new(next.to_bytes());
    let all = blocks
        .iter()
        .map(|b| (b.payload, b.signature))
        .chain(std::iter::once((payload.as_slice(), &signature)));
    let bytes = encode_token(
        key_id,
        all.collect::<Vec<_>>().into_iter(),
        RawProof::Secret(&secret),
    );
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            size: bytes.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    Ok(Token { bytes })
}

/// Decodes the text form into binary, after checking its length.
fn decode_text(text: &str) -> Result<Zeroizing<Vec<u8>>, VerifyError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(VerifyError::TooLarge {
            size: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    let Some(body) = text.strip_prefix(TEXT_PREFIX) else {
        let version = text
            .strip_prefix("lk")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(v, _)| v.parse::<u8>().ok());
        return Err(match version {
            Some(v) => VerifyError::UnsupportedVersion(v),
            None => VerifyError::Encoding("a token starts with `lk1.`"),
        });
    };
    B64.decode(body)
        .map(Zeroizing::new)
        .map_err(|_| VerifyError::Encoding("the part after `lk1.` is not unpadded base64url"))
}

impl fmt::Display for Token {
    /// The text form. It is a bearer secret: do not log it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("key_id", &self.key_id())
            .field("blocks", &self.block_count())
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

impl FromStr for Token {
    type Err = VerifyError;

    fn from_str(text: &str) -> Result<Self, VerifyError> {
        Token::from_text(text)
    }
}
