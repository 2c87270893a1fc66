//! Following the control plane: a snapshot of trusted keys, revocations and deployments at
//! start, then its change feed (a long-poll). A cursor the feed no longer holds means starting
//! over from a snapshot.

use std::sync::Arc;
use std::time::Duration;

use latchkey_wire::ErrorCode;
use latchkey_wire::node::{Event, SyncSnapshot};

use crate::node::NodeInner;

/// How long one long-poll waits for changes.
const WAIT: Duration = Duration::from_secs(20);

pub(crate) async fn follow(node: Arc<NodeInner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let snapshot = match node.cp.sync(&node.config.node_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sync with the control plane; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let mut cursor = snapshot.cursor.clone();
        apply_snapshot(&node, snapshot);
        loop {
            match node.cp.watch(&node.config.node_id, &cursor, WAIT).await {
                Ok(changes) => {
                    for event in changes.events {
                        apply_event(&node, event);
                    }
                    cursor = changes.cursor;
                    backoff = Duration::from_millis(100);
                }
                Err(e) if e.code() == Some(ErrorCode::Gone) => {
                    tracing::info!(
                        "the change feed moved past this node's cursor; resynchronising"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "following the control plane failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

fn apply_snapshot(node: &NodeInner, snapshot: SyncSnapshot) {
    let rejected = node.auth.set_trusted_keys(&snapshot.trusted_keys);
    if !rejected.is_empty() {
        tracing::error!(
            ?rejected,
            "the control plane sent keys this node cannot parse"
        );
    }
    node.auth
        .set_revocations(snapshot.revocations.iter().map(|r| r.token_id.as_str()));
    {
        let mut deployments = node
            .deployments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        deployments.clear();
        for d in snapshot.deployments {
            deployments.insert(d.actor_type.clone(), d);
        }
    }
    node.set_ready(|r| r.synced = true);
}

fn apply_event(node: &NodeInner, event: Event) {
    match event {
        Event::Revocation(r) => node.auth.revoke([r.token_id.as_str()]),
        Event::TrustedKeys(keys) => {
            let rejected = node.auth.set_trusted_keys(&keys);
            if !rejected.is_empty() {
                tracing::error!(
                    ?rejected,
                    "the control plane sent keys this node cannot parse"
                );
            }
        }
        Event::Deployment(d) => {
            node.deployments
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(d.actor_type.clone(), d);
        }
    }
}
