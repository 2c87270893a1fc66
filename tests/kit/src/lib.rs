//! Latchkey's test kit: one place for what the tests and benchmarks of every crate share.
//!
//! - [`control_plane`]: a real control plane (embedded, memory or a given store) serving its APIs
//!   on a free loopback port, plain or HTTPS, with its admin client.
//! - [`cluster`]: that control plane and edge nodes in this process, with call helpers.
//! - [`component`]: valid actor components with stub code, built in-process (no WASM toolchain).
//! - [`raw`]: HTTP below the typed client: any method, path and headers; reading a socket until
//!   the server closes it.
//! - [`signing`]: node API requests signed as a node signs them.
//! - [`process`]: child processes killed when dropped, free ports.
//! - [`wait`]: bounded polling for effects that propagate asynchronously.
//!
//! Every helper panics with a message naming what failed: these are tests, not libraries.

pub mod cluster;
pub mod component;
pub mod control_plane;
pub mod process;
pub mod raw;
pub mod signing;
pub mod wait;

pub use cluster::{Cluster, call_url, call_with, json};
pub use control_plane::{Launch, ServedControlPlane, StoreChoice, Tls};
pub use wait::{eventually, eventually_within};
