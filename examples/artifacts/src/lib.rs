//! The example actors (`examples/counter`, `rate-limiter`, `chat-room`, `delegator`) compiled to
//! `wasm32-wasip2` components, as bytes, for tests and demos.
//!
//! `build.rs` builds them with the `wasm-actors` profile into `<target>/wasm-actors` (a separate
//! target directory) and copies them into `OUT_DIR`; a build of this crate rebuilds them when
//! the SDK or an example changes.
//!
//! ```
//! for (actor_type, component) in latchkey_examples::all() {
//!     assert!(component.starts_with(b"\0asm"), "{actor_type}");
//! }
//! ```

/// The `counter` actor: `get`, `inc`, `reset`, `version`, `upgraded_from`.
pub const COUNTER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter.wasm"));

/// `counter` built with its `v2` feature: the same behaviour under another release label (and
/// so another content id), to deploy over [`COUNTER`].
pub const COUNTER_V2: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter-v2.wasm"));

/// `counter` built with its `v3` feature: `inc` panics, so its calls trap. For rollback tests.
pub const COUNTER_V3: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/counter-v3.wasm"));

/// `counter` built with its `failing-upgrade` feature: its upgrade hook refuses.
pub const COUNTER_FAILING_UPGRADE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/counter-failing-upgrade.wasm"));

/// The `rate-limiter` actor: `configure`, `try_acquire`.
pub const RATE_LIMITER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rate-limiter.wasm"));

/// The `chat-room` actor: `post`, `history`, `clear`.
pub const CHAT_ROOM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat-room.wasm"));

/// The `delegator` actor: `increment`, `call`, `self_token`.
pub const DELEGATOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/delegator.wasm"));

/// `examples/hostile`: traps, loops forever, exhausts memory or the stack on request; for tests
/// of the host's limits. Not part of [`all`].
pub const HOSTILE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hostile.wasm"));

/// Every example as `(actor type, component bytes)`; deploy each under its actor type (the
/// `delegator` calls actor type `counter`).
pub fn all() -> [(&'static str, &'static [u8]); 4] {
    [
        ("counter", COUNTER),
        ("rate-limiter", RATE_LIMITER),
        ("chat-room", CHAT_ROOM),
        ("delegator", DELEGATOR),
    ]
}
