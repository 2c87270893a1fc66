//! Example actor `delegator`: calls other actors with capability tokens its callers hand it,
//! narrowing them first.
//!
//! | method | argument | answer |
//! |---|---|---|
//! | `increment` | `{"token", "key", "by"?}` | the answer of counter `key`'s `inc` |
//! | `call` | `{"token", "actor_type", "key", "method", "args"?}` | the callee's answer, as is |
//! | `self_token` | `{"methods", "expires_in_secs"?}` | a token for this delegator, narrowed to `methods` (at least one) and to at most 300 s (default and cap) |
//!
//! `increment` attenuates `token` to actor type `counter`, exactly `key`, method `inc` before
//! using it, so the token passed on can do nothing else. `call` presents `token` unchanged.
//! `self_token` never hands out the delegator's own capability as it is (a day of calling any
//! of its methods): only a narrowed, short-lived copy.
//! A failed call (denied, invalid token, callee error, …) fails with its reason as the message.

use latchkey_actor_sdk::actors::{self, Restrictions};
use latchkey_actor_sdk::{Actor, Context, Error, Result, export_actor};
use serde::Deserialize;
use serde_json::Value;

/// The argument of `increment`.
#[derive(Debug, Deserialize)]
struct Increment {
    /// A token allowing at least `inc` on counter `key`.
    token: String,
    key: String,
    /// Passed to `inc` (default 1).
    by: Option<u64>,
}

/// The argument of `call`.
#[derive(Debug, Deserialize)]
struct Call {
    token: String,
    actor_type: String,
    key: String,
    method: String,
    /// The callee's argument (default `null`).
    #[serde(default)]
    args: Value,
}

/// The longest a token from `self_token` lives, in seconds (also its default).
const MAX_SELF_TOKEN_SECS: u64 = 300;

/// The argument of `self_token`.
#[derive(Debug, Deserialize)]
struct SelfToken {
    /// The methods the token may call (required, not empty).
    methods: Vec<String>,
    /// Its lifetime, at most [`MAX_SELF_TOKEN_SECS`] (the default).
    expires_in_secs: Option<u64>,
}

/// Stateless: everything it needs comes with each call.
struct Delegator;

impl Actor for Delegator {
    fn activate(_ctx: &Context) -> Result<Self> {
        Ok(Self)
    }
}

export_actor!(Delegator {
    "increment" => increment,
    "call" => call,
    "self_token" => self_token,
});

impl Delegator {
    fn increment(
        &mut self,
        _ctx: &Context,
        Increment { token, key, by }: Increment,
    ) -> Result<u64> {
        let narrow = actors::attenuate(
            &token,
            &Restrictions::new()
                .actor_type("counter")
                .key(&key)
                .methods(["inc"]),
        )?;
        Ok(actors::call(&narrow, "counter", &key, "inc", &by)?)
    }

    fn call(&mut self, _ctx: &Context, req: Call) -> Result<Value> {
        let Call {
            token,
            actor_type,
            key,
            method,
            args,
        } = req;
        Ok(actors::call(&token, &actor_type, &key, &method, &args)?)
    }

    fn self_token(&mut self, _ctx: &Context, req: Option<SelfToken>) -> Result<String> {
        let Some(req) = req.filter(|r| !r.methods.is_empty()) else {
            return Err(Error::bad_request(
                "`methods` must name at least one method the token may call",
            ));
        };
        let secs = req
            .expires_in_secs
            .unwrap_or(MAX_SELF_TOKEN_SECS)
            .min(MAX_SELF_TOKEN_SECS);
        let narrow = Restrictions::new()
            .methods(req.methods)
            .expires_in_secs(secs);
        Ok(actors::attenuate(&actors::self_token(), &narrow)?)
    }
}
