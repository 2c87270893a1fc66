//! The error body every Latchkey HTTP API returns: a stable code, a message naming what was
//! wrong, and whether retrying can help.

use std::fmt;

use latchkey_caps::AuthError;
use latchkey_caps::node::NodeAuthError;
use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes; each maps to one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed request.
    BadRequest,
    /// 401: missing, malformed, forged, expired or revoked token.
    Unauthenticated,
    /// 403: valid token, but it does not allow this request.
    Forbidden,
    /// 404: no such module, version, actor type, node or route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 408: the request (its body) did not arrive within the server's timeout; nothing was
    /// done.
    RequestTimeout,
    /// 409: the request conflicts with current state (e.g. a deploy in progress).
    Conflict,
    /// 409: a stale activation tried to read or commit (its node, epoch or generation is no
    /// longer the owner's).
    Fenced,
    /// 410: a follow cursor is older than the retained change feed; resynchronise.
    Gone,
    /// 421: a forwarded call reached a node that does not hold the actor (it moved); the sender
    /// asks the control plane again.
    Misdirected,
    /// 413: body, key, value or batch too large.
    TooLarge,
    /// 422: the request is well formed but invalid (e.g. a module that is not an actor).
    Invalid,
    /// 429: the actor's mailbox is full.
    Overloaded,
    /// 429: the caller made more requests of a rate-limited kind (e.g. creating new actors) than
    /// its limit allows; retry after a while (the message names the limit).
    RateLimited,
    /// 507: the actor's stored bytes would exceed its storage quota (the message names the
    /// limit and the usage); nothing of the call was committed. Not retryable as such: the
    /// actor must delete data first.
    QuotaExceeded,
    /// 500: a bug.
    Internal,
    /// 500: the actor's handler returned an error (`failed`); its writes were committed.
    ActorFailed,
    /// 500: the actor trapped (e.g. panicked); nothing it wrote in that call was committed and
    /// the instance was reset.
    Trapped,
    /// 500: the call exceeded its CPU time or memory limit; nothing it wrote was committed and
    /// the instance was reset.
    LimitExceeded,
    /// 502: a downstream node or actor failed.
    BadGateway,
    /// 503: the store or a node is unavailable; retry later.
    Unavailable,
    /// 504: a deadline passed.
    Timeout,
    /// 504: the call may or may not have taken effect (its answer was lost after it was sent
    /// on, or its commit was never confirmed). Not retryable as such: retrying may apply it
    /// twice; read the actor's state to find out.
    OutcomeUnknown,
}

impl ErrorCode {
    /// The HTTP status for this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict | ErrorCode::Fenced => 409,
            ErrorCode::Gone => 410,
            ErrorCode::Misdirected => 421,
            ErrorCode::TooLarge => 413,
            ErrorCode::Invalid => 422,
            ErrorCode::Overloaded | ErrorCode::RateLimited => 429,
            ErrorCode::Internal
            | ErrorCode::ActorFailed
            | ErrorCode::Trapped
            | ErrorCode::LimitExceeded => 500,
            ErrorCode::BadGateway => 502,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout | ErrorCode::OutcomeUnknown => 504,
            ErrorCode::QuotaExceeded => 507,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable
                | ErrorCode::Overloaded
                | ErrorCode::RateLimited
                | ErrorCode::Timeout
                | ErrorCode::RequestTimeout
                | ErrorCode::Misdirected
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(s.as_str().unwrap_or("error"))
    }
}

/// An API error as sent over the wire (JSON in every API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What kind of error.
    pub code: ErrorCode,
    /// What was wrong, for a human.
    pub message: String,
    /// Whether retrying the same request can help.
    pub retryable: bool,
}

