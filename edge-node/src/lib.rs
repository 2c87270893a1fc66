//! Latchkey edge node: hosts per-key WASM actors and serves them over HTTP.
//!
//! Not implemented yet; it arrives with issue #4. This crate is an empty placeholder so the
//! workspace layout is fixed from the start, and it exposes nothing that could be mistaken for a
//! working API.
