//! Runtime glue behind [`export_actor!`](crate::export_actor): the guest-global actor state and
//! the `handler` export. Public only so the macro can reach it from actor crates; not an API.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::exports::latchkey::actor::handler::{
    Context as RawContext, Error as RawError, Guest,
};
use crate::{Actor, Context, Error, Result};

/// What [`export_actor!`](crate::export_actor) implements for an actor type: its method table.
pub trait Dispatch: Actor {
    /// The method names, in the order the macro lists them.
    const METHODS: &'static [&'static str];

    /// Runs `method` with the JSON `payload`; returns the JSON answer.
    fn dispatch(&mut self, ctx: &Context, method: &str, payload: &[u8]) -> Result<Vec<u8>>;
}

thread_local! {
    /// The live activation's state: an `A: Actor`, set by `on-activate`. A component exports one
    /// actor type, so there is one slot. (`wasm32-wasip2` is single-threaded: this is a static.)
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The type the generated `handler` export is implemented for: forwards to `A`.
pub struct Exported<A>(PhantomData<A>);

impl<A: Dispatch> Guest for Exported<A> {
    fn on_activate(ctx: RawContext) -> std::result::Result<(), RawError> {
        report_panics();
        activate::<A>(&ctx.into()).map_err(Into::into)
    }

    fn handle(
        ctx: RawContext,
        method: String,
        payload: Vec<u8>,
    ) -> std::result::Result<Vec<u8>, RawError> {
        report_panics();
        handle::<A>(&ctx.into(), &method, &payload).map_err(Into::into)
    }

    fn on_upgrade(ctx: RawContext, previous: String) -> std::result::Result<(), RawError> {
        report_panics();
        A::upgrade(&ctx.into(), &previous).map_err(Into::into)
    }
}

/// A panic aborts the guest (a trap the host reports); logging it first at error level lets the
/// host name the panic in that report.
fn report_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| crate::log::error(&format!("{info}"))));
    });
}

fn reentered() -> Error {
    Error::failed("re-entrant call into the actor while a call is running")
}

/// Builds the state with [`Actor::activate`], replacing any earlier activation's state.
pub fn activate<A: Actor>(ctx: &Context) -> Result<()> {
    STATE.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| reentered())?;
        *slot = None;
        *slot = Some(Box::new(A::activate(ctx)?));
        Ok(())
    })
}

/// Runs one call on the state (activating first if `on-activate` did not run or failed).
pub fn handle<A: Dispatch>(ctx: &Context, method: &str, payload: &[u8]) -> Result<Vec<u8>> {
    STATE.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| reentered())?;
        if !slot.as_deref().is_some_and(|state| state.is::<A>()) {
            *slot = Some(Box::new(A::activate(ctx)?));
        }
        let Some(actor) = slot
            .as_deref_mut()
            .and_then(|state| state.downcast_mut::<A>())
        else {
            return Err(Error::failed("the actor's state is missing"));
        };
        actor.dispatch(ctx, method, payload)
    })
}

/// Decodes `payload` (JSON; empty means `null`) into the handler's argument type, runs the
/// handler, and encodes its answer as JSON.
pub fn call<A, T, R, F>(
    actor: &mut A,
    ctx: &Context,
    method: &str,
    payload: &[u8],
    handler: F,
) -> Result<Vec<u8>>
where
    T: DeserializeOwned,
    R: Serialize,
    F: FnOnce(&mut A, &Context, T) -> Result<R>,
{
    let payload: &[u8] = if payload.is_empty() { b"null" } else { payload };
    let args: T = serde_json::from_slice(payload)
        .map_err(|e| Error::bad_request(format!("invalid arguments for `{method}`: {e}")))?;
    let answer = handler(actor, ctx, args)?;
    serde_json::to_vec(&answer)
        .map_err(|e| Error::failed(format!("cannot encode the answer of `{method}`: {e}")))
}

