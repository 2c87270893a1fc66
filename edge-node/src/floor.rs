//! What the benchmark suite measures warm invokes against, in the same run: the same guest call
//! on a live instance of the same actor (same engine, host functions and read cache), without the
//! token check, routing, the mailbox, the lease check or output gating. Not part of the API.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::CallError;
use crate::host::ReadCache;
use crate::instance::instantiate;
use crate::router::Router;
use crate::table::actor_id;

/// Runs `method` `iterations` times on a second instance of the already-active actor
/// `(actor_type, key)`; returns the time the calls took. The method must not write (its writes
/// would never be committed).
pub async fn guest_calls(
    router: &Router,
    actor_type: &str,
    key: &str,
    method: &str,
    iterations: usize,
) -> Result<Duration, CallError> {
    let placement = router
        .table
        .placement(&actor_id(actor_type, key))
        .ok_or_else(|| CallError::NotFound(format!("{actor_type}/{key} is not active here")))?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut instance = instantiate(
        &router.hosting,
        &placement,
        ReadCache::default(),
        None,
        deadline,
    )
    .await
    .map_err(|stopped| stopped.error)?;
    // The first call fills the read cache, as an activation's first call does.
    instance.begin(&router.hosting, None, None, deadline);
    let _ = instance
        .handle(method, &[], deadline)
        .await
        .map_err(|stopped| stopped.error)?;
    let started = std::time::Instant::now();
    for _ in 0..iterations {
        instance.begin(&router.hosting, None, None, deadline);
        let answer = instance
            .handle(method, &[], deadline)
            .await
            .map_err(|stopped| stopped.error)?;
        if answer.is_err() || instance.take_poison().is_some() {
            return Err(CallError::Internal(format!(
                "{method} failed on the floor instance"
            )));
        }
    }
    Ok(started.elapsed())
}
