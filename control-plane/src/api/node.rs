//! Node API handlers (postcard bodies; see [`latchkey_wire::node`]). A node proves who it is on
//! every request by possession of its key: the request is signed for audience `control-plane`
//! and carries the certificate this control plane issued for that key ([`super::nodeauth`]).
//! No bearer token opens these routes; the one exception is `enrol`, where a single-purpose
//! enrolment capability introduces a new key (and proves possession of it by the same
//! signature).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use hyper::body::Incoming;
use latchkey_caps::node::VerifiedNode;
use latchkey_caps::{Capability, Rights};
use latchkey_wire::limits::{MAX_COMMIT_BATCH, MAX_COMMIT_BATCH_BYTES, MAX_COMMIT_BYTES};
use latchkey_wire::node::{
    CertificateResponse, CommitBatchRequest, CommitBatchResponse, CommitRequest,
    EnsureActivationRequest, Fence, HeartbeatRequest, OutcomeReport, ReadStateRequest,
    RegisterRequest, SelfToken, UpgradeRequest,
};
use latchkey_wire::{ApiError, ErrorCode, NODE_CONTENT_TYPE, decode, encode};
use serde::Serialize;

use super::nodeauth;
use super::{Reply, binary, blocking, method_not_allowed, query, read_body};
use crate::ControlPlane;
use crate::authority::unix_now;

/// Lifetime of an activation's self-token (an actor can ask again after it expires).
const SELF_TOKEN_SECS: u64 = 24 * 3600;

/// Longest a `watch` waits for changes.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Largest `state/commit-batch` body: a full batch of writes, and room for its framing.
const MAX_BATCH_BODY: usize = MAX_COMMIT_BATCH_BYTES + MAX_COMMIT_BYTES + (1 << 20);

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

/// Whether `rest` (after `/v1/nodes/{id}/`) is a node API route.
pub(super) fn is_node_route(rest: &[&str]) -> bool {
    matches!(
        rest,
        ["register" | "heartbeat" | "activations" | "sync" | "watch" | "self-token"]
            | ["enrol" | "certificate"]
            | ["state", "read" | "commit" | "commit-batch"]
            | ["activations", "upgrade"]
            | ["outcomes"]
            | ["tail"]
            | ["modules", _]
    )
}

pub(super) fn reply<T: Serialize>(value: &T) -> Reply {
    binary(NODE_CONTENT_TYPE, encode(value))
}

pub(super) async fn handle(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
    node_id: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    if rest == ["enrol"] {
        return nodeauth::enrol(cp, req, node_id).await;
    }
    // Who is asking is settled from the headers alone, before the body is read.
    let signed = nodeauth::authenticate(&cp, &req, node_id)?;
    let max = if rest == ["state", "commit-batch"] {
        MAX_BATCH_BODY
    } else {
        super::MAX_BODY
    };
    let (parts, body) = req.into_parts();
    let body = read_body(body, max).await?;
    signed.check_body(&body)?;
    let req = Request::from_parts(parts, ());
    route(cp, &req, body, node_id, rest, &signed.node).await
}

