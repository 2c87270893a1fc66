//! Latchkey actor SDK: the guest-side library for writing actors as WASM components.
//!
//! Not implemented yet; it arrives with issue #4 together with the WIT world in `actor-sdk/wit`.
//! This crate is an empty placeholder so the workspace layout is fixed from the start.
