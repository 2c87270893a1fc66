//! What a token allows: the fields a block may set and how a block narrows its parent. Checking
//! a request against a capability is [`authorize`](fn@crate::authorize)'s part.
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
}
