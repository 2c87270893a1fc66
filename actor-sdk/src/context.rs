//! [`Context`]: which actor a call runs in, and who made it.

use crate::__bindings::latchkey::actor::types::Context as RawContext;

/// The activation a call runs in: this actor's type and key, the caller, and the code version.
///
/// Every entry point ([`Actor::activate`](crate::Actor::activate),
/// [`Actor::upgrade`](crate::Actor::upgrade) and each handler) receives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    actor_type: String,
    key: String,
    caller: Option<String>,
    code_version: String,
}

impl Context {
    /// A context for actor `(actor_type, key)` with no known caller and an empty code version;
    /// for tests that call handlers directly.
    pub fn new(actor_type: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            actor_type: actor_type.into(),
            key: key.into(),
            caller: None,
            code_version: String::new(),
        }
    }

    /// This context with `caller` as the caller.
    #[must_use]
    pub fn with_caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = Some(caller.into());
        self
    }

    /// This context with `code_version` as the code version.
    #[must_use]
    pub fn with_code_version(mut self, code_version: impl Into<String>) -> Self {
        self.code_version = code_version.into();
        self
    }

    /// This actor's type, e.g. `counter`.
    pub fn actor_type(&self) -> &str {
        &self.actor_type
    }

    /// This actor's key: which instance of the type this is.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Who made the call: the id of the capability token it presented, if the host knows it.
    pub fn caller(&self) -> Option<&str> {
        self.caller.as_deref()
    }

    /// Content id of the code version running.
    pub fn code_version(&self) -> &str {
        &self.code_version
    }
}

impl From<RawContext> for Context {
    fn from(raw: RawContext) -> Self {
        Self {
            actor_type: raw.actor_type,
            key: raw.key,
            caller: raw.caller,
            code_version: raw.code_version,
        }
    }
}
