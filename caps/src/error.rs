//! The errors of checking a token that several modules return: [`DecodeError`] (a malformed
//! envelope or block payload), [`VerifyError`] (an invalid token, 401) and [`AuthError`] (invalid,
//! or valid but too narrow for the request, 403). Errors one module alone returns stay there
//! (`KeyError`, `FieldError`, `TokenError`, `Denied`).

use crate::authorize::Denied;
use crate::capability::Field;
use crate::keys::KeyId;
use crate::revocation::RevocationId;

/// What is wrong with a byte string that should be a token or a block payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at byte {offset}")]
pub struct DecodeError {
    /// Offset of the problem within the token (or within the block payload).
    pub offset: usize,
    /// What was wrong.
    pub problem: String,
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

/// Why a presented token does not allow a request: it is invalid (401) or too narrow (403).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token itself is rejected.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// The token is valid but does not allow this request.
    #[error(transparent)]
    Denied(#[from] Denied),
}

impl AuthError {
    /// Whether the same request with the same token can succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            AuthError::Invalid(e) => e.is_retryable(),
            AuthError::Denied(d) => d.is_retryable(),
        }
    }
}
