//! An edge node: the pieces wired together, and the loops that keep it honest — registration
//! and heartbeats (a lapsed lease or a changed epoch drops every activation), following the
//! control plane's feed, and evicting idle activations.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{DeploymentInfo, OutcomeCounts};
use latchkey_wire::client::Client;
use latchkey_wire::identity::NodeCredentials;
use latchkey_wire::lease::LeaseSettings;
use latchkey_wire::node::{HeartbeatRequest, OutcomeReport, RegisterRequest, VersionOutcomes};
use latchkey_wire::tls::Trust;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::config::NodeConfig;
use crate::forward::Forwarder;
use crate::lease::Lease;
use crate::runtime::Runtime;
use crate::table::Table;
use crate::tail::Tail;

/// What a node must have before it serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Holds a valid certificate for its key (enrolled, or a stored certificate).
    pub enrolled: bool,
    /// Registered with the control plane (holds an epoch and a lease).
    pub registered: bool,
    /// Enough successive heartbeats to receive placements.
    pub eligible: bool,
    /// Trusted keys and revocations loaded.
    pub synced: bool,
}

impl Readiness {
    /// All of them.
    pub fn is_ready(&self) -> bool {
        self.enrolled && self.registered && self.eligible && self.synced
    }
}

/// What a deployment says an actor should run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// This node has not heard of the actor type's deployment (yet), or only of a revision
    /// older than the one the actor was placed under.
    Unknown,
    /// The deployment was removed: the actor runs nothing.
    Removed,
    /// This version.
    Version(String),
}

impl Target {
    /// What `deployment` (this node's view of it) says `key` should run, if the view is at
    /// least revision `at_least`. An older view is [`Target::Unknown`]: the control plane
    /// already decided past it, and acting on it would retire an actor just deployed again or
    /// switch an upgraded one back.
    pub(crate) fn of(deployment: Option<&DeploymentInfo>, key: &str, at_least: u64) -> Target {
        match deployment {
            None => Target::Unknown,
            Some(d) if d.revision < at_least => Target::Unknown,
            Some(d) => d
                .version_for(key)
                .map_or(Target::Removed, |v| Target::Version(v.to_owned())),
        }
    }
}

/// Everything a node's tasks share.
pub struct NodeInner {
    pub(crate) config: NodeConfig,
    /// This node's key and certificate: every request it sends is signed with them.
    pub(crate) identity: Arc<NodeCredentials>,
    pub(crate) cp: Client,
    /// Commits activations' writes through `cp`, batched.
    pub(crate) committer: crate::committer::Committer,
    pub(crate) auth: Auth,
    pub(crate) lease: Lease,
    pub(crate) runtime: Runtime,
    pub(crate) table: Table,
    pub(crate) forwarder: Forwarder,
    pub(crate) deployments: RwLock<HashMap<String, DeploymentInfo>>,
    pub(crate) ready: watch::Sender<Readiness>,
    /// Guest instances alive on this node.
    pub(crate) live_instances: Arc<AtomicUsize>,
    /// Bumped whenever a deployment changes: activations compare it before each call.
    pub(crate) deployment_revision: AtomicU64,
    /// Call outcomes per (actor type, version) since the last report.
    pub(crate) outcomes: Mutex<HashMap<String, HashMap<String, OutcomeCounts>>>,
    /// Activations switched to another version so far.
    pub(crate) switches: AtomicU64,
    /// Switches in progress, and activations waiting for their turn.
    pub(crate) switching: crate::upgrade::Switching,
    /// Followers of actors' log lines and call outcomes.
    pub(crate) tail: Arc<Tail>,
    /// Actor type → the latest deployment revision in effect here: its versions are compiled
    /// and every call from now on runs them.
    pub(crate) applied: watch::Sender<HashMap<String, u64>>,
    /// The last commit number handed out. Commits are numbered from this one counter, so every
    /// activation object this process creates for a generation numbers its commits above those
    /// of any earlier object of that generation (the control plane acknowledges a commit
    /// numbered at or below the last one applied as a resend, without applying it).
    commit_seq: AtomicU64,
}

