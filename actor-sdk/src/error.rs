//! [`Error`]: what a handler returns to its caller when it fails.

use std::fmt;

use crate::__bindings::latchkey::actor::types::Error as RawError;
use crate::actors::{AttenuateError, CallError};
use crate::storage::StorageError;

/// `Result<T, Error>`: what handlers, [`Actor::activate`](crate::Actor::activate) and
/// [`Actor::upgrade`](crate::Actor::upgrade) return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error a handler returns to its caller; the host turns it into an HTTP status.
///
/// The SDK's helpers' errors convert into [`Error::Failed`] (keeping their message), so `?`
/// works on them inside a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No such method (HTTP 404). [`export_actor!`](crate::export_actor) returns it for methods
    /// it does not list.
    UnknownMethod(String),
    /// The payload could not be understood (HTTP 400). [`export_actor!`](crate::export_actor)
    /// returns it when the payload does not decode into the handler's argument type.
    BadRequest(String),
    /// Anything else (HTTP 500).
    Failed(String),
}

impl Error {
    /// An [`Error::Failed`] with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// An [`Error::BadRequest`] with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// An [`Error::UnknownMethod`] with `message`.
    pub fn unknown_method(message: impl Into<String>) -> Self {
        Self::UnknownMethod(message.into())
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::UnknownMethod(m) | Self::BadRequest(m) | Self::Failed(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMethod(m) => write!(f, "unknown method: {m}"),
            Self::BadRequest(m) => write!(f, "bad request: {m}"),
            Self::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<AttenuateError> for Error {
    fn from(e: AttenuateError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// A JSON error inside a handler is the actor's own fault ([`Error::Failed`]); arguments that
/// do not decode are reported as [`Error::BadRequest`] before the handler runs.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::Failed(message.to_owned())
    }
}

impl From<Error> for RawError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownMethod(m) => Self::UnknownMethod(m),
            Error::BadRequest(m) => Self::BadRequest(m),
            Error::Failed(m) => Self::Failed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_errors_become_failed_with_their_text() {
        let denied: Error = CallError::Denied("method `get` is not allowed".into()).into();
        assert_eq!(denied, Error::failed("denied: method `get` is not allowed"));
        let fenced: Error = StorageError::Fenced("epoch 3".into()).into();
        assert_eq!(fenced.message(), "activation fenced: epoch 3");
        assert_eq!(Error::from("x"), Error::Failed("x".into()));
        assert_eq!(Error::bad_request("y").to_string(), "bad request: y");
    }
}
