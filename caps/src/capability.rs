//! What a token allows: the fields a block may set, how a block narrows its parent, and
//! [`authorize`], the pure check of one request against an effective capability.
//!
//! A [`Capability`] is a set of constraints; an unset field means "unrestricted". The same type
//! describes one block's restrictions and the effective capability of a whole chain. A block may
//! only narrow: [`Capability::narrow`] rejects any field that is not within its parent's, so the
//! effective capability is both the intersection of all blocks and equal to the last one folded in.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

bitflags::bitflags! {
    /// Rights a token can grant. Rights are independent: `admin` does not imply the others.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Rights: u8 {
        /// Call actor methods.
        const INVOKE = 1 << 0;
        /// Upload modules and deploy, canary or roll back versions.
        const DEPLOY = 1 << 1;
        /// Mint new tokens.
        const MINT = 1 << 2;
        /// Revoke tokens.
        const REVOKE = 1 << 3;
        /// Operate the fleet: nodes, activations, keys.
        const ADMIN = 1 << 4;
        /// Read an actor's durable state directly.
        const READ_STATE = 1 << 5;
        /// Follow actors' log lines and call outcomes as they happen (`latchkey tail`).
        const TAIL = 1 << 6;
        /// Enrol an edge node (only in single-purpose enrolment tokens, which the control plane
        /// makes for operators; the mint API never grants it).
        const NODE = 1 << 7;
    }
}

const RIGHT_NAMES: [(Rights, &str); 8] = [
    (Rights::INVOKE, "invoke"),
    (Rights::DEPLOY, "deploy"),
    (Rights::MINT, "mint"),
    (Rights::REVOKE, "revoke"),
    (Rights::ADMIN, "admin"),
    (Rights::READ_STATE, "read-state"),
    (Rights::TAIL, "tail"),
    (Rights::NODE, "node"),
];

impl Rights {
    /// The name of every right, in bit order (`invoke`, …, `tail`).
    pub fn names() -> impl Iterator<Item = &'static str> {
        RIGHT_NAMES.iter().map(|(_, name)| *name)
    }
}

impl fmt::Display for Rights {
    /// Comma-separated names, e.g. `invoke,read-state`; `none` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (right, name) in RIGHT_NAMES {
            if self.contains(right) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

impl FromStr for Rights {
    type Err = String;

    /// Parses comma-separated right names (`invoke,deploy`), or `none`, or `all` (every right a
    /// token can be minted with: all but `node`, which only enrolment tokens carry).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" | "" => return Ok(Rights::empty()),
            "all" => return Ok(Rights::all().difference(Rights::NODE)),
            _ => {}
        }
        s.split(',').try_fold(Rights::empty(), |acc, name| {
            let name = name.trim();
            RIGHT_NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(r, _)| acc | *r)
                .ok_or_else(|| {
                    let known: Vec<&str> = Rights::names().collect();
                    format!("unknown right `{name}` (known: {})", known.join(", "))
                })
        })
    }
}

/// Which actor keys a capability covers.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum KeyScope {
    /// Exactly this key.
    Exact(String),
    /// Every key starting with this prefix (byte-wise: `user/1` also covers `user/10`).
    Prefix(String),
}

impl KeyScope {
    /// Whether `key` is covered.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            KeyScope::Exact(k) => k == key,
            KeyScope::Prefix(p) => key.starts_with(p.as_str()),
        }
    }

    /// Whether every key covered by `self` is covered by `parent`.
    pub fn is_within(&self, parent: &KeyScope) -> bool {
        match (self, parent) {
            (KeyScope::Exact(k), _) => parent.contains(k),
            (KeyScope::Prefix(p), KeyScope::Prefix(pp)) => p.starts_with(pp.as_str()),
            (KeyScope::Prefix(_), KeyScope::Exact(_)) => false,
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyScope::Exact(k) => write!(f, "key `{k}`"),
            KeyScope::Prefix(p) => write!(f, "keys starting with `{p}`"),
        }
    }
}

impl fmt::Debug for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyScope::Exact(k) => write!(f, "Exact({k:?})"),
            KeyScope::Prefix(p) => write!(f, "Prefix({p:?})"),
        }
    }
}

/// A field of a capability, used to name the constraint an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// [`Capability::actor_type`].
    ActorType,
    /// [`Capability::keys`].
    Keys,
    /// [`Capability::methods`].
    Methods,
    /// [`Capability::rights`].
    Rights,
    /// [`Capability::not_before`].
    NotBefore,
    /// [`Capability::expires_at`].
    ExpiresAt,
    /// [`Capability::audience`].
    Audience,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::ActorType => "actor type",
            Field::Keys => "key scope",
            Field::Methods => "methods",
            Field::Rights => "rights",
            Field::NotBefore => "not-before",
            Field::ExpiresAt => "expiry",
            Field::Audience => "audience",
        })
    }
}

