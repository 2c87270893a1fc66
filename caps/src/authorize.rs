//! [`authorize`]: the pure check of one [`Request`] against an effective capability, and
//! [`Denied`], which names the constraint a refused request failed.

use crate::capability::{Capability, Field, KeyScope, Rights, Window};

/// One request to be checked against a capability. A `None` target means the operation spans
/// every value of that dimension (deploying a whole actor type has no key), so it is allowed only
/// by a capability unrestricted in that dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The right the operation needs.
    pub right: Rights,
    /// The actor type acted on.
    pub actor_type: Option<&'a str>,
    /// The actor key acted on.
    pub key: Option<&'a str>,
    /// The method called.
    pub method: Option<&'a str>,
    /// Who presents the token (checked against the audience).
    pub presenter: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request needing `right` with no target (fleet-wide operations).
    pub fn new(right: Rights) -> Self {
        Request {
            right,
            actor_type: None,
            key: None,
            method: None,
            presenter: None,
        }
    }

    /// Calling `method` on actor `(actor_type, key)`.
    pub fn invoke(actor_type: &'a str, key: &'a str, method: &'a str) -> Self {
        Request {
            right: Rights::INVOKE,
            actor_type: Some(actor_type),
            key: Some(key),
            method: Some(method),
            presenter: None,
        }
    }

    /// Sets the actor type.
    pub fn on_actor_type(mut self, actor_type: &'a str) -> Self {
        self.actor_type = Some(actor_type);
        self
    }

    /// Sets the actor key.
    pub fn on_key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets who presents the token.
    pub fn presented_by(mut self, presenter: &'a str) -> Self {
        self.presenter = Some(presenter);
        self
    }
}

/// Why a capability does not allow a request; each variant names the failing constraint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// `now < not_before`.
    #[error("token is not valid before {not_before} (now is {now})")]
    NotYetValid {
        /// The token's not-before time.
        not_before: u64,
        /// The time of the check.
        now: u64,
    },
    /// `now >= expires_at`.
    #[error("token expired at {expires_at} (now is {now})")]
    Expired {
        /// The token's expiry.
        expires_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The token names another presenter.
    #[error(
        "token may only be presented by `{audience}`, not by {}",
        quoted(presenter)
    )]
    Audience {
        /// The only principal allowed to present the token.
        audience: String,
        /// Who presented it.
        presenter: Option<String>,
    },
    /// The token lacks the right the operation needs.
    #[error("token does not grant the `{needed}` right (it grants: {granted})")]
    MissingRight {
        /// The right needed.
        needed: Rights,
        /// The rights the token grants.
        granted: Rights,
    },
    /// The token is for another actor type.
    #[error("token is for actor type `{allowed}`, not {}", quoted(requested))]
    ActorType {
        /// The actor type the token allows.
        allowed: String,
        /// The actor type requested (`None`: all types).
        requested: Option<String>,
    },
    /// The token does not cover the key.
    #[error("token covers {allowed}, not {}", quoted(requested))]
    Key {
        /// The keys the token covers.
        allowed: KeyScope,
        /// The key requested (`None`: all keys).
        requested: Option<String>,
    },
    /// The token does not allow the method.
    #[error("token does not allow method {} (allowed: {})", quoted(requested), allowed.join(", "))]
    Method {
        /// The methods the token allows.
        allowed: Vec<String>,
        /// The method requested (`None`: all methods).
        requested: Option<String>,
    },
}

fn quoted(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("`{v}`"),
        None => "all of them".to_owned(),
    }
}

impl Denied {
    /// The constraint that failed.
    pub fn field(&self) -> Field {
        match self {
            Denied::NotYetValid { .. } => Field::NotBefore,
            Denied::Expired { .. } => Field::ExpiresAt,
            Denied::Audience { .. } => Field::Audience,
            Denied::MissingRight { .. } => Field::Rights,
            Denied::ActorType { .. } => Field::ActorType,
            Denied::Key { .. } => Field::Keys,
            Denied::Method { .. } => Field::Methods,
        }
    }

