//! `latchkey_token`: a capability minted by the control plane (never wider than the provider's
//! own token), exposed as a sensitive attribute. Tokens are immutable: changing any setting
//! mints a new one (and revokes the old). Destroy revokes it; a token revoked or expired behind
//! Terraform's back reads as gone, so the next apply mints a fresh one.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use latchkey_caps::{KeyScope, NoRevocations, PublicKey, Token, TrustedKeys};
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{MintRequest, RevokeRequest};
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueList, ValueString};
use tf_provider::{AttributePath, Diagnostics};

use crate::diag::{api_error, attribute_error, mint_attribute};
use crate::managed::Managed;
use crate::number::{Number, whole_in};
use crate::provider::Shared;
use crate::schema::{Set, attr, block, secret, strings};

/// The resource.
pub(crate) struct TokenResource(pub(crate) Shared);

/// Its state.
#[derive(Serialize, Deserialize)]
pub(crate) struct State<'a> {
    actor_type: ValueString<'a>,
    key: ValueString<'a>,
    key_prefix: ValueString<'a>,
    methods: ValueList<ValueString<'a>>,
    rights: ValueList<ValueString<'a>>,
    expires_in: Value<Number>,
    audience: ValueString<'a>,
    token: ValueString<'a>,
    token_id: ValueString<'a>,
    expires_at: Value<Number>,
}

/// `expires_in`: seconds, above 0.
fn lifetime(n: &Number) -> Result<u64, String> {
    whole_in("expires_in", n, 1, u64::MAX)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn text(v: &ValueString<'_>) -> Option<String> {
    v.as_deref_option().map(str::to_owned)
}

fn texts(v: &ValueList<ValueString<'_>>) -> Option<Vec<String>> {
    v.as_ref_option()
        .map(|items| items.iter().filter_map(text).collect())
}

impl State<'_> {
    /// The mint request; the error names `expires_in`.
    fn request(&self) -> Result<MintRequest, String> {
        Ok(MintRequest {
            actor_type: text(&self.actor_type),
            key: text(&self.key),
            key_prefix: text(&self.key_prefix),
            methods: texts(&self.methods),
            rights: texts(&self.rights),
            expires_in_secs: self.expires_in.as_ref_option().map(lifetime).transpose()?,
            audience: text(&self.audience),
        })
    }

    /// The settings that differ from `other`'s.
    fn changed_settings(&self, other: &State<'_>) -> Vec<AttributePath> {
        [
            ("actor_type", self.actor_type != other.actor_type),
            ("key", self.key != other.key),
            ("key_prefix", self.key_prefix != other.key_prefix),
            ("methods", self.methods != other.methods),
            ("rights", self.rights != other.rights),
            ("expires_in", self.expires_in != other.expires_in),
            ("audience", self.audience != other.audience),
        ]
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| AttributePath::new(name))
        .collect()
    }
}

fn check(diags: &mut Diagnostics, config: &State<'_>) -> Option<()> {
    let before = diags.errors.len();
    if let (Value::Value(_), Value::Value(_)) = (&config.key, &config.key_prefix) {
        attribute_error(
            diags,
            "key_prefix",
            "give `key` (one actor) or `key_prefix` (every key starting with it), not both",
        );
    }
    if let Value::Value(s) = &config.expires_in
        && let Err(message) = lifetime(s)
    {
        attribute_error(diags, "expires_in", message);
    }
    if let Value::Value(rights) = &config.rights {
        for right in rights.iter().filter_map(|r| r.as_deref_option()) {
            if let Err(message) = right.parse::<latchkey_caps::Rights>() {
                attribute_error(diags, "rights", message);
            }
        }
    }
    (diags.errors.len() == before).then_some(())
}

#[async_trait]
impl Managed for TokenResource {
    type State<'a> = State<'a>;

    fn schema(&self) -> Schema {
        let setting = |name, ty, description| (name, attr(ty, Set::Optional, description));
        Schema {
            version: 1,
            block: block(
                "A capability token minted by the control plane, no wider than the provider's own token. Changing any setting mints a new token; destroy revokes it on every node.",
                vec![
                    setting(
                        "actor_type",
                        AttributeType::String,
                        "Only this actor type (default: the provider token's scope).",
                    ),
                    setting("key", AttributeType::String, "Only this actor key."),
                    setting(
                        "key_prefix",
                        AttributeType::String,
                        "Only keys starting with this (byte-wise).",
                    ),
                    setting("methods", strings(), "Only these methods."),
                    setting(
                        "rights",
                        strings(),
                        "Rights: `invoke`, `deploy`, `mint`, `revoke`, `admin`, `read-state`, `tail` (default: the provider token's).",
                    ),
                    setting(
                        "expires_in",
                        AttributeType::Number,
                        "Seconds from minting until it expires. An expired token reads as gone, so the next apply mints a new one.",
                    ),
                    setting(
                        "audience",
                        AttributeType::String,
                        "Only this principal may present it (e.g. `actor:chat-room/lobby`).",
                    ),
                    (
                        "token",
                        secret(attr(
                            AttributeType::String,
                            Set::Computed,
                            "The token (`lk1.…`): a bearer secret, sent as `Authorization: Bearer <token>`.",
                        )),
                    ),
                    (
                        "token_id",
                        attr(AttributeType::String, Set::Computed, "Its revocation id."),
                    ),
                    (
                        "expires_at",
                        attr(
                            AttributeType::Number,
                            Set::Computed,
                            "Unix seconds at which it expires (null: never).",
                        ),
                    ),
                ],
            ),
        }
    }

