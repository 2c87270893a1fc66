//! Node API handlers (postcard bodies; the routes are the table in [`latchkey_wire::nodeapi`]).
//! A node proves who it is on every request by possession of its key: the request is signed for
//! audience `control-plane` and carries the certificate this control plane issued for that key
//! ([`super::nodeauth`]). No bearer token opens these routes; the one exception is `enrol`, where
//! a single-purpose enrolment capability introduces a new key (and proves possession of it by
//! the same signature).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use latchkey_caps::node::VerifiedNode;
use latchkey_caps::{Capability, Rights};
use latchkey_wire::limits::{MAX_COMMIT_BATCH, MAX_COMMIT_BATCH_BYTES};
use latchkey_wire::node::{
    CertificateRequest, CertificateResponse, Changes, CommitBatchRequest, CommitBatchResponse,
    CommitRequest, EnrolRequest, EnsureActivationRequest, Fence, HeartbeatRequest, ModuleRequest,
    OutcomeAck, OutcomeReport, ReadStateRequest, RegisterRequest, SelfToken, SyncRequest,
    UpgradeRequest, WatchRequest,
};
use latchkey_wire::nodeapi::{self, NodeRoute, Received, RouteInfo};
use latchkey_wire::tail::{TailBatch, TailInterestRequest};
use latchkey_wire::{ApiError, ErrorCode};

use super::nodeauth;
use super::{Reply, binary, blocking, method_not_allowed, no_content, read_body};
use crate::authority::unix_now;
use crate::{ControlPlane, Registry};

/// Lifetime of an activation's self-token (an actor can ask again after it expires).
const SELF_TOKEN_SECS: u64 = 24 * 3600;

/// Longest a `watch` waits for changes.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Whether `rest` (after `/v1/nodes/{id}/`) is a node API route.
pub(super) fn is_node_route(rest: &[&str]) -> bool {
    nodeapi::is_node_path(rest)
}

/// The answer to a request of route `R`: its body with the route's media type, or 204 for an
/// answer with nothing in it (`()`).
pub(super) fn reply<R: NodeRoute>(response: R::Response) -> Reply {
    let body = R::encode_response(response);
    if body.is_empty() {
        no_content()
    } else {
        binary(R::RESPONSE_TYPE, body)
    }
}

/// Finds the route in the table, authenticates the node, reads the body (up to the route's
/// limit) and hands the request to [`route`].
pub(super) async fn handle(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    node_id: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let Some(info) = nodeapi::lookup(req.method().as_str(), rest) else {
        return Err(method_not_allowed(req.method(), req.uri().path()));
    };
    if info == EnrolRequest::ROUTE {
        return nodeauth::enrol(cp, req, node_id, rest).await;
    }
    // Who is asking is settled from the headers alone, before the body is read.
    let signed = nodeauth::authenticate(&cp, &req, node_id)?;
    let (parts, body) = req.into_parts();
    let body = read_body(body, info.max_body).await?;
    signed.check_body(&body)?;
    let received = Received {
        segments: rest,
        query: parts.uri.query(),
        body: &body,
    };
    route(&cp, info, &received, node_id, &signed.node).await
}

/// Decodes route `R`'s request from what arrived, runs `handler` on it and encodes its answer.
async fn serve<R, F>(
    received: &Received<'_>,
    handler: impl FnOnce(R) -> F,
) -> Result<Reply, ApiError>
where
    R: NodeRoute,
    F: Future<Output = Result<R::Response, ApiError>>,
{
    let request = R::from_wire(received)?;
    Ok(reply::<R>(handler(request).await?))
}

/// One arm per route of the table: the typed request to the work it asks for.
async fn route(
    cp: &Arc<ControlPlane>,
    info: RouteInfo,
    r: &Received<'_>,
    node: &str,
    verified: &VerifiedNode,
) -> Result<Reply, ApiError> {
    let (registry, id) = (Arc::clone(&cp.registry), node.to_owned());
    match info {
        CertificateRequest::ROUTE => {
            serve(r, |_: CertificateRequest| certificate(cp, node, verified)).await
        }
        RegisterRequest::ROUTE => {
            serve(r, |q: RegisterRequest| {
                blocking(move || registry.register(&id, &q))
            })
            .await
        }
        HeartbeatRequest::ROUTE => {
            serve(r, |_: HeartbeatRequest| {
                blocking(move || registry.heartbeat(&id))
            })
            .await
        }
        EnsureActivationRequest::ROUTE => {
            serve(r, |q: EnsureActivationRequest| {
                blocking(move || registry.ensure_activation(&id, &q))
            })
            .await
        }
        UpgradeRequest::ROUTE => {
            serve(r, |q: UpgradeRequest| {
                blocking(move || registry.upgrade_activation(&id, &q))
            })
            .await
        }
        ReadStateRequest::ROUTE => {
            serve(r, |q: ReadStateRequest| {
                blocking(move || registry.read_state(&id, &q))
            })
            .await
        }
        CommitRequest::ROUTE => {
            serve(r, |q: CommitRequest| {
                blocking(move || registry.commit_state(&id, &q))
            })
            .await
        }
        CommitBatchRequest::ROUTE => {
            serve(r, |q: CommitBatchRequest| commit_batch(registry, id, q)).await
        }
        Fence::ROUTE => serve(r, |q: Fence| self_token(cp, id, q)).await,
        OutcomeReport::ROUTE => serve(r, |q: OutcomeReport| outcomes(cp, q)).await,
        ModuleRequest::ROUTE => {
            serve(r, |q: ModuleRequest| {
                blocking(move || registry.module_bytes(&q.content_id))
            })
            .await
        }
        SyncRequest::ROUTE => serve(r, |_: SyncRequest| blocking(move || registry.sync())).await,
        WatchRequest::ROUTE => serve(r, |q: WatchRequest| watch(cp, q)).await,
        TailInterestRequest::ROUTE => {
            serve(r, |q: TailInterestRequest| {
                super::tail::interest(cp, node, q)
            })
            .await
        }
        TailBatch::ROUTE => {
            serve(r, |q: TailBatch| async move {
                super::tail::publish(cp, node, q)
            })
            .await
        }
        _ => Err(ApiError::new(
            ErrorCode::Internal,
            format!("route {info} is in the node API's table but has no handler"),
        )),
    }
}