    /// Whether the same request can succeed later with the same token (only a token that is not
    /// yet valid can).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Denied::NotYetValid { .. })
    }
}

/// Checks only the validity window, the audience and the right, for operations that are not
/// about particular actors (uploading a content-addressed module) or that check scope themselves
/// (minting and revoking compare whole capabilities).
pub fn authorize_right(
    cap: &Capability,
    right: Rights,
    presenter: Option<&str>,
    now: u64,
) -> Result<(), Denied> {
    match cap.window(now) {
        Window::Open => {}
        Window::NotYet(not_before) => return Err(Denied::NotYetValid { not_before, now }),
        Window::Expired(expires_at) => return Err(Denied::Expired { expires_at, now }),
    }
    if let Some(audience) = &cap.audience
        && presenter != Some(audience.as_str())
    {
        return Err(Denied::Audience {
            audience: audience.clone(),
            presenter: presenter.map(str::to_owned),
        });
    }
    let granted = cap.granted_rights();
    if !granted.contains(right) {
        return Err(Denied::MissingRight {
            needed: right,
            granted,
        });
    }
    Ok(())
}

/// Checks one request against an effective capability at time `now` (Unix seconds).
/// Pure: allocates only to describe a denial.
pub fn authorize(cap: &Capability, req: &Request<'_>, now: u64) -> Result<(), Denied> {
    authorize_right(cap, req.right, req.presenter, now)?;
    if let Some(allowed) = &cap.actor_type
        && req.actor_type != Some(allowed.as_str())
    {
        return Err(Denied::ActorType {
            allowed: allowed.clone(),
            requested: req.actor_type.map(str::to_owned),
        });
    }
    if let Some(scope) = &cap.keys
        && !req.key.is_some_and(|k| scope.contains(k))
    {
        return Err(Denied::Key {
            allowed: scope.clone(),
            requested: req.key.map(str::to_owned),
        });
    }
    if let Some(methods) = &cap.methods
        && !req.method.is_some_and(|m| methods.contains(m))
    {
        return Err(Denied::Method {
            allowed: methods.iter().cloned().collect(),
            requested: req.method.map(str::to_owned),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_names_the_failing_constraint() {
        let cap = Capability::unrestricted()
            .actor_type("counter")
            .key("k1")
            .methods(["inc"])
            .rights(Rights::INVOKE)
            .not_before(10)
            .expires_at(20)
            .audience("me");
        let ok = Request::invoke("counter", "k1", "inc").presented_by("me");
        assert_eq!(authorize(&cap, &ok, 15), Ok(()));
        let field = |req: Request<'_>, now| authorize(&cap, &req, now).unwrap_err().field();
        assert_eq!(field(ok, 9), Field::NotBefore);
        assert_eq!(field(ok, 20), Field::ExpiresAt);
        assert_eq!(
            field(
                Request {
                    presenter: None,
                    ..ok
                },
                15
            ),
            Field::Audience
        );
        assert_eq!(
            field(
                Request {
                    right: Rights::DEPLOY,
                    ..ok
                },
                15
            ),
            Field::Rights
        );
        assert_eq!(
            field(
                Request {
                    actor_type: Some("chat"),
                    ..ok
                },
                15
            ),
            Field::ActorType
        );
        assert_eq!(
            field(
                Request {
                    key: Some("k2"),
                    ..ok
                },
                15
            ),
            Field::Keys
        );
        assert_eq!(field(Request { key: None, ..ok }, 15), Field::Keys);
        assert_eq!(
            field(
                Request {
                    method: Some("get"),
                    ..ok
                },
                15
            ),
            Field::Methods
        );
        let msg = authorize(
            &cap,
            &Request {
                right: Rights::DEPLOY,
                ..ok
            },
            15,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            msg,
            "token does not grant the `deploy` right (it grants: invoke)"
        );
    }
}
