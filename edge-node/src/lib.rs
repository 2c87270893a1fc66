//! The Latchkey edge node: hosts per-key WASM actors (wasmtime components) and serves them over
//! HTTP with capability tokens.
//!
//! - [`runtime`]: the one place wasmtime is configured; [`compile`]: compiling module versions
//!   in a bounded child process (`compile-module`).
//! - `host`: the actor world's host capabilities (storage, actor calls, logging, clock).
//! - `activation`, `instance`: one actor's single live instance, its mailbox, and output gating;
//!   `upgrade`: switching a live activation to a newly deployed version; `hosting`: what
//!   activations get from their node.
//! - [`ports`]: the traits the node's I/O sits below (the control plane, clocks, actor calls,
//!   other nodes, membership); [`assembly`]: the node's layers built over them (the node and
//!   the simulation both build with it); [`membership`]: registration and heartbeats.
//! - `table`, [`Router`], `forward`: where actors are, and getting a call to them.
//! - `deployments`, `outcomes`: the deployments this node follows, and call outcomes per
//!   version for the control plane's rollbacks.
//! - [`protocol`], [`route`], [`lease`]: the node's protocol decisions as pure functions and
//!   state machines; the lease; `node`: the node's own loops (enrolment, membership, reports,
//!   eviction), following the control plane.
//! - [`tail`]: actors' log lines and call outcomes, sent to whoever follows (`latchkey tail`).
//! - [`identity`]: the node's key and certificate, and the check of other nodes' signed calls.
//! - `ingress`: the HTTP server.

mod activation;
pub mod assembly;
pub mod auth;
mod committer;
pub mod compile;
mod config;
mod deployments;
pub mod error;
#[doc(hidden)]
pub mod floor;
mod follow;
mod forward;
mod host;
mod hosting;
pub mod identity;
mod ingress;
mod instance;
pub mod lease;
pub mod membership;
mod node;
mod outcomes;
pub mod ports;
pub mod protocol;
pub mod route;
mod router;
pub mod runtime;
mod table;
pub mod tail;
mod upgrade;

pub use config::{NodeArgs, NodeConfig};
pub use error::CallError;
pub use host::HostState;
pub use node::{EdgeNode, Readiness};
pub use ports::CallRequest;
pub use router::Router;
