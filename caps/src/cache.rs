//! A verified-token cache for hot paths: a hit costs a hash of the presented bytes and a few
//! lookups, while still re-checking issuer trust, revocation and the validity window.
//!
//! Entries are keyed by the presented token bytes themselves, in a map hashed with a randomly
//! seeded `foldhash` hasher. A lookup therefore ends in a byte comparison, so two tokens can never
//! share an entry (a truncated cryptographic digest as key would make that only improbable), and
//! the hash costs ~55 ns for a typical token against ~320 ns for SHA-256 (`BENCHMARKS.md`).
//!
//! A second LRU holds verified chain prefixes, keyed by a SHA-256 of the prefix: a token made by
//! attenuating a known token only has its new blocks' signatures checked.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::fast::RandomState;
use lru::LruCache;

use crate::authorize::{Request, authorize, authorize_right};
use crate::capability::Rights;
use crate::chain::{ChainState, prefix_hashes};
use crate::codec::decode_token;
use crate::error::{AuthError, VerifyError};
use crate::keys::TrustedKeys;
use crate::revocation::Revocations;
use crate::token::{MAX_TEXT_BYTES, Token};
use crate::verify::{Verified, verify_layout};

/// Hit and miss counts since the cache was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Presentations answered from the cache.
    pub hits: u64,
    /// Presentations that needed signature checks.
    pub misses: u64,
    /// Block signatures skipped thanks to a cached prefix.
    pub blocks_skipped: u64,
}

struct Inner {
    verified: LruCache<Box<[u8]>, Arc<Verified>, RandomState>,
    prefixes: LruCache<[u8; 32], ChainState, RandomState>,
    stats: CacheStats,
}

/// Thread-safe LRU of verified tokens and verified chain prefixes.
pub struct TokenCache {
    inner: Mutex<Inner>,
}

impl TokenCache {
    /// A cache holding up to `capacity` tokens and `capacity` chain prefixes.
    pub fn new(capacity: NonZeroUsize) -> Self {
        TokenCache {
            inner: Mutex::new(Inner {
                verified: LruCache::with_hasher(capacity, RandomState::default()),
                prefixes: LruCache::with_hasher(capacity, RandomState::default()),
                stats: CacheStats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section is a handful of LRU calls that leave the maps consistent even if
        // a panic unwinds through them, so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Verifies a token presented as text or binary, answering from the cache when it can. A hit
    /// still checks that the issuer key is trusted, that no block is revoked, and the time window.
    pub fn verify(
        &self,
        presented: &[u8],
        keys: &TrustedKeys,
        revoked: &impl Revocations,
        now: u64,
    ) -> Result<Arc<Verified>, VerifyError> {
        if presented.len() > MAX_TEXT_BYTES {
            return Err(VerifyError::TooLarge {
                size: presented.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let hit = {
            let mut inner = self.lock();
            let hit = inner.verified.get(presented).cloned();
            if hit.is_some() {
                inner.stats.hits += 1;
            }
            hit
        };
        match hit {
            Some(verified) => {
                verified.recheck(keys, revoked, now)?;
                Ok(verified)
            }
            None => self.verify_cold(presented, keys, revoked, now),
        }
    }

    /// Verifies the token and authorizes `request` against it.
    pub fn authorize(
        &self,
        presented: &[u8],
        keys: &TrustedKeys,
        revoked: &impl Revocations,
        request: &Request<'_>,
        now: u64,
    ) -> Result<Arc<Verified>, AuthError> {
        let verified = self.verify(presented, keys, revoked, now)?;
        authorize(verified.capability(), request, now)?;
        Ok(verified)
    }

    /// Verifies the token and checks only its validity window, audience and `right` (see
    /// [`authorize_right`]).
    pub fn authorize_right(
        &self,
        presented: &[u8],
        keys: &TrustedKeys,
        revoked: &impl Revocations,
        right: Rights,
        presenter: Option<&str>,
        now: u64,
    ) -> Result<Arc<Verified>, AuthError> {
        let verified = self.verify(presented, keys, revoked, now)?;
        authorize_right(verified.capability(), right, presenter, now)?;
        Ok(verified)
    }

    fn verify_cold(
        &self,
        presented: &[u8],
        keys: &TrustedKeys,
        revoked: &impl Revocations,
        now: u64,
    ) -> Result<Arc<Verified>, VerifyError> {
        let token = Token::from_presented(presented)?;
        let layout = decode_token(token.as_bytes())?;
        if !keys.contains(&layout.key_id) {
            return Err(VerifyError::UnknownKey(layout.key_id));
        }
        let hashes = prefix_hashes(layout.key_id, &layout.blocks);
        let resume = {
            let mut inner = self.lock();
            inner.stats.misses += 1;
            let found = hashes
                .iter()
                .rev()
                .find_map(|h| inner.prefixes.get(h).cloned());
            inner.stats.blocks_skipped += found.as_ref().map_or(0, |s| s.blocks()) as u64;
            found
        };
        let mut verified_prefixes = Vec::new();
        let result = verify_layout(&layout, keys, revoked, now, resume, |state| {
            verified_prefixes.push((hashes[state.blocks() - 1], state.clone()));
        });
        // Prefix states are recorded only after their signatures verified, so they stay valid
        // even when the token as a whole is rejected (bad proof, revoked, expired).
        let mut inner = self.lock();
        for (hash, state) in verified_prefixes {
            inner.prefixes.put(hash, state);
        }
        let verified = Arc::new(result?);
        inner.verified.put(presented.into(), Arc::clone(&verified));
        Ok(verified)
    }

    /// Drops every entry (e.g. after a trusted key was removed, to free memory early; removed keys
    /// are already refused on every hit).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.verified.clear();
        inner.prefixes.clear();
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.lock().verified.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hit and miss counts.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("TokenCache")
            .field("tokens", &inner.verified.len())
            .field("prefixes", &inner.prefixes.len())
            .field("stats", &inner.stats)
            .finish()
    }
}
