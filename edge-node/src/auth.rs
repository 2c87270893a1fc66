//! Token checks on the node: every call — from HTTP clients, forwarded by other nodes, or made
//! by actors — is verified and authorized here with `caps`, using the trusted issuer keys and the
//! revocations followed from the control plane, through a verified-token cache. Calls forwarded
//! by other nodes are also checked for the forwarding node's signature (for audience
//! `node:{this node}`) and certificate.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use latchkey_caps::node::{NodeAuthError, NodeVerifier, Presented, VerifiedNode, node_audience};
use latchkey_caps::{
    AuthError, PublicKey, Request, RevocationId, TokenCache, TrustedKeys, Verified,
};

use crate::ports::{Clock, SystemClock};

/// Unix seconds now, by the system clock ([`Clock::unix_secs`]: fails closed).
pub fn unix_now() -> u64 {
    SystemClock::new().unix_secs()
}

/// Certificates of other nodes whose signature was checked, kept for their next calls.
const CACHED_CERTIFICATES: usize = 1024;
/// Nonces of recent forwarded calls remembered (each for 2 × `MAX_SKEW_MS`).
const REMEMBERED_NONCES: usize = 1_000_000;

#[derive(Default)]
struct State {
    trusted: TrustedKeys,
    revoked: HashSet<RevocationId>,
}

/// Trusted keys, revocations, the token cache and the check of other nodes' signed calls.
pub struct Auth {
    state: RwLock<State>,
    cache: TokenCache,
    nodes: NodeVerifier,
    /// Tokens and certificates expire, and signed calls go stale, by this clock.
    clock: Arc<dyn Clock>,
}

impl Auth {
    /// Trusts nothing until keys are set; accepts forwarded calls signed for `node_id` from
    /// now on (by `clock`; see [`NodeVerifier::started_at`]).
    pub fn new(node_id: &str, cache_capacity: NonZeroUsize, clock: Arc<dyn Clock>) -> Self {
        Auth {
            state: RwLock::default(),
            cache: TokenCache::new(cache_capacity),
            nodes: NodeVerifier::new(
                node_audience(node_id),
                NonZeroUsize::new(CACHED_CERTIFICATES).expect("nonzero"),
                REMEMBERED_NONCES,
            )
            .started_at(clock.unix_millis()),
            clock,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether trusted issuer keys have been loaded (until then no token can be checked, and a
    /// call must be answered "retry", not "invalid token").
    pub fn has_keys(&self) -> bool {
        !self.read().trusted.is_empty()
    }

    /// Replaces the trusted issuer keys (`lk-pub-v1:…`); unparsable ones are skipped and named.
    pub fn set_trusted_keys(&self, keys: &[String]) -> Vec<String> {
        let mut trusted = TrustedKeys::new();
        let mut rejected = Vec::new();
        for k in keys {
            match k.parse::<PublicKey>().map(|p| trusted.insert(&p)) {
                Ok(Ok(_)) => {}
                _ => rejected.push(k.clone()),
            }
        }
        self.write().trusted = trusted;
        rejected
    }

    /// Adds revoked token ids (hex); unparsable ones are skipped.
    pub fn revoke<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let parsed: Vec<RevocationId> = ids.into_iter().filter_map(|id| id.parse().ok()).collect();
        self.write().revoked.extend(parsed);
    }

    /// Replaces the revocation set.
    pub fn set_revocations<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let parsed = ids.into_iter().filter_map(|id| id.parse().ok()).collect();
        self.write().revoked = parsed;
    }

    /// Verifies `token` and authorizes calling `method` on `(actor_type, key)`, presented by
    /// `presenter` (an actor `actor:{type}/{key}`, or `None` for HTTP clients).
    pub fn authorize_call(
        &self,
        token: &[u8],
        actor_type: &str,
        key: &str,
        method: &str,
        presenter: Option<&str>,
    ) -> Result<Arc<Verified>, AuthError> {
        let mut request = Request::invoke(actor_type, key, method);
        request.presenter = presenter;
        let state = self.read();
        self.cache.authorize(
            token,
            &state.trusted,
            &state.revoked,
            &request,
            self.clock.unix_secs(),
        )
    }

    /// Verifies a call forwarded by another node: its certificate (issued by a trusted key, not
    /// revoked) and its signature, made for this node, fresh and not seen before; and, if the
    /// call names its sender (`claimed`), that the certificate names the same node.
    pub fn authenticate_node(
        &self,
        presented: &Presented<'_>,
        claimed: Option<&str>,
    ) -> Result<VerifiedNode, NodeAuthError> {
        let now_ms = self.clock.unix_millis();
        let state = self.read();
        let node = self
            .nodes
            .verify(presented, &state.trusted, &state.revoked, now_ms)?;
        if let Some(claimed) = claimed
            && claimed != node.node_id
        {
            return Err(NodeAuthError::WrongNode {
                certified: node.node_id,
                claimed: claimed.to_owned(),
            });
        }
        Ok(node)
    }
}
