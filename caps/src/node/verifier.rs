//! [`NodeVerifier`]: one recipient's check of signed node requests — certificate, signature,
//! freshness, nonce — with a cache of certificates whose signature was already checked.

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use sha2::{Digest, Sha256};

use super::cert::NodeCertificate;
use super::error::NodeAuthError;
use super::request::{ReplayGuard, SignatureHeader, SignedRequest};
use crate::keys::{PublicKey, TrustedKeys};
use crate::revocation::Revocations;

/// A request as received: the node's certificate and signature headers, and the parts of the
/// request the signature covers.
#[derive(Clone, Copy, Debug)]
pub struct Presented<'a> {
    /// The certificate header's value (`lkc1.…`).
    pub certificate: &'a str,
    /// The signature header's value.
    pub signature: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path and query.
    pub path: &'a str,
    /// The body digest the request claims (checked against the body once it is read).
    pub content_sha256: [u8; 32],
    /// The bound headers, as [`SignedRequest::bound`].
    pub bound: &'a [(&'a str, &'a [u8])],
}

/// Who sent a request that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedNode {
    /// The certified node id.
    pub node_id: String,
    /// The certified key.
    pub node_key: PublicKey,
    /// When the certificate expires (Unix seconds).
    pub expires_at: u64,
}

/// Checks signed requests addressed to one recipient.
pub struct NodeVerifier {
    audience: String,
    /// Requests stamped before this (Unix milliseconds) are refused: their nonces may have been
    /// seen by an earlier life of this recipient, whose memory is gone.
    started_ms: u64,
    /// Certificates whose issuer signature verified, by digest of their text.
    certs: Mutex<LruCache<[u8; 32], NodeCertificate>>,
    replay: Mutex<ReplayGuard>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NodeVerifier {
    /// A verifier for requests addressed to `audience`, caching `certificates` certificates and
    /// remembering up to `nonces` recent nonces.
    pub fn new(audience: impl Into<String>, certificates: NonZeroUsize, nonces: usize) -> Self {
        NodeVerifier {
            audience: audience.into(),
            started_ms: 0,
            certs: Mutex::new(LruCache::new(certificates)),
            replay: Mutex::new(ReplayGuard::new(nonces)),
        }
    }

    /// Refuses requests stamped before `started_ms` (the recipient's start), so that a request
    /// captured before a restart cannot be replayed after it, when its nonce is forgotten.
    pub fn started_at(mut self, started_ms: u64) -> Self {
        self.started_ms = started_ms;
        self
    }

    /// The recipient name requests must be signed for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies a request signed by a certified node, at `now_ms` (Unix milliseconds).
    pub fn verify(
        &self,
        presented: &Presented<'_>,
        trusted: &TrustedKeys,
        revoked: &impl Revocations,
        now_ms: u64,
    ) -> Result<VerifiedNode, NodeAuthError> {
        let header = SignatureHeader::parse(presented.signature)?;
        let request = self.signed(presented, &header);
        request.check_fresh(now_ms)?;
        self.check_started(&header)?;
        let cert = self.certificate(presented.certificate, trusted, revoked, now_ms / 1000)?;
        request.verify(cert.node_key(), &header.signature)?;
        lock(&self.replay).admit(header.nonce, now_ms)?;
        Ok(VerifiedNode {
            node_id: cert.node_id().to_owned(),
            node_key: cert.node_key().clone(),
            expires_at: cert.expires_at(),
        })
    }

    /// Verifies a request signed by `key` itself (no certificate yet: enrolment proves
    /// possession of the key being enrolled).
    pub fn verify_with_key(
        &self,
        key: &PublicKey,
        signature: &str,
        presented: &Presented<'_>,
        now_ms: u64,
    ) -> Result<(), NodeAuthError> {
        let header = SignatureHeader::parse(signature)?;
        let request = self.signed(presented, &header);
        request.check_fresh(now_ms)?;
        self.check_started(&header)?;
        request.verify(key, &header.signature)?;
        lock(&self.replay).admit(header.nonce, now_ms)
    }

    fn check_started(&self, header: &SignatureHeader) -> Result<(), NodeAuthError> {
        if header.timestamp_ms < self.started_ms {
            return Err(NodeAuthError::BeforeStart {
                timestamp_ms: header.timestamp_ms,
                started_ms: self.started_ms,
            });
        }
        Ok(())
    }

    fn signed<'a>(&'a self, p: &Presented<'a>, header: &SignatureHeader) -> SignedRequest<'a> {
        SignedRequest {
            audience: &self.audience,
            method: p.method,
            path: p.path,
            timestamp_ms: header.timestamp_ms,
            nonce: header.nonce,
            content_sha256: p.content_sha256,
            bound: p.bound,
        }
    }

    /// The certificate, verified (its signature once per certificate; trust, window and
    /// revocation on every use).
    fn certificate(
        &self,
        text: &str,
        trusted: &TrustedKeys,
        revoked: &impl Revocations,
        now: u64,
    ) -> Result<NodeCertificate, NodeAuthError> {
        let digest: [u8; 32] = Sha256::digest(text.trim().as_bytes()).into();
        if let Some(cert) = lock(&self.certs).get(&digest).cloned() {
            if !trusted.contains(&cert.issuer()) {
                return Err(NodeAuthError::UntrustedIssuer(cert.issuer()));
            }
            cert.check_window(now)?;
            if revoked.is_revoked(&NodeCertificate::key_revocation_id(cert.node_key())) {
                return Err(NodeAuthError::NodeRevoked {
                    node_id: cert.node_id().to_owned(),
                });
            }
            return Ok(cert);
        }
        let cert = NodeCertificate::from_text(text)?;
        cert.verify(trusted, revoked, now)?;
        lock(&self.certs).put(digest, cert.clone());
        Ok(cert)
    }
}

impl std::fmt::Debug for NodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeVerifier")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}
