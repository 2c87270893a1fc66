//! Verifying a token: [`verify`] turns presented bytes into a [`Verified`] effective capability
//! or a [`VerifyError`] saying exactly why not. Pure: trusted keys, revocations and time are
//! arguments.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::capability::{Capability, Field, Window};
use crate::chain::{ChainState, check_proof, verify_blocks};
use crate::codec::{DecodeError, Layout, RawProof, decode_token};
use crate::keys::{KeyId, TrustedKeys};
use crate::token::Token;

hex_id!(
    /// Identifies one block of one chain; revoking it revokes every token built on that block.
    RevocationId,
    16,
    "revocation id"
);

/// A set of revoked ids, as a verifier sees it.
pub trait Revocations {
    /// Whether `id` is revoked.
    fn is_revoked(&self, id: &RevocationId) -> bool;
}

impl<S: BuildHasher> Revocations for HashSet<RevocationId, S> {
    fn is_revoked(&self, id: &RevocationId) -> bool {
        self.contains(id)
    }
}

impl<T: Revocations + ?Sized> Revocations for &T {
    fn is_revoked(&self, id: &RevocationId) -> bool {
        (**self).is_revoked(id)
    }
}

/// No token is revoked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl Revocations for NoRevocations {
    fn is_revoked(&self, _: &RevocationId) -> bool {
        false
    }
}

