//! The control plane's error type: every failure of a registry operation, classified for HTTP
//! (status and retryability) so that nothing is reported as a bare 500.

use latchkey_store::{StoreError, StoreRetryable};
use latchkey_wire::{ApiError, ErrorCode};

use crate::fencing::FenceRejection;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The store failed (after retrying conflicts).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller's token does not reach what the request touches, or the operation is not
    /// allowed (e.g. an enrolment capability used twice); the message names why.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request conflicts with the current state (e.g. a canary in progress).
    #[error("{0}")]
    Conflict(String),
    /// A stale activation tried to read or commit.
    #[error("fenced: {0}")]
    Fenced(#[from] FenceRejection),
    /// Well-formed but invalid input (e.g. a module that is not an actor component).
    #[error("{0}")]
    Invalid(String),
    /// Malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// Input over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A commit would take an actor's stored bytes over its quota (nothing was written).
    #[error("{0}")]
    QuotaExceeded(String),
    /// The caller exceeded a rate limit (e.g. new actors per token per second); retry later.
    #[error("{0}")]
    RateLimited(String),
    /// Nothing can serve the request right now (e.g. no eligible node).
    #[error("{0}")]
    Unavailable(String),
    /// A change-feed cursor older than what is retained.
    #[error("{0}")]
    Gone(String),
}

impl StoreRetryable for RegistryError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            RegistryError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl RegistryError {
    /// The API error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            RegistryError::Store(e) => match e {
                StoreError::Conflict
                | StoreError::TooOld
                | StoreError::Unavailable(_)
                | StoreError::MaybeCommitted(_) => ErrorCode::Unavailable,
                StoreError::KeyTooLarge { .. }
                | StoreError::ValueTooLarge { .. }
                | StoreError::TransactionTooLarge { .. } => ErrorCode::TooLarge,
                StoreError::BadVersionstampOffset { .. }
                | StoreError::Invalid(_)
                | StoreError::Corrupt(_) => ErrorCode::Internal,
            },
            RegistryError::NotFound(_) => ErrorCode::NotFound,
            RegistryError::Forbidden(_) => ErrorCode::Forbidden,
            RegistryError::Conflict(_) => ErrorCode::Conflict,
            RegistryError::Fenced(_) => ErrorCode::Fenced,
            RegistryError::Invalid(_) => ErrorCode::Invalid,
            RegistryError::BadRequest(_) => ErrorCode::BadRequest,
            RegistryError::TooLarge(_) => ErrorCode::TooLarge,
            RegistryError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            RegistryError::RateLimited(_) => ErrorCode::RateLimited,
            RegistryError::Unavailable(_) => ErrorCode::Unavailable,
            RegistryError::Gone(_) => ErrorCode::Gone,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.code().is_retryable()
    }

    /// The error as an API body.
    pub fn to_api(&self) -> ApiError {
        ApiError::new(self.code(), self.to_string())
    }
}