    fn check(&self, diags: &mut Diagnostics, config: &State<'_>) -> Option<()> {
        check(diags, config)
    }

    async fn plan<'a>(
        &self,
        _: &mut Diagnostics,
        prior: Option<&State<'a>>,
        mut proposed: State<'a>,
    ) -> Option<(State<'a>, Vec<AttributePath>)> {
        if let Some(prior) = prior {
            let replace = proposed.changed_settings(prior);
            return Some((proposed, replace));
        }
        proposed.token = Value::Unknown;
        proposed.token_id = Value::Unknown;
        proposed.expires_at = if proposed.expires_in.is_null() {
            Value::Null
        } else {
            Value::Unknown
        };
        Some((proposed, vec![]))
    }

    async fn read<'a>(&self, diags: &mut Diagnostics, state: State<'a>) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        if let Value::Value(at) = &state.expires_at
            && at.to_u64().unwrap_or(0) <= unix_now()
        {
            return None; // expired: gone
        }
        let id = state.token_id.as_deref_option()?.to_owned();
        match client.revocation(&id).await {
            Ok(_) => None, // revoked: gone
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Some(state),
            Err(e) => {
                api_error(
                    diags,
                    &format!("checking whether token {id} is revoked"),
                    None,
                    &e,
                );
                None
            }
        }
    }

    async fn apply<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Option<State<'a>>,
        mut planned: State<'a>,
    ) -> Option<State<'a>> {
        if prior.is_some() {
            return Some(planned); // every setting replaces the token: nothing else can change
        }
        let client = self.0.client(diags)?;
        let request = match planned.request() {
            Ok(request) => request,
            Err(message) => {
                attribute_error(diags, "expires_in", message);
                return None;
            }
        };
        match client.mint(&request).await {
            Ok(minted) => {
                planned.token = Value::Value(minted.token.into());
                planned.token_id = Value::Value(minted.token_id.into());
                planned.expires_at = minted.expires_at.map(Number::from_u64).into();
                Some(planned)
            }
            Err(e) => {
                let message = match &e {
                    latchkey_wire::client::ClientError::Api(api) => api.message.as_str(),
                    _ => "",
                };
                let attribute = mint_attribute(message, planned.key.is_value());
                api_error(diags, "minting a token", attribute, &e);
                None
            }
        }
    }

    async fn remove<'a>(&self, diags: &mut Diagnostics, prior: State<'a>) -> Option<()> {
        let client = self.0.client(diags)?;
        let reason = Some("terraform destroy".to_owned());
        let by_id = RevokeRequest {
            token_id: text(&prior.token_id),
            token: None,
            reason: reason.clone(),
        };
        let result = match client.revoke(&by_id).await {
            // A scoped provider token may revoke by presenting the token instead.
            Err(e) if e.code() == Some(ErrorCode::Forbidden) => {
                let by_token = RevokeRequest {
                    token_id: None,
                    token: text(&prior.token),
                    reason,
                };
                client.revoke(&by_token).await
            }
            other => other,
        };
        match result {
            Ok(_) => Some(()),
            Err(e) => {
                let id = text(&prior.token_id).unwrap_or_default();
                api_error(diags, &format!("revoking token {id}"), None, &e);
                None
            }
        }
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        let keys = match client.keys().await {
            Ok(keys) => keys,
            Err(e) => {
                api_error(diags, "reading the trusted issuer keys", None, &e);
                return None;
            }
        };
        let trusted: TrustedKeys = keys
            .iter()
            .filter(|k| k.state != "retired")
            .filter_map(|k| k.public_key.parse::<PublicKey>().ok())
            .collect();
        let verified = Token::from_text(id.trim())
            .and_then(|t| latchkey_caps::verify(&t, &trusted, &NoRevocations, unix_now()));
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                diags.root_error(
                    "cannot import the token",
                    format!("import takes the token text (`lk1.…`), verified against the control plane's keys: {e}"),
                );
                return None;
            }
        };
        let cap = verified.capability();
        let (key, key_prefix) = match &cap.keys {
            Some(KeyScope::Exact(k)) => (Some(k.clone()), None),
            Some(KeyScope::Prefix(p)) => (None, Some(p.clone())),
            None => (None, None),
        };
        let list = |items: Option<Vec<String>>| -> ValueList<ValueString<'a>> {
            items
                .map(|v| v.into_iter().map(|s| Value::Value(s.into())).collect())
                .into()
        };
        let state = State {
            actor_type: cap.actor_type.clone().map(Into::into).into(),
            key: key.map(Into::into).into(),
            key_prefix: key_prefix.map(Into::into).into(),
            methods: list(cap.methods.as_ref().map(|m| m.iter().cloned().collect())),
            rights: list(
                cap.rights
                    .map(|r| r.to_string().split(',').map(str::to_owned).collect()),
            ),
            expires_in: Value::Null,
            audience: cap.audience.clone().map(Into::into).into(),
            token: Value::Value(id.trim().to_owned().into()),
            token_id: Value::Value(verified.token_id().to_string().into()),
            expires_at: cap.expires_at.map(Number::from_u64).into(),
        };
        Some(state)
    }
}
