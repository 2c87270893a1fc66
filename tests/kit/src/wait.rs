//! Bounded polling, for effects that propagate asynchronously (a revocation reaching a node
//! through the change feed, a lease lapsing): the check is repeated until it holds, and the test
//! fails naming what did not happen once the bound passes. No fixed sleeps stand in for an effect.

use std::future::Future;
use std::time::Duration;

/// How often a check is repeated.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Some`; fails after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, 10, check).await
}

/// [`eventually`] with a bound of `secs` seconds.
pub async fn eventually_within<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {secs} s"
        );
        tokio::time::sleep(POLL).await;
    }
}
