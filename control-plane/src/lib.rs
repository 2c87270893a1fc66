//! Latchkey control plane: the registry, activation fencing, modules and deployments.
//!
//! Not implemented yet; it arrives with issue #3. This crate is an empty placeholder so the
//! workspace layout is fixed from the start, and it exposes nothing that could be mistaken for a
//! working API.
