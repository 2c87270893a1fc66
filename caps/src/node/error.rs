//! [`NodeAuthError`]: why a node's request or certificate was refused, naming the reason.

use crate::keys::KeyId;

/// Why a node's identity was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeAuthError {
    /// A header the node protocol needs is absent.
    #[error(
        "missing `{0}` header: only an enrolled node, signing with its own key, may send this request"
    )]
    Missing(&'static str),
    /// A certificate or signature header does not decode.
    #[error("malformed node credential: {0}")]
    Malformed(String),
    /// The certificate was signed by a key this recipient does not trust.
    #[error("node certificate was issued by key {0}, which is not trusted here")]
    UntrustedIssuer(KeyId),
    /// The certificate's signature does not verify.
    #[error("node certificate signature does not verify (forged or altered)")]
    BadCertificateSignature,
    /// The certificate is not valid yet.
    #[error("node certificate is not valid before {issued_at} (now is {now})")]
    CertificateNotYetValid {
        /// Valid from.
        issued_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The certificate has expired (the node must renew it, or be enrolled again).
    #[error(
        "certificate of node `{node_id}` expired at {expires_at} (now is {now}); the node must renew it or be enrolled again"
    )]
    CertificateExpired {
        /// The certified node.
        node_id: String,
        /// Its expiry.
        expires_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The certified key was revoked (the node was removed).
    #[error("node `{node_id}`'s key is revoked")]
    NodeRevoked {
        /// The certified node.
        node_id: String,
    },
    /// The certificate names another node than the request claims to come from.
    #[error(
        "node certificate is for `{certified}`, but the request claims to come from `{claimed}`"
    )]
    WrongNode {
        /// The node the certificate names.
        certified: String,
        /// The node the request names.
        claimed: String,
    },
    /// The request's time is too far from the recipient's clock.
    #[error(
        "signed request is from {timestamp_ms} ms, more than {max_skew_ms} ms from this recipient's clock ({now_ms} ms): stale or replayed"
    )]
    Stale {
        /// The request's time (Unix milliseconds).
        timestamp_ms: u64,
        /// The recipient's time.
        now_ms: u64,
        /// The tolerance.
        max_skew_ms: u64,
    },
    /// The request was signed before the recipient started: its nonce may have been seen by
    /// the recipient's previous run. A freshly signed request passes.
    #[error(
        "signed request is from {timestamp_ms} ms, before this recipient started ({started_ms} ms): a replay cannot be ruled out; sign it again"
    )]
    BeforeStart {
        /// The request's time.
        timestamp_ms: u64,
        /// When the recipient started.
        started_ms: u64,
    },
    /// The signature does not cover this request for this recipient.
    #[error(
        "request signature does not verify: it was made for another recipient or request, or the request was altered"
    )]
    BadSignature,
    /// The request's nonce was seen before.
    #[error("signed request was already received once: replay refused")]
    Replayed,
    /// Too many recent nonces to remember another; the sender should retry shortly.
    #[error("too many signed requests in the replay window; retry shortly")]
    ReplayCacheFull,
    /// The body is not the one the signature covers.
    #[error("request body does not match the digest the node signed")]
    BodyMismatch,
}

impl NodeAuthError {
    /// Whether the same request, sent again later (freshly signed), may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NodeAuthError::ReplayCacheFull
                | NodeAuthError::CertificateNotYetValid { .. }
                | NodeAuthError::BeforeStart { .. }
        )
    }
}
