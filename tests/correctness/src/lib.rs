//! Latchkey's single-activation promise — at most one live instance of an actor, and no caller
//! ever observes two — checked two ways over the real protocol code:
//!
//! - [`model`]: a Stateright model whose every decision is the real code's pure functions,
//!   checked exhaustively at small bounds;
//! - [`sim`]: a deterministic simulation that runs the real registry (over the deterministic
//!   memory store) and the node's real decisions under a simulated clock and network, with
//!   crashes, pauses, partitions and control-plane restarts, all from one seed.
//!
//! The third way, real processes under injected faults, is `edge-node/cli/tests/faults.rs`.

pub mod model;
pub mod sim;
