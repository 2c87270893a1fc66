//! Signed requests: what a node's signature covers, the header form of a signature, and the
//! [`ReplayGuard`] that refuses a request seen before.

use std::collections::{HashSet, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};

use super::error::NodeAuthError;
use crate::keys::{PublicKey, os_rng};

const DOMAIN: &[u8] = b"latchkey.node-request.v1\0";
const HEADER_VERSION: &str = "v1";

/// Longest a signed request stays acceptable either side of the recipient's clock, in
/// milliseconds (clock skew plus transit).
pub const MAX_SKEW_MS: u64 = 15_000;

/// The SHA-256 digest of a request body.
pub fn content_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// A random nonce from the operating system's generator.
pub fn fresh_nonce() -> [u8; 16] {
    let mut nonce = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut os_rng(), &mut nonce);
    nonce
}

/// Everything a node's signature covers. The recipient rebuilds it from the request it received
/// and its own name, so any difference — another recipient, method, path, body or bound header —
/// fails the signature.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// The recipient: `control-plane` or `node:{id}`.
    pub audience: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The path and query, as sent.
    pub path: &'a str,
    /// When the node signed it (Unix milliseconds).
    pub timestamp_ms: u64,
    /// Random; never reused.
    pub nonce: [u8; 16],
    /// SHA-256 of the body.
    pub content_sha256: [u8; 32],
    /// Header names and values the signature also covers (absent headers as empty values), in
    /// an order both sides agree on.
    pub bound: &'a [(&'a str, &'a [u8])],
}

impl SignedRequest<'_> {
    /// The bytes signed: a domain tag, then every field length-prefixed.
    pub(crate) fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(DOMAIN);
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        field(self.audience.as_bytes());
        field(self.method.as_bytes());
        field(self.path.as_bytes());
        field(&self.timestamp_ms.to_be_bytes());
        field(&self.nonce);
        field(&self.content_sha256);
        for (name, value) in self.bound {
            field(name.as_bytes());
            field(value);
        }
        out
    }

    /// Checks `signature` by `key` over this request.
    pub fn verify(&self, key: &PublicKey, signature: &[u8; 64]) -> Result<(), NodeAuthError> {
        key.verifying_key()
            .verify_strict(&self.message(), &Signature::from_bytes(signature))
            .map_err(|_| NodeAuthError::BadSignature)
    }

    /// Checks that the request's time is within [`MAX_SKEW_MS`] of `now_ms`.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), NodeAuthError> {
        if self.timestamp_ms.abs_diff(now_ms) > MAX_SKEW_MS {
            return Err(NodeAuthError::Stale {
                timestamp_ms: self.timestamp_ms,
                now_ms,
                max_skew_ms: MAX_SKEW_MS,
            });
        }
        Ok(())
    }

    /// The signature header's value: `v1.<timestamp ms>.<nonce hex>.<signature base64url>`.
    pub fn header(&self, signature: &[u8; 64]) -> String {
        format!(
            "{HEADER_VERSION}.{}.{}.{}",
            self.timestamp_ms,
            hex::encode(self.nonce),
            B64.encode(signature)
        )
    }
}

/// The parts of a signature header: time, nonce, signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    /// When it was signed (Unix milliseconds).
    pub timestamp_ms: u64,
    /// The nonce.
    pub nonce: [u8; 16],
    /// The signature.
    pub signature: [u8; 64],
}

impl SignatureHeader {
    /// Parses the form written by [`SignedRequest::header`].
    pub fn parse(text: &str) -> Result<Self, NodeAuthError> {
        let bad =
            || NodeAuthError::Malformed("signature header is not `v1.<ms>.<nonce>.<sig>`".into());
        let mut parts = text.trim().split('.');
        if parts.next() != Some(HEADER_VERSION) {
            return Err(bad());
        }
        let timestamp_ms = parts.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(parts.next().ok_or_else(bad)?, &mut nonce).map_err(|_| bad())?;
        let mut signature = [0u8; 64];
        match B64.decode_slice(parts.next().ok_or_else(bad)?, &mut signature) {
            Ok(64) => {}
            _ => return Err(bad()),
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(SignatureHeader {
            timestamp_ms,
            nonce,
            signature,
        })
    }
}

/// The nonces of requests accepted recently, each kept until a request carrying it would be
/// stale anyway. Bounded: when full of live nonces, new requests are refused (retryably) rather
/// than forgetting one that could then be replayed.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<[u8; 16]>,
    /// (forget at, nonce), in the order accepted; `forget at` grows with the recipient's clock.
    order: VecDeque<(u64, [u8; 16])>,
    capacity: usize,
}

impl ReplayGuard {
    /// Remembers up to `capacity` nonces (each for twice [`MAX_SKEW_MS`]).
    pub fn new(capacity: usize) -> Self {
        ReplayGuard {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Accepts `nonce` at `now_ms` unless it was accepted before.
    pub fn admit(&mut self, nonce: [u8; 16], now_ms: u64) -> Result<(), NodeAuthError> {
        while let Some(&(forget_at, old)) = self.order.front() {
            if forget_at > now_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        if self.seen.contains(&nonce) {
            return Err(NodeAuthError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(NodeAuthError::ReplayCacheFull);
        }
        // A request stamped `t` is acceptable while |t - now| <= skew; accepted at `now`, its
        // stamp is at most now + skew, so it is stale after now + 2 * skew.
        self.seen.insert(nonce);
        self.order.push_back((now_ms + 2 * MAX_SKEW_MS, nonce));
        Ok(())
    }

    /// Nonces remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
