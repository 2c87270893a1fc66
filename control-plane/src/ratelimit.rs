//! Token buckets as pure functions of (state, now), and the in-memory table of buckets that
//! limits how fast one token id may create new actors. Time is a store version (about 1,000,000
//! per second), as everywhere in the protocol.

use std::collections::HashMap;
use std::sync::Mutex;

use latchkey_store::VERSIONS_PER_SECOND;

/// One token, in the bucket's fixed-point unit: a bucket refills `per_second` units per version,
/// so `per_second` tokens per second.
const TOKEN: u64 = VERSIONS_PER_SECOND;

/// A token bucket's rate and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketSettings {
    /// Tokens added per second; 0 disables the limit.
    pub per_second: u64,
    /// Most tokens the bucket holds (what may be taken at once after a quiet period).
    pub burst: u64,
}

/// A bucket's state: its level (in [`TOKEN`] units) at version `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    level: u64,
    at: u64,
}

/// A refused take: how long until one token is available, in versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Empty {
    /// Versions (microseconds) until the next token.
    pub retry_after: u64,
}

impl BucketSettings {
    fn capacity(&self) -> u64 {
        self.burst.saturating_mul(TOKEN)
    }

    /// The bucket's level at `now` (a missing bucket is full; time never runs backwards).
    fn level(&self, bucket: Option<&Bucket>, now: u64) -> u64 {
        match bucket {
            None => self.capacity(),
            Some(b) => {
                let refill = now.saturating_sub(b.at).saturating_mul(self.per_second);
                b.level.saturating_add(refill).min(self.capacity())
            }
        }
    }

    /// Takes one token at `now`: the bucket's next state, or how long until a token is there.
    pub fn take(&self, bucket: Option<&Bucket>, now: u64) -> Result<Bucket, Empty> {
        let level = self.level(bucket, now);
        let at = bucket.map_or(now, |b| b.at.max(now));
        if level >= TOKEN {
            return Ok(Bucket {
                level: level - TOKEN,
                at,
            });
        }
        let missing = TOKEN - level;
        Err(Empty {
            retry_after: missing.div_ceil(self.per_second.max(1)),
        })
    }

    /// Whether the bucket is full at `now` (then it is the same as no bucket at all).
    pub fn is_full(&self, bucket: &Bucket, now: u64) -> bool {
        self.level(Some(bucket), now) >= self.capacity()
    }
}

/// Buckets kept before full ones are dropped (a full bucket is the same as none).
const MAX_TRACKED: usize = 10_000;

/// Rate of new actors per token id, on this control-plane instance.
pub struct CreationLimiter {
    settings: BucketSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Why a new actor was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "rate limited: token {token_id} creates new actors faster than the limit of {per_second} per second (burst {burst}); retry in {retry_after_ms} ms"
)]
pub struct CreationRefused {
    /// The token id.
    pub token_id: String,
    /// The limit's rate.
    pub per_second: u64,
    /// The limit's burst.
    pub burst: u64,
    /// Milliseconds until the next new actor is admitted.
    pub retry_after_ms: u64,
}

impl CreationLimiter {
    /// A limiter with `settings` for every token id.
    pub fn new(settings: BucketSettings) -> Self {
        CreationLimiter {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one new actor for `token_id` at version `now`, or refuses it.
    pub fn admit(&self, token_id: &str, now: u64) -> Result<(), CreationRefused> {
        let settings = self.settings;
        if settings.per_second == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match settings.take(buckets.get(token_id), now) {
            Ok(next) => {
                if buckets.len() >= MAX_TRACKED && !buckets.contains_key(token_id) {
                    buckets.retain(|_, b| !settings.is_full(b, now));
                }
                buckets.insert(token_id.to_owned(), next);
                Ok(())
            }
            Err(empty) => Err(CreationRefused {
                token_id: token_id.to_owned(),
                per_second: settings.per_second,
                burst: settings.burst,
                retry_after_ms: empty.retry_after.div_ceil(VERSIONS_PER_SECOND / 1000),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: BucketSettings = BucketSettings {
        per_second: 10,
        burst: 3,
    };

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate() {
        let mut b = None;
        for _ in 0..3 {
            b = Some(S.take(b.as_ref(), 0).unwrap());
        }
        let empty = S.take(b.as_ref(), 0).unwrap_err();
        assert_eq!(empty.retry_after, 100_000, "10 per second: one every 0.1 s");
        // Just short of a token, then one.
        assert!(S.take(b.as_ref(), 99_999).is_err());
        let b1 = S.take(b.as_ref(), 100_000).unwrap();
        assert!(S.take(Some(&b1), 100_000).is_err());
        // A long pause refills to the burst, no more.
        let mut b = Some(b1);
        for _ in 0..3 {
            b = Some(S.take(b.as_ref(), 10_000_000).unwrap());
        }
        assert!(S.take(b.as_ref(), 10_000_000).is_err());
        assert!(S.is_full(&b.unwrap(), 20_000_000));
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let b = S.take(None, 1_000_000).unwrap();
        let b = S.take(Some(&b), 1_000_000).unwrap();
        let b = S.take(Some(&b), 1_000_000).unwrap();
        assert!(S.take(Some(&b), 0).is_err());
    }

    #[test]
    fn the_limiter_keeps_one_bucket_per_token_id_and_names_the_limit() {
        let l = CreationLimiter::new(S);
        for _ in 0..3 {
            l.admit("t1", 5).unwrap();
        }
        let refused = l.admit("t1", 5).unwrap_err();
        let m = refused.to_string();
        assert!(
            m.contains("token t1") && m.contains("10 per second (burst 3)"),
            "{m}"
        );
        assert_eq!(refused.retry_after_ms, 100);
        l.admit("t2", 5).unwrap();
        let off = CreationLimiter::new(BucketSettings {
            per_second: 0,
            burst: 0,
        });
        for _ in 0..1000 {
            off.admit("t1", 0).unwrap();
        }
    }
}
