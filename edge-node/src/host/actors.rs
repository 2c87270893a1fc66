//! The `actors` host capability: calls to other actors with a token the actor holds (through the
//! same checks and routing as any HTTP call, presented as `actor:{type}/{key}`), offline
//! attenuation of tokens, and the actor's capability to itself.

use std::collections::BTreeSet;

use latchkey_caps::{Capability, KeyScope, Rights, Token};

use super::{HostState, Poison};
use crate::error::CallError;
use crate::ports::CallRequest;
use crate::runtime::bindings::latchkey::actor::actors::{
    CallError as GuestCallError, Host, Restrictions,
};

/// A self-token is fetched again when it has less than this many seconds left.
const SELF_TOKEN_REFRESH_SECS: u64 = 3600;

fn to_guest(e: &CallError) -> GuestCallError {
    let message = e.to_api().message;
    match e.code() {
        latchkey_wire::ErrorCode::Unauthenticated => GuestCallError::InvalidToken(message),
        latchkey_wire::ErrorCode::Forbidden => GuestCallError::Denied(message),
        latchkey_wire::ErrorCode::NotFound => GuestCallError::NotFound(message),
        latchkey_wire::ErrorCode::Overloaded => GuestCallError::Overloaded(message),
        latchkey_wire::ErrorCode::ActorFailed | latchkey_wire::ErrorCode::BadRequest => {
            GuestCallError::Failed(message)
        }
        latchkey_wire::ErrorCode::Trapped | latchkey_wire::ErrorCode::LimitExceeded => {
            GuestCallError::Trapped(message)
        }
        latchkey_wire::ErrorCode::OutcomeUnknown => GuestCallError::OutcomeUnknown(message),
        _ => GuestCallError::Unavailable(message),
    }
}

/// The capability `r` restricts to; `now` (Unix seconds) is when relative expiries count from.
fn restriction_capability(r: Restrictions, now: u64) -> Result<Capability, String> {
    let mut cap = Capability {
        actor_type: r.actor_type,
        audience: r.audience,
        ..Capability::default()
    };
    cap.keys = match (r.key, r.key_prefix) {
        (Some(_), Some(_)) => return Err("give `key` or `key-prefix`, not both".into()),
        (Some(k), None) => Some(KeyScope::Exact(k)),
        (None, Some(p)) => Some(KeyScope::Prefix(p)),
        (None, None) => None,
    };
    cap.methods = r.methods.map(|m| m.into_iter().collect::<BTreeSet<_>>());
    if let Some(names) = r.rights {
        cap.rights = Some(names.join(",").parse::<Rights>()?);
    }
    cap.expires_at = r.expires_in_secs.map(|s| now.saturating_add(s));
    Ok(cap)
}

impl Host for HostState {
    async fn call(
        &mut self,
        token: String,
        actor_type: String,
        key: String,
        method: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, GuestCallError> {
        if actor_type == self.actor.fence.actor_type && key == self.actor.fence.key {
            return Err(GuestCallError::Failed(
                "an actor cannot call itself while handling a call: it would wait for itself"
                    .into(),
            ));
        }
        let request = CallRequest {
            actor_type,
            key,
            method,
            payload: payload.into(),
            token: token.into_bytes().into(),
            presenter: Some(self.actor.principal()),
            deadline: self.actor.deadline,
            forwarded: false,
        };
        // The router is held weakly (it owns this activation): gone only while the node stops.
        let Some(router) = self.actor.hosting.calls.upgrade() else {
            return Err(GuestCallError::Unavailable(
                "this node is stopping; retry".into(),
            ));
        };
        router
            .call(request)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| to_guest(&e))
    }

    async fn attenuate(
        &mut self,
        token: String,
        restrictions: Restrictions,
    ) -> Result<String, String> {
        let cap = restriction_capability(restrictions, self.actor.hosting.clock.unix_secs())?;
        let token = Token::from_text(&token).map_err(|e| format!("cannot read the token: {e}"))?;
        token
            .attenuate(&cap)
            .map(|t| t.to_text())
            .map_err(|e| e.to_string())
    }

    async fn self_token(&mut self) -> String {
        let now = self.actor.hosting.clock.unix_secs();
        if let Some((token, expires_at)) = &self.actor.self_token
            && *expires_at > now.saturating_add(SELF_TOKEN_REFRESH_SECS)
        {
            return token.clone();
        }
        match self.actor.hosting.cp.self_token(&self.actor.fence).await {
            Ok(minted) => {
                self.actor.self_token = Some((minted.token.clone(), minted.expires_at));
                minted.token
            }
            Err(e) => {
                // The signature cannot carry an error: fail the call instead of handing out
                // something unusable.
                self.actor.poison = Some(Poison {
                    reason: format!("obtaining the actor's own token failed: {e}"),
                    fenced: e.code() == Some(latchkey_wire::ErrorCode::Fenced),
                });
                String::new()
            }
        }
    }
}