/// `certificate`: a fresh certificate for the key that signed the request.
async fn certificate(
    cp: &Arc<ControlPlane>,
    node: &str,
    verified: &VerifiedNode,
) -> Result<CertificateResponse, ApiError> {
    let certificate = nodeauth::renew(cp, node, verified).await?;
    Ok(CertificateResponse {
        expires_at: certificate.expires_at(),
        certificate: certificate.to_text(),
    })
}

/// Refuses a batch over the limits of `latchkey_wire::limits` (a node never sends one).
fn check_batch(request: &CommitBatchRequest) -> Result<(), ApiError> {
    let n = request.commits.len();
    let bytes: usize = request
        .commits
        .iter()
        .skip(1)
        .map(CommitRequest::write_bytes)
        .sum();
    if n == 0 || n > MAX_COMMIT_BATCH || bytes > MAX_COMMIT_BATCH_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "a commit batch holds 1 to {MAX_COMMIT_BATCH} commits and at most {MAX_COMMIT_BATCH_BYTES} bytes of writes after its first; this one has {n} commits and {bytes} bytes"
            ),
        ));
    }
    Ok(())
}

/// `state/commit-batch`: each commit on its own fence, all that pass in one transaction.
async fn commit_batch(
    registry: Arc<Registry>,
    node: String,
    request: CommitBatchRequest,
) -> Result<CommitBatchResponse, ApiError> {
    check_batch(&request)?;
    let results = blocking(move || registry.commit_states(&node, &request.commits)).await?;
    Ok(CommitBatchResponse {
        results: results
            .into_iter()
            .map(|r| r.map_err(|e| e.to_api()))
            .collect(),
    })
}

/// `self-token`: a capability for the actor the activation holds, while its fence holds.
async fn self_token(cp: &ControlPlane, node: String, fence: Fence) -> Result<SelfToken, ApiError> {
    let (registry, check) = (Arc::clone(&cp.registry), fence.clone());
    blocking(move || registry.check_activation(&node, &check)).await?;
    let expires_at = unix_now().saturating_add(SELF_TOKEN_SECS);
    let capability = Capability::unrestricted()
        .actor_type(fence.actor_type)
        .key(fence.key)
        .rights(Rights::INVOKE)
        .expires_at(expires_at);
    let token = cp.authority.mint(&capability).map_err(|e| e.to_api())?;
    Ok(SelfToken {
        token: token.to_text(),
        expires_at,
    })
}

/// `outcomes`: records them; a rollback they cause is announced on the feed.
async fn outcomes(cp: &ControlPlane, report: OutcomeReport) -> Result<OutcomeAck, ApiError> {
    let registry = Arc::clone(&cp.registry);
    let ack = blocking(move || registry.record_outcomes(&report)).await?;
    if !ack.rolled_back.is_empty() {
        tracing::warn!(actor_types = ?ack.rolled_back, "rolled back automatically");
        cp.feed_changed();
    }
    Ok(ack)
}

/// `watch`, a long-poll: returns as soon as there are events after the cursor, or with none
/// after the wait (at most [`MAX_WAIT`]). Wakes on this instance's own feed writes and polls
/// every 500 ms for other instances'.
async fn watch(cp: &ControlPlane, request: WatchRequest) -> Result<Changes, ApiError> {
    let WatchRequest { after, wait_ms } = request;
    let wait = wait_ms
        .map_or(MAX_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changed = cp.feed.subscribe();
    loop {
        changed.borrow_and_update();
        let registry = Arc::clone(&cp.registry);
        let cursor = after.clone();
        let changes = blocking(move || registry.changes(&cursor, 1000)).await?;
        let now = tokio::time::Instant::now();
        if !changes.events.is_empty() || now >= deadline {
            return Ok(changes);
        }
        let nap = (deadline - now).min(Duration::from_millis(500));
        let _ = tokio::time::timeout(nap, changed.changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_routes_are_recognised_and_admin_routes_are_not() {
        assert!(is_node_route(&["heartbeat"]));
        assert!(is_node_route(&["state", "commit"]));
        assert!(is_node_route(&["modules", "abc"]));
        assert!(!is_node_route(&["token"]));
        assert!(!is_node_route(&["state"]));
        assert!(!is_node_route(&["enrolment"]));
        assert!(!is_node_route(&["identity"]));
    }
}
