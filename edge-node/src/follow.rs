//! Following the control plane: a snapshot of trusted keys, revocations and deployments at
//! start, then its change feed (a long-poll). A cursor the feed no longer holds means starting
//! over from a snapshot.

use std::sync::Arc;
use std::time::Duration;

use latchkey_wire::ErrorCode;
use latchkey_wire::node::{Event, SyncSnapshot};

use crate::node::Node;

/// How long one long-poll waits for changes.
const WAIT: Duration = Duration::from_secs(20);

pub(crate) async fn follow(node: Arc<Node>) {
    node.wait_enrolled().await;
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

fn apply_snapshot(node: &Arc<Node>, snapshot: SyncSnapshot) {
    let rejected = node.auth.set_trusted_keys(&snapshot.trusted_keys);
    if !rejected.is_empty() {
        tracing::error!(
            ?rejected,
            "the control plane sent keys this node cannot parse"
        );
    }
    node.auth
        .set_revocations(snapshot.revocations.iter().map(|r| r.token_id.as_str()));
    let changed = node.deployments.replace(snapshot.deployments);
    for actor_type in &changed {
        deployment_changed(node, actor_type);
    }
    node.set_ready(|r| r.synced = true);
}

fn apply_event(node: &Arc<Node>, event: Event) {
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
            let actor_type = d.actor_type.clone();
            node.deployments.set(d);
            deployment_changed(node, &actor_type);
        }
    }
}

/// A deployment changed: compiles the versions it names (so that switching activations do not
/// wait for the compiler), then has this node's activations of the type check their version.
fn deployment_changed(node: &Arc<Node>, actor_type: &str) {
    let (versions, revision) = node.deployments.versions(actor_type);
    let node = Arc::clone(node);
    let actor_type = actor_type.to_owned();
    tokio::spawn(async move {
        for version in versions {
            if let Err(error) = crate::instance::prepare(node.hosting(), &version).await {
                tracing::warn!(%actor_type, %version, %error, "cannot prepare a deployed version ahead of use");
            }
        }
        node.deployments.took_effect(&actor_type, revision);
        let poked = node.router.table.poke(&actor_type);
        tracing::info!(%actor_type, activations = poked, "deployment changed");
    });
}
