//! Example actor `delegator`: calls other actors with capability tokens its callers hand it,
//! narrowing them first.
//!
//! | method | argument | answer |
//! |---|---|---|
//! | `increment` | `{"token", "key", "by"?}` | the answer of counter `key`'s `inc` |
//! | `call` | `{"token", "actor_type", "key", "method", "args"?}` | the callee's answer, as is |
//! | `self_token` | `methods` (list of names, optional) | a token for this delegator, narrowed to them |
//!
//! `increment` attenuates `token` to actor type `counter`, exactly `key`, method `inc` before
//! using it, so the token passed on can do nothing else. `call` presents `token` unchanged.
//! A failed call (denied, invalid token, callee error, …) fails with its reason as the message.

use latchkey_actor_sdk::actors::{self, Restrictions};
use latchkey_actor_sdk::{Actor, Context, Result, export_actor};
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

    fn self_token(&mut self, _ctx: &Context, methods: Option<Vec<String>>) -> Result<String> {
        let token = actors::self_token();
        Ok(match methods {
            Some(methods) => actors::attenuate(&token, &Restrictions::new().methods(methods))?,
            None => token,
        })
    }
}