impl ApiError {
    /// An error with `code`'s default retryability.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retryable: code.is_retryable(),
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an error always serialises")
    }

    /// Parses an error body; any other body becomes an error carrying the status and text.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_else(|_| {
            let code = match status {
                400 => ErrorCode::BadRequest,
                401 => ErrorCode::Unauthenticated,
                403 => ErrorCode::Forbidden,
                404 => ErrorCode::NotFound,
                408 => ErrorCode::RequestTimeout,
                409 => ErrorCode::Conflict,
                421 => ErrorCode::Misdirected,
                413 => ErrorCode::TooLarge,
                429 => ErrorCode::Overloaded,
                502 => ErrorCode::BadGateway,
                503 => ErrorCode::Unavailable,
                504 => ErrorCode::Timeout,
                507 => ErrorCode::QuotaExceeded,
                _ => ErrorCode::Internal,
            };
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]);
            ApiError::new(code, format!("HTTP {status}: {text}"))
        })
    }
}

/// The one mapping of token failures to API errors, used by the control plane and the nodes:
/// 401 for a token that is itself rejected, 403 for a valid token that does not allow the
/// request.
impl From<&AuthError> for ApiError {
    fn from(e: &AuthError) -> Self {
        match e {
            AuthError::Invalid(e) => ApiError::new(
                ErrorCode::of_auth_failure(false),
                format!("invalid token: {e}"),
            ),
            AuthError::Denied(d) => {
                ApiError::new(ErrorCode::of_auth_failure(true), format!("forbidden: {d}"))
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::from(&e)
    }
}

/// The one mapping of node-authentication failures to API errors: 401 naming the reason, 503
/// when a freshly signed retry can succeed, 403 for a node acting for another.
impl From<&NodeAuthError> for ApiError {
    fn from(e: &NodeAuthError) -> Self {
        ApiError::new(
            ErrorCode::of_node_auth(e),
            format!("node authentication failed: {e}"),
        )
    }
}

impl ErrorCode {
    /// The code of a token failure: `denied` (a valid token too narrow) is 403, else 401.
    fn of_auth_failure(denied: bool) -> ErrorCode {
        if denied {
            ErrorCode::Forbidden
        } else {
            ErrorCode::Unauthenticated
        }
    }

    /// The code of a token failure ([`ApiError::from`] gives the whole error).
    pub fn of_auth(e: &AuthError) -> ErrorCode {
        ErrorCode::of_auth_failure(matches!(e, AuthError::Denied(_)))
    }

    /// The code of a node-authentication failure ([`ApiError::from`] gives the whole error).
    pub fn of_node_auth(e: &NodeAuthError) -> ErrorCode {
        match e {
            NodeAuthError::WrongNode { .. } => ErrorCode::Forbidden,
            e if e.is_retryable() => ErrorCode::Unavailable,
            _ => ErrorCode::Unauthenticated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_caps::{Denied, VerifyError};

    #[test]
    fn a_rejected_token_is_401_and_a_too_narrow_one_403() {
        let invalid = AuthError::Invalid(VerifyError::TooLarge { size: 9, max: 1 });
        let e = ApiError::from(&invalid);
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert!(e.message.starts_with("invalid token: "), "{}", e.message);
        let denied = AuthError::Denied(Denied::NotYetValid {
            not_before: 2,
            now: 1,
        });
        let e = ApiError::from(&denied);
        assert_eq!((e.code, e.code.status()), (ErrorCode::Forbidden, 403));
        assert_eq!(ErrorCode::of_auth(&denied), ErrorCode::Forbidden);
    }

    #[test]
    fn a_node_acting_for_another_is_403_and_a_retry_that_can_help_is_503() {
        let wrong = NodeAuthError::WrongNode {
            certified: "a".into(),
            claimed: "b".into(),
        };
        assert_eq!(ApiError::from(&wrong).code, ErrorCode::Forbidden);
        assert_eq!(
            ApiError::from(&NodeAuthError::ReplayCacheFull).code,
            ErrorCode::Unavailable
        );
        let missing = ApiError::from(&NodeAuthError::Missing("x-latchkey-signature"));
        assert_eq!(missing.code, ErrorCode::Unauthenticated);
        assert!(missing.message.starts_with("node authentication failed: "));
    }
}
