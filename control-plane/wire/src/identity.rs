//! Node identity on the wire: the headers of a signed node request, the headers every signature
//! binds, and [`NodeCredentials`] (a node's key and current certificate), which sign requests.
//!
//! A node's request to the control plane or to another node carries its certificate
//! ([`CERTIFICATE`]), a digest of its body ([`CONTENT_SHA256`]) and a signature ([`SIGNATURE`])
//! over the recipient's name, the method, the path and query, that digest, and the values of the
//! [`BOUND`] headers. The recipient checks them with [`latchkey_caps::node::NodeVerifier`]
//! before it reads the body, and the body against the digest after.

use std::sync::{PoisonError, RwLock};

use latchkey_caps::PublicKey;
use latchkey_caps::node::{
    NodeAuthError, NodeCertificate, NodeKey, SignedRequest, content_digest, fresh_nonce,
};

/// The sending node's certificate (`lkc1.…`).
pub const CERTIFICATE: &str = "x-latchkey-node-certificate";
/// The sending node's signature over the request.
pub const SIGNATURE: &str = "x-latchkey-node-signature";
/// SHA-256 of the body, hex.
pub const CONTENT_SHA256: &str = "x-latchkey-content-sha256";
/// On a forwarded call: who presented the token (an actor), vouched for by the forwarding node.
pub const PRESENTER: &str = "x-latchkey-presenter";
/// On a forwarded call: milliseconds left before the call's deadline.
pub const DEADLINE_MS: &str = "x-latchkey-deadline-ms";
/// On a forwarded call: the forwarding node's id (informative; the certificate says who it is).
pub const FORWARDED_BY: &str = "x-latchkey-forwarded-by";

/// Headers whose values every node signature covers, in this order (an absent header is an
/// empty value). The authorization header binds the client token a forwarded call carries (or
/// the enrolment token); the presenter and deadline bind what the forwarding node vouches for.
pub const BOUND: [&str; 3] = ["authorization", PRESENTER, DEADLINE_MS];

/// The values of the [`BOUND`] headers, read with `get` (absent headers are empty).
pub fn bound_values<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> [(&'static str, &'a [u8]); 3] {
    BOUND.map(|name| (name, get(name).unwrap_or_default()))
}

/// Every header a signed node request relies on: the node's own and the bound ones.
pub const SIGNED_HEADERS: [&str; 7] = [
    CERTIFICATE,
    SIGNATURE,
    CONTENT_SHA256,
    FORWARDED_BY,
    "authorization",
    PRESENTER,
    DEADLINE_MS,
];

/// Refuses a request that repeats one of the [`SIGNED_HEADERS`] (`count` says how often a
/// header appears): the signature covers one value, and a second could be read instead.
pub fn check_single(count: impl Fn(&str) -> usize) -> Result<(), NodeAuthError> {
    match SIGNED_HEADERS.iter().find(|name| count(name) > 1) {
        Some(name) => Err(NodeAuthError::Malformed(format!(
            "`{name}` appears more than once"
        ))),
        None => Ok(()),
    }
}

/// Parses the [`CONTENT_SHA256`] header.
pub fn parse_content_digest(text: &str) -> Result<[u8; 32], NodeAuthError> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut digest).map_err(|_| {
        NodeAuthError::Malformed(format!("`{CONTENT_SHA256}` must be 64 hexadecimal digits"))
    })?;
    Ok(digest)
}

/// Checks a body against the digest its signature covers.
pub fn check_body(body: &[u8], signed: &[u8; 32]) -> Result<(), NodeAuthError> {
    if content_digest(body) == *signed {
        Ok(())
    } else {
        Err(NodeAuthError::BodyMismatch)
    }
}

/// What a node's request is: its recipient, method, path and query, body, and bound values.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    /// `control-plane` or `node:{id}`.
    pub audience: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path and query, as sent.
    pub path: &'a str,
    /// The body.
    pub body: &'a [u8],
    /// The [`BOUND`] headers' values.
    pub bound: &'a [(&'a str, &'a [u8])],
}

/// A node's key and its current certificate (renewed while the node runs).
pub struct NodeCredentials {
    node_id: String,
    key: NodeKey,
    certificate: RwLock<Option<NodeCertificate>>,
}

impl NodeCredentials {
    /// Credentials of `node_id`, not yet certified.
    pub fn new(node_id: &str, key: NodeKey) -> Self {
        NodeCredentials {
            node_id: node_id.to_owned(),
            key,
            certificate: RwLock::new(None),
        }
    }

    /// The node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// The current certificate, if the node has one.
    pub fn certificate(&self) -> Option<NodeCertificate> {
        self.certificate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs a new certificate (after enrolment or renewal).
    pub fn set_certificate(&self, certificate: NodeCertificate) {
        *self
            .certificate
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(certificate);
    }

    /// The headers that sign `request` at `now_ms`: certificate, content digest, signature.
    /// Without a certificate (before enrolment) only the last two, which prove possession of the
    /// key but name no node.
    pub fn sign(&self, request: &Outgoing<'_>, now_ms: u64) -> Vec<(&'static str, String)> {
        self.sign_with_nonce(request, now_ms, fresh_nonce())
    }

    /// [`NodeCredentials::sign`] with a given nonce (never reuse one; the simulation draws them
    /// from its seeded generator).
    pub fn sign_with_nonce(
        &self,
        request: &Outgoing<'_>,
        now_ms: u64,
        nonce: [u8; 16],
    ) -> Vec<(&'static str, String)> {
        let content_sha256 = content_digest(request.body);
        let signed = SignedRequest {
            audience: request.audience,
            method: request.method,
            path: request.path,
            timestamp_ms: now_ms,
            nonce,
            content_sha256,
            bound: request.bound,
        };
        let mut headers = Vec::with_capacity(3);
        if let Some(cert) = self.certificate() {
            headers.push((CERTIFICATE, cert.to_text()));
        }
        headers.push((CONTENT_SHA256, hex::encode(content_sha256)));
        headers.push((SIGNATURE, self.key.sign_header(&signed)));
        headers
    }
}

impl std::fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}
