//! The signature chain: what each signature covers, how revocation ids derive, and the one
//! block-by-block fold that both [`crate::verify`] and the prefix cache run.
//!
//! Block `i`'s signature covers `BLOCK_DOMAIN || i || key_id || sig(i-1) || len || payload` (block
//! 0 has no previous signature) and is made by the issuer key for block 0, else by the secret of
//! the key that block `i-1` names. The token then ends with that last key's secret (open) or with
//! its signature over `SEAL_DOMAIN || count || key_id || sig(last)` (sealed). Dropping the last
//! block leaves a proof for a key no remaining block names, so it fails; reordering or duplicating
//! changes the index or previous signature each signature covers.

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::capability::Capability;
use crate::codec::{RawBlock, RawProof, decode_payload};
use crate::error::{DecodeError, VerifyError};
use crate::keys::KeyId;
use crate::revocation::RevocationId;

const BLOCK_DOMAIN: &[u8] = b"latchkey.cap.v1.block\0";
const SEAL_DOMAIN: &[u8] = b"latchkey.cap.v1.seal\0";
const REVOCATION_DOMAIN: &[u8] = b"latchkey.cap.v1.revocation\0";
const PREFIX_DOMAIN: &[u8] = b"latchkey.cap.v1.prefix\0";

/// The exact message block `index` is signed over.
pub(crate) fn block_message(
    index: usize,
    key_id: KeyId,
    previous_signature: Option<&[u8; 64]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(BLOCK_DOMAIN.len() + 1 + 8 + 64 + 2 + payload.len());
    m.extend_from_slice(BLOCK_DOMAIN);
    m.push(index as u8);
    m.extend_from_slice(&key_id.to_bytes());
    if let Some(sig) = previous_signature {
        m.extend_from_slice(sig);
    }
    m.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    m.extend_from_slice(payload);
    m
}

/// The message a seal signs: it binds the block count and the last block's signature.
pub(crate) fn seal_message(count: usize, key_id: KeyId, last_signature: &[u8; 64]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SEAL_DOMAIN.len() + 1 + 8 + 64);
    m.extend_from_slice(SEAL_DOMAIN);
    m.push(count as u8);
    m.extend_from_slice(&key_id.to_bytes());
    m.extend_from_slice(last_signature);
    m
}

/// Revocation id of block `index`: a hash over the signed payloads of blocks `0..=index` (through
/// the previous id), never over signature bytes, so re-signing a block cannot dodge a revocation.
pub(crate) fn revocation_id(
    index: usize,
    key_id: KeyId,
    previous: Option<&RevocationId>,
    payload: &[u8],
) -> RevocationId {
    let mut h = Sha256::new();
    h.update(REVOCATION_DOMAIN);
    h.update([index as u8]);
    h.update(key_id.to_bytes());
    if let Some(prev) = previous {
        h.update(prev.to_bytes());
    }
    h.update((payload.len() as u16).to_le_bytes());
    h.update(payload);
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    RevocationId::from_bytes(id)
}

/// Hashes identifying each prefix `blocks[0..=k]` of a token, for the prefix cache.
pub(crate) fn prefix_hashes(key_id: KeyId, blocks: &[RawBlock<'_>]) -> Vec<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(PREFIX_DOMAIN);
    h.update(key_id.to_bytes());
    blocks
        .iter()
        .map(|b| {
            h.update(b.encoded);
            h.clone().finalize().into()
        })
        .collect()
}

/// The verified state after some prefix of a chain.
#[derive(Clone, Debug)]
pub(crate) struct ChainState {
    pub(crate) capability: Capability,
    pub(crate) revocation_ids: Vec<RevocationId>,
    pub(crate) last_signature: [u8; 64],
    /// Public key named by the last block: signs the next block or the seal, or matches the proof.
    pub(crate) next_key: [u8; 32],
}

impl ChainState {
    pub(crate) fn blocks(&self) -> usize {
        self.revocation_ids.len()
    }
}

/// Verifies `blocks` (which continue `resume`, or start the chain when `resume` is `None`),
/// calling `on_prefix` with the state after each block.
pub(crate) fn verify_blocks(
    key_id: KeyId,
    issuer: &VerifyingKey,
    blocks: &[RawBlock<'_>],
    resume: Option<ChainState>,
    mut on_prefix: impl FnMut(&ChainState),
) -> Result<ChainState, VerifyError> {
    let mut state = resume;
    for block in blocks {
        let index = state.as_ref().map_or(0, ChainState::blocks);
        let previous = state.as_ref().map(|s| &s.last_signature);
        let next_signer;
        let signer = match &state {
            None => issuer,
            Some(s) => {
                next_signer = VerifyingKey::from_bytes(&s.next_key)
                    .map_err(|_| VerifyError::BadSignature { block: index })?;
                &next_signer
            }
        };
        let message = block_message(index, key_id, previous, block.payload);
        signer
            .verify_strict(&message, &Signature::from_bytes(block.signature))
            .map_err(|_| VerifyError::BadSignature { block: index })?;
        let payload =
            decode_payload(block.payload).map_err(|source| VerifyError::MalformedBlock {
                block: index,
                source,
            })?;
        let parent = state.as_ref().map(|s| &s.capability);
        let capability = match parent {
            None => payload.caveats,
            Some(p) => p
                .narrow(&payload.caveats)
                .map_err(|field| VerifyError::Widening {
                    block: index,
                    field,
                })?,
        };
        let mut revocation_ids = state.map(|s| s.revocation_ids).unwrap_or_default();
        let id = revocation_id(index, key_id, revocation_ids.last(), block.payload);
        revocation_ids.push(id);
        let next = ChainState {
            capability,
            revocation_ids,
            last_signature: *block.signature,
            next_key: payload.next_key,
        };
        on_prefix(&next);
        state = Some(next);
    }
    state.ok_or(VerifyError::Malformed(DecodeError {
        offset: 0,
        problem: "a token has at least one block".into(),
    }))
}

/// Checks the proof of possession (open) or the seal (sealed) against the last block's key.
pub(crate) fn check_proof(
    state: &ChainState,
    key_id: KeyId,
    proof: RawProof<'_>,
) -> Result<(), VerifyError> {
    match proof {
        RawProof::Secret(secret) => {
            let derived = SigningKey::from_bytes(secret).verifying_key();
            if derived.as_bytes() != &state.next_key {
                return Err(VerifyError::ProofMismatch);
            }
        }
        RawProof::Seal(seal) => {
            let key =
                VerifyingKey::from_bytes(&state.next_key).map_err(|_| VerifyError::BadSeal)?;
            let message = seal_message(state.blocks(), key_id, &state.last_signature);
            key.verify_strict(&message, &Signature::from_bytes(seal))
                .map_err(|_| VerifyError::BadSeal)?;
        }
    }
    Ok(())
}
