//! Token checks on the node: every call — from HTTP clients, forwarded by other nodes, or made
//! by actors — is verified and authorized here with `caps`, using the trusted issuer keys and the
//! revocations followed from the control plane, through a verified-token cache.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use latchkey_caps::{
    AuthError, PublicKey, Request, RevocationId, Rights, TokenCache, TrustedKeys, Verified,
};
use latchkey_wire::node::node_audience;

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Default)]
struct State {
    trusted: TrustedKeys,
    revoked: HashSet<RevocationId>,
}

/// Trusted keys, revocations and the token cache.
pub struct Auth {
    state: RwLock<State>,
    cache: TokenCache,
}

impl Auth {
    /// Trusts nothing until keys are set.
    pub fn new(cache_capacity: NonZeroUsize) -> Self {
        Auth {
            state: RwLock::default(),
            cache: TokenCache::new(cache_capacity),
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
        self.cache
            .authorize(token, &state.trusted, &state.revoked, &request, unix_now())
    }

    /// Verifies that `token` is a node capability (for calls forwarded by other nodes).
    pub fn authorize_node(&self, token: &[u8], node_id: &str) -> Result<Arc<Verified>, AuthError> {
        let audience = node_audience(node_id);
        let state = self.read();
        self.cache.authorize_right(
            token,
            &state.trusted,
            &state.revoked,
            Rights::INVOKE | Rights::READ_STATE,
            Some(&audience),
            unix_now(),
        )
    }
}