impl NodeInner {
    /// The next commit number (see `commit_seq`).
    pub(crate) fn next_commit_seq(&self) -> u64 {
        self.commit_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    pub(crate) fn set_ready(&self, change: impl FnOnce(&mut Readiness)) {
        self.ready.send_modify(change);
    }

    /// The node's own client of the control plane (its requests signed with the node's key), for
    /// benchmark floors that make a request exactly as the node does.
    #[doc(hidden)]
    pub fn control_plane_client(&self) -> Client {
        self.cp.clone()
    }

    /// Waits until the node holds a certificate (its requests to the control plane and to
    /// other nodes are refused before).
    pub(crate) async fn wait_enrolled(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| r.enrolled).await;
    }

    /// What the deployment this node follows says actor `(actor_type, key)` should run
    /// ([`Target::of`]; `at_least` is the revision the actor was placed under).
    pub(crate) fn target(&self, actor_type: &str, key: &str, at_least: u64) -> Target {
        let deployments = self
            .deployments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Target::of(deployments.get(actor_type), key, at_least)
    }

    /// Counts one outcome of `version` of `actor_type`.
    pub(crate) fn record(
        &self,
        actor_type: &str,
        version: &str,
        count: impl FnOnce(&mut OutcomeCounts),
    ) {
        let mut outcomes = self
            .outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Looked up by `&str` first: no allocation once the version was counted.
        if let Some(counts) = outcomes
            .get_mut(actor_type)
            .and_then(|versions| versions.get_mut(version))
        {
            count(counts);
            return;
        }
        count(
            outcomes
                .entry(actor_type.to_owned())
                .or_default()
                .entry(version.to_owned())
                .or_default(),
        );
    }
}

