//! Keeping the lease: register (retrying until the control plane answers), then heartbeat every
//! interval. A changed epoch, or a lease that lapsed, drops every activation. The loop runs over
//! the [`Membership`] port, so the simulation runs this same code.

use std::time::Duration;

use latchkey_wire::ErrorCode;
use latchkey_wire::lease::LeaseSettings;
use latchkey_wire::node::HeartbeatRequest;
use tokio::sync::watch;

use crate::node::Readiness;
use crate::ports::Membership;
use crate::router::Router;

/// First pause after a failed registration or heartbeat (doubling from there).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// How long a heartbeat may take to answer. The lease counts from the send, so a late answer
/// still extends it: wait up to a third of the TTL (a slow control plane must not cost the lease
/// by itself), and at least an interval.
pub fn heartbeat_timeout(settings: &LeaseSettings) -> Duration {
    let ttl = Duration::from_micros(settings.ttl_versions);
    (ttl / 3).max(Duration::from_millis(settings.heartbeat_interval_ms))
}

/// Registers, then heartbeats for ever (it never returns), keeping `router`'s lease and
/// `ready` up to date.
pub async fn keep_lease(port: &dyn Membership, router: &Router, ready: &watch::Sender<Readiness>) {
    let mut settings = register(port, router, ready).await;
    let mut backoff = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(Duration::from_millis(settings.heartbeat_interval_ms)).await;
        let lease = &router.hosting.lease;
        let sent = lease.now();
        let request = HeartbeatRequest {
            active_actors: router.table.local_count() as u64,
        };
        match port.heartbeat(&request, heartbeat_timeout(&settings)).await {
            Ok(beat) => {
                settings = beat.settings;
                if lease.apply(sent, beat.epoch, settings.ttl_versions) {
                    let dropped = router.table.clear_local();
                    tracing::warn!(
                        epoch = beat.epoch,
                        dropped,
                        "the lease had lapsed: new epoch, activations dropped"
                    );
                }
                ready.send_modify(|r| r.eligible = beat.eligible);
                backoff = FIRST_BACKOFF;
            }
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                tracing::warn!(error = %e, "the control plane does not know this node; registering again");
                settings = register(port, router, ready).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        if router.hosting.lease.valid_epoch().is_none() {
            let dropped = router.table.clear_local();
            if dropped > 0 {
                tracing::warn!(dropped, "lease may have expired: activations dropped");
            }
            ready.send_modify(|r| r.eligible = false);
        }
    }
}

/// Registers (a new epoch: every activation of an earlier one is dropped), retrying until the
/// control plane answers; the lease settings it gave.
async fn register(
    port: &dyn Membership,
    router: &Router,
    ready: &watch::Sender<Readiness>,
) -> LeaseSettings {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let sent = router.hosting.lease.now();
        match port.register().await {
            Ok(registered) => {
                router.hosting.lease.apply(
                    sent,
                    registered.epoch,
                    registered.settings.ttl_versions,
                );
                router.table.clear_local();
                ready.send_modify(|r| {
                    r.registered = true;
                    r.eligible = false;
                });
                tracing::info!(
                    epoch = registered.epoch,
                    "registered with the control plane"
                );
                return registered.settings;
            }
            Err(e) => {
                tracing::warn!(error = %e, "registration failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
