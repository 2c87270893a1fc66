//! Node identity by proof of possession: a node's own key, the control plane's certificate
//! binding a node id to that key, and requests signed with it.
//!
//! No bearer credential names a node. A node holds a [`NodeKey`] that never leaves it; the
//! control plane, which trusts the node's key after enrolment, issues a short-lived
//! [`NodeCertificate`] ("node `id` holds key `k` until `t`", signed by an issuer key). Every
//! request a node sends — to the control plane or to another node — carries that certificate and
//! a signature, by the node's key, over the recipient's name, the method, the path, a digest of
//! the body, the values of the headers that carry meaning (the client token, the presenter, the
//! deadline), a time and a nonce. A recipient checks the certificate against its trusted issuer
//! keys and revocations, the signature against the certified key, the time against its clock and
//! the nonce against the nonces it saw ([`ReplayGuard`]). A captured request therefore proves
//! nothing anywhere else (its audience is the one recipient), nothing later (its time), and
//! nothing twice (its nonce).
//!
//! Pure like the rest of the crate: time and trust are arguments.
//!
//! Its modules in layer order, leaf first (each uses only those before it; the crate's
//! `tests/layers.rs` checks it): `error` → `request` → `key` → `cert` → `verifier`.

// In layer order, leaf first (a `//` line over each `mod` keeps rustfmt from sorting them).
// `NodeAuthError`.
mod error;
// `SignedRequest`, its header form, `ReplayGuard`.
mod request;
// `NodeKey`: a node's own key, which signs requests.
mod key;
// `NodeCertificate`: "node `id` holds key `k` until `t`".
mod cert;
// `NodeVerifier`: one recipient's check of a signed request.
mod verifier;

pub use cert::{CERT_TEXT_PREFIX, NodeCertificate};
pub use error::NodeAuthError;
pub use key::NodeKey;
pub use request::{
    MAX_SKEW_MS, ReplayGuard, SignatureHeader, SignedRequest, content_digest, fresh_nonce,
};
pub use verifier::{NodeVerifier, Presented, VerifiedNode};

/// Name a node uses as the audience of requests to the control plane.
pub const CONTROL_PLANE_AUDIENCE: &str = "control-plane";

/// Name of a node as an audience (`node:{id}`).
pub fn node_audience(node_id: &str) -> String {
    format!("node:{node_id}")
}