/// A running edge node.
pub struct EdgeNode {
    inner: Arc<NodeInner>,
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl EdgeNode {
    /// Binds the listener, starts registering with the control plane, following its feed and
    /// serving. Use [`EdgeNode::wait_ready`] to wait until it can serve calls.
    pub async fn start(mut config: NodeConfig) -> anyhow::Result<EdgeNode> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        if config.advertise.is_none() {
            config.advertise = Some(match config.server.tls {
                Some(_) => format!("https://{address}"),
                None => address.to_string(),
            });
        }
        // The CA file if given, else the platform's store: for the control plane and for peers.
        let trust =
            Trust::ca_file_or_platform(config.ca_file.as_deref()).context("loading the CA file")?;
        let mut runtime_config = config.runtime.clone();
        runtime_config.max_instances = runtime_config
            .max_instances
            .max(u32::try_from(config.max_activations).unwrap_or(u32::MAX));
        let runtime = Runtime::new(runtime_config).context("starting the actor runtime")?;
        let (ready, _) = watch::channel(Readiness::default());
        let key = crate::identity::load_or_create_key(config.identity.dir.as_deref())
            .context("loading this node's key")?;
        let identity = Arc::new(NodeCredentials::new(&config.node_id, key));
        let cp =
            Client::with_trust(&config.control_plane, "", &trust).as_node(Arc::clone(&identity));
        let (tail, tail_outgoing) = Tail::new();
        let inner = Arc::new(NodeInner {
            committer: crate::committer::Committer::new(
                cp.clone(),
                &config.node_id,
                config.max_commit_batch,
            ),
            cp,
            identity,
            auth: Auth::new(&config.node_id, NonZeroUsize::new(10_000).expect("nonzero")),
            lease: Lease::new(),
            runtime,
            table: Table::new(
                config.max_activations,
                NonZeroUsize::new(100_000).expect("nonzero"),
            ),
            forwarder: Forwarder::new(&trust),
            deployments: RwLock::new(HashMap::new()),
            ready,
            live_instances: Arc::default(),
            deployment_revision: AtomicU64::new(0),
            outcomes: Mutex::default(),
            switches: AtomicU64::new(0),
            switching: crate::upgrade::Switching::default(),
            tail: Arc::clone(&tail),
            applied: watch::channel(HashMap::new()).0,
            commit_seq: AtomicU64::new(0),
            config,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let tasks = vec![
            tokio::spawn(heartbeats(Arc::clone(&inner))),
            tokio::spawn(crate::identity::renew(Arc::clone(&inner))),
            tokio::spawn(crate::follow::follow(Arc::clone(&inner))),
            tokio::spawn(sweep(Arc::clone(&inner))),
            tokio::spawn(report_outcomes(Arc::clone(&inner))),
            tokio::spawn({
                let (node, tail) = (Arc::clone(&inner), Arc::clone(&tail));
                async move {
                    node.wait_enrolled().await;
                    let (cp, id) = (node.cp.clone(), node.config.node_id.clone());
                    crate::tail::follow_interest(tail, cp, id).await;
                }
            }),
            tokio::spawn(crate::tail::push(
                tail,
                tail_outgoing,
                inner.cp.clone(),
                inner.config.node_id.clone(),
            )),
            tokio::spawn(crate::ingress::serve(Arc::clone(&inner), listener, async {
                let _ = stopped.await;
            })),
        ];
        tracing::info!(node = %inner.config.node_id, %address, control_plane = %inner.config.control_plane, "edge node started");
        Ok(EdgeNode {
            inner,
            address,
            stop: Some(stop),
            tasks,
        })
    }

    /// The address the node listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Shared state, for embedding (the dev command) and tests.
    pub fn inner(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    /// Waits until the node is registered, eligible for placements and synced, or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut ready = self.inner.ready.subscribe();
        let waited = tokio::time::timeout(timeout, ready.wait_for(Readiness::is_ready))
            .await
            .map(|r| r.is_ok());
        match waited {
            Ok(true) => Ok(()),
            Ok(false) => anyhow::bail!("edge node stopped"),
            Err(_) => anyhow::bail!(
                "edge node not ready after {timeout:?}: {:?}",
                *ready.borrow()
            ),
        }
    }

    /// Actors' log lines and call outcomes on this node: [`Tail::subscribe`] follows them.
    pub fn tail(&self) -> &Arc<Tail> {
        &self.inner.tail
    }

    /// Actor type → the latest revision of its deployment in effect on this node (its versions
    /// compiled, every call from then on runs them), updated as the node follows the control
    /// plane.
    pub fn deployments_in_effect(&self) -> watch::Receiver<HashMap<String, u64>> {
        self.inner.applied.subscribe()
    }

    /// Activations held here now.
    pub fn local_activations(&self) -> usize {
        self.inner.table.local_count()
    }

    /// Activations switched to another code version so far.
    pub fn switches(&self) -> u64 {
        self.inner
            .switches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Guest instances alive here now (an evicted activation's instance goes once its task has
    /// finished the calls already queued).
    pub fn live_instances(&self) -> usize {
        self.inner
            .live_instances
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops serving: gives up the lease, drops activations, closes the listener.
    pub async fn shutdown(mut self) {
        self.inner.lease.surrender();
        self.inner.table.clear_local();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Enrols (or loads a stored certificate), registers (retrying until the control plane
/// answers), then heartbeats every interval. A changed epoch, or a lease that lapsed, drops
/// every activation. A node that cannot enrol says why and stays unready.
async fn heartbeats(node: Arc<NodeInner>) {
    if let Err(e) = crate::identity::ensure_certificate(&node).await {
        tracing::error!(error = format!("{e:#}"), "this node cannot serve");
        return;
    }
    node.set_ready(|r| r.enrolled = true);
    let mut settings = register(&node).await;
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::time::sleep(Duration::from_millis(settings.heartbeat_interval_ms)).await;
        let sent = node.lease.now();
        let request = HeartbeatRequest {
            active_actors: node.table.local_count() as u64,
        };
        // The lease counts from the send, so a late answer still extends it: wait up to a third of
        // the TTL (a slow control plane must not cost the lease by itself).
        let ttl = Duration::from_micros(settings.ttl_versions);
        let timeout = (ttl / 3).max(Duration::from_millis(settings.heartbeat_interval_ms));
        match node
            .cp
            .heartbeat(&node.config.node_id, &request, timeout)
            .await
        {
            Ok(beat) => {
                settings = beat.settings;
                if node.lease.apply(sent, beat.epoch, settings.ttl_versions) {
                    let dropped = node.table.clear_local();
                    tracing::warn!(
                        epoch = beat.epoch,
                        dropped,
                        "the lease had lapsed: new epoch, activations dropped"
                    );
                }
                node.set_ready(|r| r.eligible = beat.eligible);
                backoff = Duration::from_millis(100);
            }
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                tracing::warn!(error = %e, "the control plane does not know this node; registering again");
                settings = register(&node).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        if node.lease.valid_epoch().is_none() {
            let dropped = node.table.clear_local();
            if dropped > 0 {
                tracing::warn!(dropped, "lease may have expired: activations dropped");
            }
            node.set_ready(|r| r.eligible = false);
        }
    }
}

async fn register(node: &NodeInner) -> LeaseSettings {
    let request = RegisterRequest {
        region: node.config.region.clone(),
        address: node.config.advertise.clone().unwrap_or_default(),
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let sent = node.lease.now();
        match node.cp.register(&node.config.node_id, &request).await {
            Ok(registered) => {
                node.lease
                    .apply(sent, registered.epoch, registered.settings.ttl_versions);
                node.table.clear_local();
                node.set_ready(|r| {
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

/// Every second, sends the call outcomes counted per version to the control plane (which may
/// roll a version back); keeps them for the next attempt if it cannot.
async fn report_outcomes(node: Arc<NodeInner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let taken = std::mem::take(
            &mut *node
                .outcomes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if taken.is_empty() {
            continue;
        }
        let report = OutcomeReport {
            outcomes: taken
                .iter()
                .flat_map(|(actor_type, versions)| {
                    versions.iter().map(|(version, counts)| VersionOutcomes {
                        actor_type: actor_type.clone(),
                        version: version.clone(),
                        counts: *counts,
                    })
                })
                .collect(),
        };
        match node.cp.report_outcomes(&node.config.node_id, &report).await {
            Ok(ack) if !ack.rolled_back.is_empty() => {
                tracing::warn!(actor_types = ?ack.rolled_back, "the control plane rolled back a version");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reporting call outcomes failed; keeping them for the next report");
                let mut outcomes = node
                    .outcomes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (actor_type, versions) in taken {
                    let kept = outcomes.entry(actor_type).or_default();
                    for (version, counts) in versions {
                        kept.entry(version).or_default().add(&counts);
                    }
                }
            }
        }
    }
}

/// Evicts activations idle for longer than the idle timeout.
async fn sweep(node: Arc<NodeInner>) {
    let every =
        (node.config.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        let idle_since = node
            .lease
            .now()
            .saturating_sub(node.config.idle_timeout.as_micros() as u64);
        let evicted = node.table.evict_idle(idle_since);
        if evicted > 0 {
            tracing::debug!(evicted, "evicted idle activations");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(active: Option<&str>, revision: u64) -> DeploymentInfo {
        DeploymentInfo {
            actor_type: "counter".into(),
            active: active.map(str::to_owned),
            previous: None,
            canary: None,
            policy: Default::default(),
            revision,
        }
    }

    #[test]
    fn a_view_older_than_the_placement_decides_nothing() {
        // Removed at revision 8, deployed again at 9: an actor placed under 9 on a node that
        // still sees 8 is not retired (and one upgraded under 9 is not switched back).
        let removed = deployment(None, 8);
        assert_eq!(Target::of(Some(&removed), "k", 9), Target::Unknown);
        let old = deployment(Some("v1"), 8);
        assert_eq!(Target::of(Some(&old), "k", 9), Target::Unknown);
    }

    #[test]
    fn a_current_view_decides() {
        assert_eq!(
            Target::of(Some(&deployment(None, 9)), "k", 9),
            Target::Removed
        );
        assert_eq!(
            Target::of(Some(&deployment(Some("v2"), 10)), "k", 9),
            Target::Version("v2".into())
        );
        assert_eq!(Target::of(None, "k", 0), Target::Unknown);
    }
}