/// A set of constraints. `None` in a field means "unrestricted". Times are Unix seconds; a
/// capability is valid while `not_before <= now < expires_at`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capability {
    /// Only this actor type.
    pub actor_type: Option<String>,
    /// Only these keys.
    pub keys: Option<KeyScope>,
    /// Only these methods.
    pub methods: Option<BTreeSet<String>>,
    /// Only these rights.
    pub rights: Option<Rights>,
    /// Not valid before this time.
    pub not_before: Option<u64>,
    /// Not valid from this time on.
    pub expires_at: Option<u64>,
    /// Only this principal may present the token.
    pub audience: Option<String>,
}

impl Capability {
    /// No constraint at all (what an issuer key can grant).
    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// Restricts to one actor type.
    pub fn actor_type(mut self, actor_type: impl Into<String>) -> Self {
        self.actor_type = Some(actor_type.into());
        self
    }

    /// Restricts to exactly one key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys = Some(KeyScope::Exact(key.into()));
        self
    }

    /// Restricts to keys starting with `prefix`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = Some(KeyScope::Prefix(prefix.into()));
        self
    }

    /// Restricts to these methods.
    pub fn methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.methods = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// Restricts to these rights.
    pub fn rights(mut self, rights: Rights) -> Self {
        self.rights = Some(rights);
        self
    }

    /// Not valid before `unix_secs`.
    pub fn not_before(mut self, unix_secs: u64) -> Self {
        self.not_before = Some(unix_secs);
        self
    }

    /// Expires at `unix_secs`.
    pub fn expires_at(mut self, unix_secs: u64) -> Self {
        self.expires_at = Some(unix_secs);
        self
    }

    /// Only `principal` may present the token.
    pub fn audience(mut self, principal: impl Into<String>) -> Self {
        self.audience = Some(principal.into());
        self
    }

    /// The rights granted (all rights when unrestricted).
    pub fn granted_rights(&self) -> Rights {
        self.rights.unwrap_or(Rights::all())
    }

    /// Applies a block's restrictions to this capability. Every field the block sets must lie
    /// within this capability's; otherwise the block is a widening attempt and the first such
    /// field is returned.
    pub fn narrow(&self, block: &Capability) -> Result<Capability, Field> {
        fn pick<T: Clone>(
            parent: &Option<T>,
            child: &Option<T>,
            within: impl Fn(&T, &T) -> bool,
            field: Field,
        ) -> Result<Option<T>, Field> {
            match (parent, child) {
                (_, None) => Ok(parent.clone()),
                (None, Some(_)) => Ok(child.clone()),
                (Some(p), Some(c)) if within(c, p) => Ok(child.clone()),
                (Some(_), Some(_)) => Err(field),
            }
        }
        Ok(Capability {
            actor_type: pick(
                &self.actor_type,
                &block.actor_type,
                |c, p| c == p,
                Field::ActorType,
            )?,
            keys: pick(&self.keys, &block.keys, KeyScope::is_within, Field::Keys)?,
            methods: pick(
                &self.methods,
                &block.methods,
                |c, p| c.is_subset(p),
                Field::Methods,
            )?,
            rights: pick(
                &self.rights,
                &block.rights,
                |c, p| p.contains(*c),
                Field::Rights,
            )?,
            not_before: pick(
                &self.not_before,
                &block.not_before,
                |c, p| c >= p,
                Field::NotBefore,
            )?,
            expires_at: pick(
                &self.expires_at,
                &block.expires_at,
                |c, p| c <= p,
                Field::ExpiresAt,
            )?,
            audience: pick(
                &self.audience,
                &block.audience,
                |c, p| c == p,
                Field::Audience,
            )?,
        })
    }

    /// Whether `self`, as a block, would be accepted under `parent` (every field `self` sets is
    /// within `parent`'s; a field `self` leaves unset inherits). For two whole capabilities,
    /// where unset means unrestricted, use [`Capability::covers`].
    pub fn is_within(&self, parent: &Capability) -> bool {
        parent.narrow(self).is_ok()
    }

    /// Whether every request `other` allows, `self` allows too, comparing two whole (effective)
    /// capabilities: a field unset in `other` is unrestricted, so it is covered only by a field
    /// unset in `self`. Returns the first field that is not covered.
    pub fn covers(&self, other: &Capability) -> Result<(), Field> {
        fn field<T>(
            mine: &Option<T>,
            theirs: &Option<T>,
            within: impl Fn(&T, &T) -> bool,
            name: Field,
        ) -> Result<(), Field> {
            match (mine, theirs) {
                (None, _) => Ok(()),
                (Some(m), Some(t)) if within(t, m) => Ok(()),
                _ => Err(name),
            }
        }
        field(
            &self.actor_type,
            &other.actor_type,
            |t, m| t == m,
            Field::ActorType,
        )?;
        field(&self.keys, &other.keys, KeyScope::is_within, Field::Keys)?;
        field(
            &self.methods,
            &other.methods,
            |t, m| t.is_subset(m),
            Field::Methods,
        )?;
        field(
            &self.rights,
            &other.rights,
            |t, m| m.contains(*t),
            Field::Rights,
        )?;
        field(
            &self.not_before,
            &other.not_before,
            |t, m| t >= m,
            Field::NotBefore,
        )?;
        field(
            &self.expires_at,
            &other.expires_at,
            |t, m| t <= m,
            Field::ExpiresAt,
        )?;
        field(
            &self.audience,
            &other.audience,
            |t, m| t == m,
            Field::Audience,
        )
    }

    /// The part of a capability that says which actors and methods it reaches (actor type,
    /// keys, methods), without rights, times or audience.
    pub fn scope(&self) -> Capability {
        Capability {
            actor_type: self.actor_type.clone(),
            keys: self.keys.clone(),
            methods: self.methods.clone(),
            ..Capability::default()
        }
    }

    /// Where `now` falls in the validity window.
    pub(crate) fn window(&self, now: u64) -> Window {
        match (self.not_before, self.expires_at) {
            (Some(not_before), _) if now < not_before => Window::NotYet(not_before),
            (_, Some(expires_at)) if now >= expires_at => Window::Expired(expires_at),
            _ => Window::Open,
        }
    }
}

