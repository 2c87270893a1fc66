//! The retry loop: run a transaction closure until it commits, retrying conflicts with bounded
//! exponential backoff, as FoundationDB's `run` does. Closures must be idempotent.

use std::time::{Duration, Instant};

use crate::{Store, StoreError, Transaction, Versionstamp};

/// The result of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed<T> {
    /// What the closure returned.
    pub value: T,
    /// The commit's versionstamp; `None` if the transaction wrote nothing.
    pub versionstamp: Option<Versionstamp>,
}

/// Lets [`run`] find a store conflict inside a caller's error type.
pub trait StoreRetryable: From<StoreError> {
    /// The store error this error wraps, if any.
    fn store_error(&self) -> Option<&StoreError>;
}

impl StoreRetryable for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// How long and how often [`run_with`] retries conflicts.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Most attempts in total.
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first attempt.
    pub timeout: Duration,
    /// First backoff; it doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 100,
            timeout: Duration::from_secs(5),
            initial_backoff: Duration::from_micros(50),
            max_backoff: Duration::from_millis(20),
        }
    }
}

/// Runs `f` in a transaction and commits, retrying on conflicts with the default policy.
pub fn run<T, E, F>(store: &(impl Store + ?Sized), f: F) -> Result<Committed<T>, E>
where
    E: StoreRetryable,
    F: FnMut(&mut dyn Transaction) -> Result<T, E>,
{
    run_with(store, RetryPolicy::default(), f)
}

/// [`run`] with an explicit retry policy.
pub fn run_with<T, E, F>(
    store: &(impl Store + ?Sized),
    policy: RetryPolicy,
    mut f: F,
) -> Result<Committed<T>, E>
where
    E: StoreRetryable,
    F: FnMut(&mut dyn Transaction) -> Result<T, E>,
{
    let started = Instant::now();
    let mut backoff = policy.initial_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut tx = store.begin()?;
        let outcome = match f(&mut *tx) {
            Ok(value) => match tx.commit() {
                Ok(versionstamp) => {
                    return Ok(Committed {
                        value,
                        versionstamp,
                    });
                }
                Err(e) => E::from(e),
            },
            Err(e) => e,
        };
        let retry = outcome.store_error().is_some_and(StoreError::is_conflict)
            && attempt < policy.max_attempts
            && started.elapsed() < policy.timeout;
        if !retry {
            return Err(outcome);
        }
        // Spread competing retries apart: a pseudo-random fraction of the backoff.
        let jitter = (started.elapsed().subsec_nanos() as u64 % 1024) as u32;
        std::thread::sleep(backoff / 2 + backoff / 2 * jitter / 1024);
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}
