//! Example actor `rate-limiter`: a token bucket per key (e.g. one per client or per route).
//!
//! | method | argument | answer |
//! |---|---|---|
//! | `configure` | `{"capacity": f64, "refill_per_sec": f64}` | `null`; the bucket starts full |
//! | `try_acquire` | `n` (`u32`, default 1) | `{"allowed": bool, "remaining": f64}` |
//!
//! The bucket holds up to `capacity` tokens and gains `refill_per_sec` per second (by
//! [`clock::now_millis`]); `try_acquire` takes `n` tokens if it has them. A bucket that was
//! never configured uses capacity 10 and 1 token per second. The bucket is stored under `bucket`
//! whenever it changes.

use latchkey_actor_sdk::{Actor, Context, Error, Result, clock, export_actor, storage};
use serde::{Deserialize, Serialize};

/// Where the bucket is stored.
const KEY: &str = "bucket";

/// The bucket's shape: the argument of `configure`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Config {
    /// At most this many tokens.
    capacity: f64,
    /// Tokens added per second.
    refill_per_sec: f64,
}

/// Used until `configure` is called.
const DEFAULT_CONFIG: Config = Config {
    capacity: 10.0,
    refill_per_sec: 1.0,
};

/// A token bucket: the actor's state, in memory and in storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bucket {
    config: Config,
    /// Tokens available at `updated_ms`.
    tokens: f64,
    /// When `tokens` was computed (milliseconds since the Unix epoch).
    updated_ms: u64,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    fn full(config: Config, now_ms: u64) -> Self {
        Self {
            config,
            tokens: config.capacity,
            updated_ms: now_ms,
        }
    }

    /// The tokens available at `now_ms` (a clock stepping backwards adds none).
    fn available(&self, now_ms: u64) -> f64 {
        let elapsed_secs = now_ms.saturating_sub(self.updated_ms) as f64 / 1000.0;
        (self.tokens + elapsed_secs * self.config.refill_per_sec).min(self.config.capacity)
    }

    /// Takes `n` tokens at `now_ms` if available; returns whether it did.
    fn try_take(&mut self, n: f64, now_ms: u64) -> bool {
        let available = self.available(now_ms);
        if available < n {
            return false;
        }
        self.tokens = available - n;
        self.updated_ms = self.updated_ms.max(now_ms);
        true
    }
}

/// The answer of `try_acquire`.
#[derive(Debug, Serialize)]
struct Acquired {
    allowed: bool,
    /// Tokens left after this attempt.
    remaining: f64,
}

/// The actor's state: the bucket.
struct RateLimiter {
    bucket: Bucket,
}

impl Actor for RateLimiter {
    fn activate(_ctx: &Context) -> Result<Self> {
        let bucket = match storage::get(KEY)? {
            Some(bucket) => bucket,
            None => Bucket::full(DEFAULT_CONFIG, clock::now_millis()),
        };
        Ok(Self { bucket })
    }
}

export_actor!(RateLimiter {
    "configure" => configure,
    "try_acquire" => try_acquire,
});

impl RateLimiter {
    fn configure(&mut self, _ctx: &Context, config: Config) -> Result<()> {
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        if !(valid(config.capacity) && config.capacity > 0.0 && valid(config.refill_per_sec)) {
            return Err(Error::bad_request(
                "capacity must be a positive number and refill_per_sec a non-negative one",
            ));
        }
        let bucket = Bucket::full(config, clock::now_millis());
        storage::put(KEY, &bucket)?;
        self.bucket = bucket;
        Ok(())
    }

    fn try_acquire(&mut self, _ctx: &Context, n: Option<u32>) -> Result<Acquired> {
        let now = clock::now_millis();
        let mut bucket = self.bucket.clone();
        let allowed = bucket.try_take(f64::from(n.unwrap_or(1)), now);
        if allowed {
            // A refused attempt changes nothing: the refill is recomputed from the stored time.
            storage::put(KEY, &bucket)?;
            self.bucket = bucket;
        }
        Ok(Acquired {
            allowed,
            remaining: self.bucket.available(now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: Config = Config {
        capacity: 3.0,
        refill_per_sec: 2.0,
    };

    #[test]
    fn takes_until_empty_then_refills_at_the_rate() {
        let mut bucket = Bucket::full(CONFIG, 1_000);
        assert!(bucket.try_take(2.0, 1_000));
        assert!(bucket.try_take(1.0, 1_000));
        assert!(!bucket.try_take(1.0, 1_000));
        assert!(!bucket.try_take(1.0, 1_400)); // 0.8 tokens
        assert!(bucket.try_take(1.0, 1_500)); // 1.0
        assert_eq!(bucket.available(1_500), 0.0);
        assert_eq!(bucket.available(100_000), 3.0); // capped at capacity
    }

    #[test]
    fn a_clock_stepping_back_adds_nothing() {
        let mut bucket = Bucket::full(CONFIG, 10_000);
        assert!(bucket.try_take(3.0, 10_000));
        assert_eq!(bucket.available(5_000), 0.0);
        assert!(!bucket.try_take(1.0, 5_000));
    }

    #[test]
    fn more_than_capacity_is_never_allowed() {
        let mut bucket = Bucket::full(CONFIG, 0);
        assert!(!bucket.try_take(4.0, u64::MAX));
    }
}