/// Where a time falls relative to a capability's validity window.
pub(crate) enum Window {
    Open,
    NotYet(u64),
    Expired(u64),
}

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
    fn rights_text_round_trips_and_names_unknowns() {
        let r: Rights = "invoke, read-state".parse().unwrap();
        assert_eq!(r, Rights::INVOKE | Rights::READ_STATE);
        assert_eq!(r.to_string().parse::<Rights>().unwrap(), r);
        assert_eq!(
            "all".parse::<Rights>().unwrap(),
            Rights::all().difference(Rights::NODE)
        );
        let err = "invoke,fly".parse::<Rights>().unwrap_err();
        assert!(err.contains("`fly`"), "{err}");
    }

    #[test]
    fn key_scopes_nest_by_prefix() {
        let user = KeyScope::Prefix("user/".into());
        assert!(KeyScope::Exact("user/1".into()).is_within(&user));
        assert!(KeyScope::Prefix("user/1".into()).is_within(&user));
        assert!(!KeyScope::Prefix("use".into()).is_within(&user));
        assert!(!user.is_within(&KeyScope::Exact("user/".into())));
        assert!(!KeyScope::Exact("admin".into()).is_within(&user));
    }

    #[test]
    fn narrow_rejects_each_widened_field() {
        let parent = Capability::unrestricted()
            .actor_type("counter")
            .key_prefix("user/")
            .methods(["get", "inc"])
            .rights(Rights::INVOKE)
            .not_before(100)
            .expires_at(200)
            .audience("node-a");
        let cases = [
            (
                Capability::unrestricted().actor_type("chat"),
                Field::ActorType,
            ),
            (Capability::unrestricted().key_prefix("u"), Field::Keys),
            (
                Capability::unrestricted().methods(["get", "put"]),
                Field::Methods,
            ),
            (
                Capability::unrestricted().rights(Rights::all()),
                Field::Rights,
            ),
            (Capability::unrestricted().not_before(99), Field::NotBefore),
            (Capability::unrestricted().expires_at(201), Field::ExpiresAt),
            (
                Capability::unrestricted().audience("node-b"),
                Field::Audience,
            ),
        ];
        for (block, field) in cases {
            assert_eq!(parent.narrow(&block), Err(field));
        }
        let child = parent
            .narrow(&Capability::unrestricted().key("user/7").methods(["get"]))
            .unwrap();
        assert_eq!(child.keys, Some(KeyScope::Exact("user/7".into())));
        assert_eq!(child.actor_type.as_deref(), Some("counter"));
        assert!(child.is_within(&parent));
    }

    #[test]
    fn covers_treats_an_unset_field_of_a_whole_capability_as_unrestricted() {
        let chat_only = Capability::unrestricted().actor_type("chat");
        // As a block, an unset actor type inherits `chat`; as a whole token it reaches every type.
        assert!(Capability::unrestricted().is_within(&chat_only));
        assert_eq!(
            chat_only.covers(&Capability::unrestricted()),
            Err(Field::ActorType)
        );
        assert_eq!(chat_only.covers(&chat_only.clone().key("room/1")), Ok(()));
        assert_eq!(
            Capability::unrestricted().covers(&chat_only),
            Ok(()),
            "an unrestricted capability covers everything"
        );
        let some_methods = Capability::unrestricted().methods(["get"]);
        assert_eq!(
            some_methods.covers(&Capability::unrestricted().methods(["get", "put"])),
            Err(Field::Methods)
        );
        assert_eq!(
            Capability::unrestricted()
                .expires_at(10)
                .covers(&Capability::unrestricted()),
            Err(Field::ExpiresAt)
        );
    }

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