/// Why a token was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token (binary or text form) exceeds the size limit; no signature was checked.
    #[error("token is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Size presented.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The token has too many blocks; no signature was checked.
    #[error("token has {count} blocks; the limit is {max}")]
    TooManyBlocks {
        /// Blocks presented.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The version byte or text prefix names a format this verifier does not know.
    #[error("unsupported token format version {0}")]
    UnsupportedVersion(u8),
    /// The text form is not `lk1.` followed by unpadded base64url.
    #[error("bad token encoding: {0}")]
    Encoding(&'static str),
    /// The binary envelope is malformed.
    #[error("malformed token: {0}")]
    Malformed(#[from] DecodeError),
    /// The token names an issuer key the verifier does not trust.
    #[error("token was issued by key {0}, which is not trusted here")]
    UnknownKey(KeyId),
    /// A block's signature does not verify.
    #[error("bad signature in block {block}")]
    BadSignature {
        /// Index of the block (0 = authority).
        block: usize,
    },
    /// A correctly signed block payload cannot be decoded.
    #[error("block {block} is malformed: {source}")]
    MalformedBlock {
        /// Index of the block.
        block: usize,
        /// What is wrong in it.
        source: DecodeError,
    },
    /// A block tries to widen its parent's capability.
    #[error("block {block} tries to widen the {field} of its parent")]
    Widening {
        /// Index of the block.
        block: usize,
        /// The widened field.
        field: Field,
    },
    /// The proof secret is not the key named by the last block (e.g. a block was removed).
    #[error("proof does not match the last block's key (was a block removed?)")]
    ProofMismatch,
    /// The seal signature does not verify.
    #[error("seal signature does not verify")]
    BadSeal,
    /// A block of the token has been revoked.
    #[error("token is revoked (block {block}, revocation id {id})")]
    Revoked {
        /// Index of the revoked block.
        block: usize,
        /// Its revocation id.
        id: RevocationId,
    },
    /// The token has expired.
    #[error("token expired at {expires_at} (now is {now})")]
    Expired {
        /// Expiry.
        expires_at: u64,
        /// Time of the check.
        now: u64,
    },
    /// The token is not valid yet.
    #[error("token is not valid before {not_before} (now is {now})")]
    NotYetValid {
        /// Start of validity.
        not_before: u64,
        /// Time of the check.
        now: u64,
    },
}

impl VerifyError {
    /// Whether presenting the same token later can succeed (only a not-yet-valid one can).
    pub fn is_retryable(&self) -> bool {
        matches!(self, VerifyError::NotYetValid { .. })
    }
}

/// The validity window check shared by cold verification and cache hits.
fn check_window(capability: &Capability, now: u64) -> Result<(), VerifyError> {
    match capability.window(now) {
        Window::Open => Ok(()),
        Window::NotYet(not_before) => Err(VerifyError::NotYetValid { not_before, now }),
        Window::Expired(expires_at) => Err(VerifyError::Expired { expires_at, now }),
    }
}

/// A token that verified: its effective capability and what a later check needs.
/// Only this crate can construct one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    capability: Capability,
    revocation_ids: Vec<RevocationId>,
    /// [`Verified::token_id`] as text, made once (callers name it on every call).
    token_id_text: String,
    key_id: KeyId,
    sealed: bool,
}

impl Verified {
    /// The effective capability (intersection of all blocks).
    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// One revocation id per block, authority block first.
    pub fn revocation_ids(&self) -> &[RevocationId] {
        &self.revocation_ids
    }

    /// [`Verified::token_id`] as text (lowercase hex), as `RevocationId`'s `Display` writes it.
    pub fn token_id_text(&self) -> &str {
        &self.token_id_text
    }

    /// Identifies this exact chain: the revocation id of its last block.
    pub fn token_id(&self) -> RevocationId {
        *self
            .revocation_ids
            .last()
            .expect("a token has at least one block")
    }

    /// The issuer key that signed block 0.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Whether the token is sealed (cannot be attenuated further).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The checks a cache hit repeats: issuer still trusted, no block revoked, time window.
    pub(crate) fn recheck(
        &self,
        keys: &TrustedKeys,
        revoked: &impl Revocations,
        now: u64,
    ) -> Result<(), VerifyError> {
        if !keys.contains(&self.key_id) {
            return Err(VerifyError::UnknownKey(self.key_id));
        }
        check_revocations(&self.revocation_ids, revoked)?;
        check_window(&self.capability, now)
    }
}

fn check_revocations(ids: &[RevocationId], revoked: &impl Revocations) -> Result<(), VerifyError> {
    match ids.iter().position(|id| revoked.is_revoked(id)) {
        Some(block) => Err(VerifyError::Revoked {
            block,
            id: ids[block],
        }),
        None => Ok(()),
    }
}

/// Verifies a token: every block signature (`verify_strict`), the proof or seal, no widening, no
/// revoked block, and the time window at `now` (Unix seconds).
pub fn verify(
    token: &Token,
    keys: &TrustedKeys,
    revoked: &impl Revocations,
    now: u64,
) -> Result<Verified, VerifyError> {
    verify_layout(
        &decode_token(token.as_bytes())?,
        keys,
        revoked,
        now,
        None,
        |_| {},
    )
}

/// Verifies a token presented in either form: text (`lk1.…`) or binary.
pub fn verify_presented(
    presented: &[u8],
    keys: &TrustedKeys,
    revoked: &impl Revocations,
    now: u64,
) -> Result<Verified, VerifyError> {
    verify(&Token::from_presented(presented)?, keys, revoked, now)
}

/// The verification pipeline, optionally resuming from a cached verified prefix.
pub(crate) fn verify_layout(
    layout: &Layout<'_>,
    keys: &TrustedKeys,
    revoked: &impl Revocations,
    now: u64,
    resume: Option<ChainState>,
    on_prefix: impl FnMut(&ChainState),
) -> Result<Verified, VerifyError> {
    let issuer = keys
        .get(&layout.key_id)
        .ok_or(VerifyError::UnknownKey(layout.key_id))?;
    let skip = resume.as_ref().map_or(0, ChainState::blocks);
    let state = verify_blocks(
        layout.key_id,
        issuer,
        &layout.blocks[skip..],
        resume,
        on_prefix,
    )?;
    check_proof(&state, layout.key_id, layout.proof)?;
    check_revocations(&state.revocation_ids, revoked)?;
    check_window(&state.capability, now)?;
    let token_id_text = state
        .revocation_ids
        .last()
        .map(ToString::to_string)
        .unwrap_or_default();
    Ok(Verified {
        capability: state.capability,
        revocation_ids: state.revocation_ids,
        token_id_text,
        key_id: layout.key_id,
        sealed: matches!(layout.proof, RawProof::Seal(_)),
    })
}