/// The error for a method the actor does not have.
pub fn unknown_method(method: &str, known: &[&str]) -> Error {
    Error::unknown_method(format!(
        "no method `{method}` (this actor has: {})",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// A storage-free actor (host imports are unreachable stubs off wasm).
    struct Echo {
        calls: u32,
        activations: u32,
    }

    thread_local! {
        static ACTIVATIONS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    impl Actor for Echo {
        fn activate(ctx: &Context) -> Result<Self> {
            if ctx.key() == "refuse" {
                return Err(Error::failed("refused"));
            }
            let activations = ACTIVATIONS.with(|a| {
                a.set(a.get() + 1);
                a.get()
            });
            Ok(Echo {
                calls: 0,
                activations,
            })
        }
    }

    #[derive(Deserialize)]
    struct Pair {
        a: i64,
        b: i64,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Stats {
        calls: u32,
        activations: u32,
        key: String,
    }

    crate::__impl_dispatch!(Echo {
        "add" => add,
        "maybe" => maybe,
        "stats" => stats,
        "fail" => fail,
    });

    impl Echo {
        fn add(&mut self, _ctx: &Context, Pair { a, b }: Pair) -> Result<i64> {
            self.calls += 1;
            Ok(a + b)
        }

        fn maybe(&mut self, _ctx: &Context, n: Option<u32>) -> Result<u32> {
            self.calls += 1;
            Ok(n.unwrap_or(7))
        }

        fn stats(&mut self, ctx: &Context, _: ()) -> Result<Stats> {
            self.calls += 1;
            Ok(Stats {
                calls: self.calls,
                activations: self.activations,
                key: ctx.key().to_owned(),
            })
        }

        fn fail(&mut self, _ctx: &Context, message: String) -> Result<()> {
            Err(Error::bad_request(message))
        }
    }

    fn ctx() -> Context {
        Context::new("echo", "k1")
    }

    fn raw_ctx(key: &str) -> RawContext {
        RawContext {
            actor_type: "echo".into(),
            key: key.into(),
            caller: Some("tok-1".into()),
            code_version: "v1".into(),
        }
    }

    fn call_json(method: &str, payload: &str) -> Result<serde_json::Value> {
        let answer = handle::<Echo>(&ctx(), method, payload.as_bytes())?;
        Ok(serde_json::from_slice(&answer).unwrap())
    }

    #[test]
    fn decodes_arguments_and_encodes_answers() {
        activate::<Echo>(&ctx()).unwrap();
        assert_eq!(call_json("add", r#"{"a": 2, "b": 40}"#).unwrap(), 42);
        assert_eq!(call_json("maybe", "3").unwrap(), 3);
    }

    #[test]
    fn empty_payload_is_null() {
        activate::<Echo>(&ctx()).unwrap();
        assert_eq!(call_json("maybe", "").unwrap(), 7);
        assert_eq!(call_json("maybe", "null").unwrap(), 7);
        assert_eq!(call_json("stats", "").unwrap()["calls"], 3);
    }

    #[test]
    fn bad_payload_is_a_bad_request_naming_the_method() {
        activate::<Echo>(&ctx()).unwrap();
        let err = call_json("add", r#"{"a": 1}"#).unwrap_err();
        let Error::BadRequest(message) = &err else {
            panic!("{err:?}")
        };
        assert!(message.contains("`add`"), "{message}");
        assert!(message.contains("missing field `b`"), "{message}");
        assert!(matches!(call_json("add", ""), Err(Error::BadRequest(_))));
        assert!(matches!(call_json("maybe", "{"), Err(Error::BadRequest(_))));
    }

    #[test]
    fn unknown_method_lists_the_known_ones() {
        activate::<Echo>(&ctx()).unwrap();
        let err = call_json("nope", "").unwrap_err();
        assert_eq!(
            err,
            Error::UnknownMethod(
                "no method `nope` (this actor has: add, maybe, stats, fail)".into()
            )
        );
    }

    #[test]
    fn handler_errors_pass_through() {
        activate::<Echo>(&ctx()).unwrap();
        assert_eq!(
            call_json("fail", r#""why""#).unwrap_err(),
            Error::BadRequest("why".into())
        );
    }

    #[test]
    fn state_lives_across_calls_and_activation_rebuilds_it() {
        activate::<Echo>(&ctx()).unwrap();
        call_json("maybe", "").unwrap();
        let stats = call_json("stats", "").unwrap();
        assert_eq!(stats["calls"], 2);
        let first = stats["activations"].as_u64().unwrap();
        activate::<Echo>(&ctx()).unwrap();
        let stats = call_json("stats", "").unwrap();
        assert_eq!(stats["calls"], 1);
        assert_eq!(stats["activations"], first + 1);
    }

    #[test]
    fn a_call_without_activation_activates_first() {
        // A fresh thread has no state.
        std::thread::spawn(|| {
            assert_eq!(call_json("stats", "").unwrap()["calls"], 1);
            assert_eq!(call_json("stats", "").unwrap()["calls"], 2);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_guest_export_converts_context_and_errors() {
        use crate::__bindings::latchkey::actor::types::Error as RawError;
        type G = Exported<Echo>;
        std::thread::spawn(|| {
            assert!(matches!(
                <G as Guest>::on_activate(raw_ctx("refuse")),
                Err(RawError::Failed(m)) if m == "refused"
            ));
            <G as Guest>::on_activate(raw_ctx("k9")).unwrap();
            let answer = <G as Guest>::handle(raw_ctx("k9"), "stats".into(), vec![]).unwrap();
            let stats: Stats = serde_json::from_slice(&answer).unwrap();
            assert_eq!(stats.key, "k9");
            assert_eq!(stats.calls, 1);
            assert!(matches!(
                <G as Guest>::handle(raw_ctx("k9"), "x".into(), vec![]),
                Err(RawError::UnknownMethod(_))
            ));
            assert!(matches!(
                <G as Guest>::handle(raw_ctx("k9"), "add".into(), b"[]".to_vec()),
                Err(RawError::BadRequest(_))
            ));
            <G as Guest>::on_upgrade(raw_ctx("k9"), "v0".into()).unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn context_accessors() {
        let ctx: Context = raw_ctx("k2").into();
        assert_eq!(ctx.actor_type(), "echo");
        assert_eq!(ctx.key(), "k2");
        assert_eq!(ctx.caller(), Some("tok-1"));
        assert_eq!(ctx.code_version(), "v1");
        let built = Context::new("echo", "k2")
            .with_caller("tok-1")
            .with_code_version("v1");
        assert_eq!(built, ctx);
    }
}
