//! Verifying a token: [`verify`] turns presented bytes into a [`Verified`] effective capability
//! or a [`VerifyError`] saying exactly why not. Pure: trusted keys, revocations and time are
//! arguments.

use crate::capability::{Capability, Window};
use crate::chain::{ChainState, check_proof, verify_blocks};
use crate::codec::{Layout, RawProof, decode_token};
use crate::error::VerifyError;
use crate::keys::{KeyId, TrustedKeys};
use crate::revocation::{RevocationId, Revocations};
use crate::token::Token;

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