async fn route(
    cp: Arc<ControlPlane>,
    req: &Request<()>,
    body: Bytes,
    node_id: &str,
    rest: &[&str],
    verified: &VerifiedNode,
) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    let node = node_id.to_owned();
    let registry = Arc::clone(&cp.registry);
    match (&method, rest) {
        (&Method::POST, ["register"]) => {
            let request: RegisterRequest = decode(&body)?;
            Ok(reply(
                &blocking(move || registry.register(&node, &request)).await?,
            ))
        }
        (&Method::POST, ["heartbeat"]) => {
            let _request: HeartbeatRequest = decode(&body)?;
            Ok(reply(&blocking(move || registry.heartbeat(&node)).await?))
        }
        (&Method::POST, ["certificate"]) => {
            let certificate = nodeauth::renew(&cp, &node, verified).await?;
            Ok(reply(&CertificateResponse {
                expires_at: certificate.expires_at(),
                certificate: certificate.to_text(),
            }))
        }
        (&Method::POST, ["activations"]) => {
            let request: EnsureActivationRequest = decode(&body)?;
            Ok(reply(
                &blocking(move || registry.ensure_activation(&node, &request)).await?,
            ))
        }
        (&Method::POST, ["activations", "upgrade"]) => {
            let request: UpgradeRequest = decode(&body)?;
            Ok(reply(
                &blocking(move || registry.upgrade_activation(&node, &request)).await?,
            ))
        }
        (&Method::POST, ["outcomes"]) => {
            let report: OutcomeReport = decode(&body)?;
            let ack = blocking(move || registry.record_outcomes(&report)).await?;
            if !ack.rolled_back.is_empty() {
                tracing::warn!(actor_types = ?ack.rolled_back, "rolled back automatically");
                cp.feed_changed();
            }
            Ok(reply(&ack))
        }
        (&Method::POST, ["state", "read"]) => {
            let request: ReadStateRequest = decode(&body)?;
            Ok(reply(
                &blocking(move || registry.read_state(&node, &request)).await?,
            ))
        }
        (&Method::POST, ["state", "commit"]) => {
            let request: CommitRequest = decode(&body)?;
            Ok(reply(
                &blocking(move || registry.commit_state(&node, &request)).await?,
            ))
        }
        (&Method::POST, ["state", "commit-batch"]) => {
            let request: CommitBatchRequest = decode(&body)?;
            check_batch(&request)?;
            let results = blocking(move || registry.commit_states(&node, &request.commits)).await?;
            Ok(reply(&CommitBatchResponse {
                results: results
                    .into_iter()
                    .map(|r| r.map_err(|e| e.to_api()))
                    .collect(),
            }))
        }
        (&Method::POST, ["self-token"]) => {
            let fence: Fence = decode(&body)?;
            let check = fence.clone();
            blocking(move || registry.check_activation(&node, &check)).await?;
            let expires_at = unix_now().saturating_add(SELF_TOKEN_SECS);
            let capability = Capability::unrestricted()
                .actor_type(fence.actor_type)
                .key(fence.key)
                .rights(Rights::INVOKE)
                .expires_at(expires_at);
            let token = cp.authority.mint(&capability).map_err(|e| e.to_api())?;
            Ok(reply(&SelfToken {
                token: token.to_text(),
                expires_at,
            }))
        }
        (&Method::GET, ["modules", content_id]) => {
            let id = content_id.to_string();
            let bytes = blocking(move || registry.module_bytes(&id)).await?;
            Ok(binary("application/wasm", bytes))
        }
        (&Method::GET, ["sync"]) => Ok(reply(&blocking(move || registry.sync()).await?)),
        (&Method::GET, ["watch"]) => {
            let cursor = query(req, "after").unwrap_or_default().to_owned();
            let wait = query(req, "wait_ms")
                .and_then(|w| w.parse().ok())
                .map_or(MAX_WAIT, Duration::from_millis)
                .min(MAX_WAIT);
            watch(cp, cursor, wait).await
        }
        (&Method::GET, ["tail"]) => super::tail::interest(cp, req, &node).await,
        (&Method::POST, ["tail"]) => super::tail::publish(&cp, &body, &node),
        _ => Err(method_not_allowed(&method, req.uri().path())),
    }
}

/// Long-poll: returns as soon as there are events after `cursor`, or with none after `wait`.
/// Wakes on this instance's own feed writes and polls every 500 ms for other instances'.
async fn watch(cp: Arc<ControlPlane>, cursor: String, wait: Duration) -> Result<Reply, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut changed = cp.feed.subscribe();
    loop {
        changed.borrow_and_update();
        let registry = Arc::clone(&cp.registry);
        let after = cursor.clone();
        let changes = blocking(move || registry.changes(&after, 1000)).await?;
        let now = tokio::time::Instant::now();
        if !changes.events.is_empty() || now >= deadline {
            return Ok(reply(&changes));
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
    }
}
