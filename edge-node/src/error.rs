//! Why an actor call failed, classified for the caller: each variant maps to one API error code
//! and says whether retrying can help.

use latchkey_caps::AuthError;
use latchkey_caps::node::NodeAuthError;
use latchkey_wire::client::ClientError;
use latchkey_wire::server::BodyError;
use latchkey_wire::{ApiError, ErrorCode};

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The token is invalid (401) or does not allow the call (403).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// No such actor type, or the guest does not know the method (404).
    #[error("{0}")]
    NotFound(String),
    /// The guest rejected the payload (400).
    #[error("{0}")]
    BadRequest(String),
    /// The guest returned an error; writes before it were committed (500).
    #[error("actor error: {0}")]
    ActorFailed(String),
    /// The guest trapped; the call's writes were discarded and the instance reset (500).
    #[error("actor trapped: {0}")]
    Trapped(String),
    /// The call hit its CPU or memory limit; writes discarded, instance reset (500).
    #[error("{0}")]
    LimitExceeded(String),
    /// The actor's mailbox is full (429, retry later).
    #[error("actor `{0}` is overloaded: its mailbox is full")]
    Overloaded(String),
    /// The payload or the result is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// The actor cannot be served right now, and the call did nothing: no lease, moved mid-call,
    /// the control plane or the owner node unreachable (503, retry).
    #[error("{0}")]
    Unavailable(String),
    /// A forwarded call reached a node that does not hold the actor (421).
    #[error("{0}")]
    Misdirected(String),
    /// The call did not finish before its deadline, and did nothing (504).
    #[error("{0}")]
    Timeout(String),
    /// The call may or may not have taken effect: it was handed on (to its activation or another
    /// node) and its answer never came, or its commit was never confirmed (504, not retryable).
    #[error("{0}")]
    OutcomeUnknown(String),
    /// The request's body did not arrive within the node's body read timeout; nothing was done
    /// (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// Bad input that is not the guest's to judge (400).
    #[error("{0}")]
    Invalid(String),
    /// A bug or an unexpected failure (500).
    #[error("internal error: {0}")]
    Internal(String),
    /// A call claiming to come from another node did not prove it (401; 403 for a node acting
    /// for another; 503 when a freshly signed retry can succeed).
    #[error("node authentication failed: {0}")]
    Node(#[from] NodeAuthError),
    /// An error answered by another node or the control plane, passed on unchanged.
    #[error("{0}")]
    Remote(ApiError),
}

impl From<BodyError> for CallError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { .. } => CallError::TooLarge(e.to_string()),
            BodyError::TimedOut { .. } => CallError::RequestTimeout(e.to_string()),
            BodyError::Broken(_) => CallError::Invalid(e.to_string()),
        }
    }
}

impl CallError {
    /// The API error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            CallError::Auth(e) => ErrorCode::of_auth(e),
            CallError::NotFound(_) => ErrorCode::NotFound,
            CallError::BadRequest(_) | CallError::Invalid(_) => ErrorCode::BadRequest,
            CallError::ActorFailed(_) => ErrorCode::ActorFailed,
            CallError::Trapped(_) => ErrorCode::Trapped,
            CallError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            CallError::Overloaded(_) => ErrorCode::Overloaded,
            CallError::TooLarge(_) => ErrorCode::TooLarge,
            CallError::Unavailable(_) => ErrorCode::Unavailable,
            CallError::Misdirected(_) => ErrorCode::Misdirected,
            CallError::Timeout(_) => ErrorCode::Timeout,
            CallError::RequestTimeout(_) => ErrorCode::RequestTimeout,
            CallError::OutcomeUnknown(_) => ErrorCode::OutcomeUnknown,
            CallError::Internal(_) => ErrorCode::Internal,
            CallError::Node(e) => ErrorCode::of_node_auth(e),
            CallError::Remote(e) => e.code,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.code().is_retryable()
    }

    /// The error as an API body.
    pub fn to_api(&self) -> ApiError {
        match self {
            CallError::Remote(e) => e.clone(),
            CallError::Auth(e) => ApiError::from(e),
            CallError::Node(e) => ApiError::from(e),
            other => ApiError::new(other.code(), other.to_string()),
        }
    }

    /// An error another node (or the control plane) answered, passed on as it is, except that
    /// a misdirected call stays recognisable for the router to retry.
    pub fn from_api(e: ApiError) -> Self {
        match e.code {
            ErrorCode::Misdirected => CallError::Misdirected(e.message),
            _ => CallError::Remote(e),
        }
    }

    /// A failure talking to the control plane or another node.
    pub fn from_client(e: ClientError) -> Self {
        match e {
            ClientError::Api(api) => CallError::from_api(api),
            ClientError::Timeout { url, timeout } => {
                CallError::Unavailable(format!("no answer from {url} within {timeout:?}"))
            }
            other if other.is_retryable() => CallError::Unavailable(other.to_string()),
            other => CallError::Internal(other.to_string()),
        }
    }
}
