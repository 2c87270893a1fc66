//! Calling other actors with capability tokens this actor holds, and narrowing tokens offline.
//!
//! A token (text form `lk1.…`) names what its holder may do. An actor gets tokens from its
//! callers (in arguments) or from [`self_token`], and can narrow any of them with [`attenuate`]
//! before passing it on; nobody can widen one.
//!
//! ```
//! use latchkey_actor_sdk::actors::{self, Restrictions};
//!
//! # fn demo(token: &str) -> latchkey_actor_sdk::Result<u64> {
//! // Only `inc` on counter `user/42`, for a minute.
//! let narrow = actors::attenuate(
//!     token,
//!     &Restrictions::new().actor_type("counter").key("user/42").methods(["inc"]).expires_in_secs(60),
//! )?;
//! let n: u64 = actors::call(&narrow, "counter", "user/42", "inc", &Some(5))?;
//! # Ok(n)
//! # }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::latchkey::actor::actors as imp;

/// Why a call to another actor failed. Converts into [`Error::Failed`](crate::Error::Failed)
/// with this error's text (e.g. `denied: …`), so the reason reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The token is malformed, forged, expired or revoked.
    InvalidToken(String),
    /// The token does not allow this call (the message names the constraint).
    Denied(String),
    /// No deployment for the actor type.
    NotFound(String),
    /// The callee's mailbox is full; retry later.
    Overloaded(String),
    /// The callee could not be reached or placed; retry later.
    Unavailable(String),
    /// The callee returned an error.
    Failed(String),
    /// The callee trapped or hit a resource limit.
    Trapped(String),
    /// The call may or may not have taken effect (its answer was lost after it was sent on,
    /// or its commit was never confirmed). Not retryable as such: retrying may apply it twice.
    OutcomeUnknown(String),
    /// The arguments could not be encoded as JSON, or the answer not decoded into the type
    /// asked for.
    Encoding(String),
}

impl CallError {
    /// Whether trying the same call again later may succeed ([`Overloaded`](Self::Overloaded),
    /// [`Unavailable`](Self::Unavailable)).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Overloaded(_) | Self::Unavailable(_))
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidToken(m) => write!(f, "invalid token: {m}"),
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::NotFound(m) => write!(f, "not found: {m}"),
            Self::Overloaded(m) => write!(f, "overloaded: {m}"),
            Self::Unavailable(m) => write!(f, "unavailable: {m}"),
            Self::Failed(m) => write!(f, "callee failed: {m}"),
            Self::Trapped(m) => write!(f, "callee trapped: {m}"),
            Self::OutcomeUnknown(m) => write!(f, "outcome unknown: {m}"),
            Self::Encoding(m) => write!(f, "call encoding: {m}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<imp::CallError> for CallError {
    fn from(e: imp::CallError) -> Self {
        match e {
            imp::CallError::InvalidToken(m) => Self::InvalidToken(m),
            imp::CallError::Denied(m) => Self::Denied(m),
            imp::CallError::NotFound(m) => Self::NotFound(m),
            imp::CallError::Overloaded(m) => Self::Overloaded(m),
            imp::CallError::Unavailable(m) => Self::Unavailable(m),
            imp::CallError::Failed(m) => Self::Failed(m),
            imp::CallError::Trapped(m) => Self::Trapped(m),
            imp::CallError::OutcomeUnknown(m) => Self::OutcomeUnknown(m),
        }
    }
}

/// Why [`attenuate`] refused: the token is malformed, or a restriction would widen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttenuateError(String);

impl AttenuateError {
    /// The host's explanation.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttenuateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot attenuate the token: {}", self.0)
    }
}

impl std::error::Error for AttenuateError {}

/// How to narrow a token with [`attenuate`]: each restriction set must lie within the token's
/// own capability. Unset fields keep what the token allows.
#[derive(Debug, Clone)]
pub struct Restrictions(imp::Restrictions);

impl Default for Restrictions {
    fn default() -> Self {
        Self::new()
    }
}

impl Restrictions {
    /// No restriction (attenuating with it keeps the token's capability).
    pub fn new() -> Self {
        Self(imp::Restrictions {
            actor_type: None,
            key: None,
            key_prefix: None,
            methods: None,
            rights: None,
            expires_in_secs: None,
            audience: None,
        })
    }

    /// Only actors of type `actor_type`.
    #[must_use]
    pub fn actor_type(mut self, actor_type: impl Into<String>) -> Self {
        self.0.actor_type = Some(actor_type.into());
        self
    }

    /// Only the actor with exactly this key.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.key = Some(key.into());
        self
    }

    /// Only actors whose key starts with `prefix`.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.0.key_prefix = Some(prefix.into());
        self
    }

    /// Only these methods.
    #[must_use]
    pub fn methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, methods: I) -> Self {
        self.0.methods = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// Only these rights, by name: `invoke`, `deploy`, `mint`, `revoke`, `admin`, `read-state`,
    /// `tail`.
    #[must_use]
    pub fn rights<I: IntoIterator<Item = S>, S: Into<String>>(mut self, rights: I) -> Self {
        self.0.rights = Some(rights.into_iter().map(Into::into).collect());
        self
    }

    /// Expiring at most `secs` seconds from now.
    #[must_use]
    pub fn expires_in_secs(mut self, secs: u64) -> Self {
        self.0.expires_in_secs = Some(secs);
        self
    }

    /// Only presentable by `audience`.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.0.audience = Some(audience.into());
        self
    }
}

/// Calls `method` on actor `(actor_type, key)` presenting `token`, with `args` encoded as JSON,
/// and decodes the answer from JSON (an empty answer reads as `null`).
pub fn call<A, R>(
    token: &str,
    actor_type: &str,
    key: &str,
    method: &str,
    args: &A,
) -> Result<R, CallError>
where
    A: Serialize + ?Sized,
    R: DeserializeOwned,
{
    let payload = serde_json::to_vec(args).map_err(|e| {
        CallError::Encoding(format!("cannot encode the arguments of `{method}`: {e}"))
    })?;
    let answer = call_raw(token, actor_type, key, method, &payload)?;
    let answer: &[u8] = if answer.is_empty() { b"null" } else { &answer };
    serde_json::from_slice(answer).map_err(|e| {
        CallError::Encoding(format!(
            "cannot decode the answer of `{actor_type}` `{method}`: {e}"
        ))
    })
}

/// Calls `method` on actor `(actor_type, key)` presenting `token`, with `payload` as is, and
/// returns the answer's bytes.
pub fn call_raw(
    token: &str,
    actor_type: &str,
    key: &str,
    method: &str,
    payload: &[u8],
) -> Result<Vec<u8>, CallError> {
    Ok(imp::call(token, actor_type, key, method, payload)?)
}

/// Narrows `token` offline; fails if a restriction would widen it. Returns the new token's text.
pub fn attenuate(token: &str, restrictions: &Restrictions) -> Result<String, AttenuateError> {
    imp::attenuate(token, &restrictions.0).map_err(AttenuateError)
}

/// A token for this actor itself (invoke, every method), to narrow and hand out.
pub fn self_token() -> String {
    imp::self_token()
}
