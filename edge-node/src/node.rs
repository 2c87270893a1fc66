//! An edge node: the pieces wired together, and the loops that keep it honest — registration
//! and heartbeats (a lapsed lease or a changed epoch drops every activation), following the
//! control plane's feed, reporting call outcomes, and evicting idle activations.
//!
//! Layers point one way: ingress → [`Router`] (token checks, the activation table,
//! forwarding) → activations → their instances → host capabilities → the ports
//! ([`crate::ports`]). Each layer is handed what it needs; activations hold the node's
//! [`Hosting`], never the node, so nothing below owns anything above it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use latchkey_wire::client::Client;
use latchkey_wire::identity::NodeCredentials;
use latchkey_wire::node::{OutcomeReport, RegisterRequest};
use latchkey_wire::tail::TailEvent;
use latchkey_wire::tls::Trust;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::assembly::{self, Flaws, Ports};
use crate::auth::Auth;
use crate::config::NodeConfig;
use crate::deployments::Deployments;
use crate::forward::Forwarder;
use crate::hosting::Hosting;
use crate::lease::Lease;
use crate::membership::keep_lease;
use crate::outcomes::Outcomes;
use crate::ports::{Clock, SystemClock, WireControlPlane, WireMembership};
use crate::router::Router;
use crate::runtime::Runtime;
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

/// What the node's own loops (registration, heartbeats, the feed, reports, sweeps, ingress)
/// share. Nothing below the router holds it.
pub(crate) struct Node {
    pub(crate) config: NodeConfig,
    /// This node's key and certificate: every request it sends is signed with them.
    pub(crate) identity: Arc<NodeCredentials>,
    /// The node's own requests to the control plane (registration, heartbeats, the feed,
    /// certificates, reports, tail); activations use the [`ControlPlane`] port.
    pub(crate) cp: Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) lease: Arc<Lease>,
    pub(crate) router: Arc<Router>,
    pub(crate) deployments: Arc<Deployments>,
    pub(crate) outcomes: Arc<Outcomes>,
    pub(crate) tail: Arc<Tail>,
    pub(crate) ready: watch::Sender<Readiness>,
}

impl Node {
    pub(crate) fn set_ready(&self, change: impl FnOnce(&mut Readiness)) {
        self.ready.send_modify(change);
    }

    /// Waits until the node holds a certificate (its requests to the control plane and to
    /// other nodes are refused before).
    pub(crate) async fn wait_enrolled(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| r.enrolled).await;
    }

    /// What every activation of this node shares.
    pub(crate) fn hosting(&self) -> &Arc<Hosting> {
        &self.router.hosting
    }
}

/// The node's parts, made from its configuration (nothing started yet).
fn assemble(
    config: NodeConfig,
    trust: &Trust,
) -> anyhow::Result<(Node, mpsc::Receiver<TailEvent>)> {
    let mut runtime_config = config.runtime.clone();
    runtime_config.max_instances = runtime_config
        .max_instances
        .max(u32::try_from(config.max_activations).unwrap_or(u32::MAX));
    let runtime = Runtime::new(runtime_config).context("starting the actor runtime")?;
    let key = crate::identity::load_or_create_key(config.identity.dir.as_deref())
        .context("loading this node's key")?;
    let identity = Arc::new(NodeCredentials::new(&config.node_id, key));
    let cp = Client::with_trust(&config.control_plane, "", trust).as_node(Arc::clone(&identity));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let auth = Arc::new(Auth::new(
        &config.node_id,
        NonZeroUsize::new(10_000).expect("nonzero"),
        Arc::clone(&clock),
    ));
    let ports = Ports {
        control_plane: Arc::new(WireControlPlane::new(
            cp.clone(),
            &config.node_id,
            config.max_commit_batch,
        )),
        peers: Arc::new(Forwarder::new(
            trust,
            Arc::clone(&identity),
            Arc::clone(&clock),
        )),
        clock: Arc::clone(&clock),
        auth: Arc::clone(&auth),
        runtime: Arc::new(runtime),
    };
    let (router, extras) = assembly::build(&config, ports, Flaws::default());
    let node = Node {
        config,
        identity,
        cp,
        clock,
        auth,
        lease: Arc::clone(&router.hosting.lease),
        router,
        deployments: extras.deployments,
        outcomes: extras.outcomes,
        tail: extras.tail,
        ready: watch::channel(Readiness::default()).0,
    };
    Ok((node, extras.tail_outgoing))
}

/// A running edge node. Dropping it stops it (as [`EdgeNode::shutdown`] does, without waiting
/// for its tasks to end).
pub struct EdgeNode {
    node: Arc<Node>,
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
        let (node, tail_outgoing) = assemble(config, &trust)?;
        let node = Arc::new(node);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let tasks = spawn_loops(&node, tail_outgoing, listener, async move {
            let _ = stopped.await;
        });
        tracing::info!(node = %node.config.node_id, %address, control_plane = %node.config.control_plane, "edge node started");
        Ok(EdgeNode {
            node,
            address,
            stop: Some(stop),
            tasks,
        })
    }

    /// The address the node listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The node's router: calls made through it take the path every call takes (for embedding
    /// and benchmarks).
    pub fn router(&self) -> &Arc<Router> {
        &self.node.router
    }

    /// The node's own client of the control plane (its requests signed with the node's key), for
    /// benchmark floors that make a request exactly as the node does.
    #[doc(hidden)]
    pub fn control_plane_client(&self) -> Client {
        self.node.cp.clone()
    }

    /// Waits until the node is registered, eligible for placements and synced, or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut ready = self.node.ready.subscribe();
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
        &self.node.tail
    }

    /// Actor type → the latest revision of its deployment in effect on this node (its versions
    /// compiled, every call from then on runs them), updated as the node follows the control
    /// plane.
    pub fn deployments_in_effect(&self) -> watch::Receiver<HashMap<String, u64>> {
        self.node.deployments.in_effect()
    }

    /// Activations held here now.
    pub fn local_activations(&self) -> usize {
        self.node.router.table.local_count()
    }

    /// Activations switched to another code version so far.
    pub fn switches(&self) -> u64 {
        self.node
            .hosting()
            .shared
            .switches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Guest instances alive here now (an evicted activation's instance goes once its task has
    /// finished the calls already queued).
    pub fn live_instances(&self) -> usize {
        self.node
            .hosting()
            .shared
            .live_instances
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A handle that lives exactly as long as the node's shared state (its runtime, table and
    /// activations): gone once the node stopped and its last task ended. For tests of cleanup.
    #[doc(hidden)]
    pub fn downgrade(&self) -> std::sync::Weak<impl Sized + use<>> {
        Arc::downgrade(self.node.hosting())
    }

    /// Stops serving: gives up the lease, drops activations, closes the listener, and waits for
    /// the node's tasks to end.
    pub async fn shutdown(mut self) {
        self.stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    /// Gives up the lease, drops activations, closes the listener and cancels the tasks.
    fn stop(&mut self) {
        self.node.lease.surrender();
        self.node.router.table.clear_local();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for EdgeNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The node's loops, each a task of its own: membership, certificate renewal, following the
/// control plane, eviction, outcome reports, the tail's interest and outbox, and ingress (until
/// `stop`).
fn spawn_loops(
    node: &Arc<Node>,
    tail_outgoing: mpsc::Receiver<TailEvent>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Vec<JoinHandle<()>> {
    let tail = Arc::clone(&node.tail);
    let interest = {
        let (node, tail) = (Arc::clone(node), Arc::clone(&tail));
        async move {
            node.wait_enrolled().await;
            let (cp, id) = (node.cp.clone(), node.config.node_id.clone());
            crate::tail::follow_interest(tail, cp, id).await;
        }
    };
    let outbox = crate::tail::push(
        tail,
        tail_outgoing,
        node.cp.clone(),
        node.config.node_id.clone(),
    );
    vec![
        tokio::spawn(heartbeats(Arc::clone(node))),
        tokio::spawn(crate::identity::renew(Arc::clone(node))),
        tokio::spawn(crate::follow::follow(Arc::clone(node))),
        tokio::spawn(sweep(Arc::clone(node))),
        tokio::spawn(report_outcomes(Arc::clone(node))),
        tokio::spawn(interest),
        tokio::spawn(outbox),
        tokio::spawn(crate::ingress::serve(Arc::clone(node), listener, stop)),
    ]
}

/// Enrols (or loads a stored certificate), then keeps the lease ([`keep_lease`]). A node that
/// cannot enrol says why and stays unready.
async fn heartbeats(node: Arc<Node>) {
    if let Err(e) = crate::identity::ensure_certificate(&node).await {
        tracing::error!(error = format!("{e:#}"), "this node cannot serve");
        return;
    }
    node.set_ready(|r| r.enrolled = true);
    let port = WireMembership {
        client: node.cp.clone(),
        node_id: node.config.node_id.clone(),
        register: RegisterRequest {
            region: node.config.region.clone(),
            address: node.config.advertise.clone().unwrap_or_default(),
        },
    };
    keep_lease(&port, &node.router, &node.ready).await;
}

/// Every second, sends the call outcomes counted per version to the control plane (which may
/// roll a version back); keeps them for the next attempt if it cannot.
async fn report_outcomes(node: Arc<Node>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let taken = node.outcomes.take();
        if taken.is_empty() {
            continue;
        }
        let report = OutcomeReport {
            outcomes: taken.to_report(),
        };
        match node.cp.report_outcomes(&node.config.node_id, &report).await {
            Ok(ack) if !ack.rolled_back.is_empty() => {
                tracing::warn!(actor_types = ?ack.rolled_back, "the control plane rolled back a version");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reporting call outcomes failed; keeping them for the next report");
                node.outcomes.give_back(taken);
            }
        }
    }
}

/// Evicts activations idle for longer than the idle timeout.
async fn sweep(node: Arc<Node>) {
    let every =
        (node.config.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        let idle_since = node
            .lease
            .now()
            .saturating_sub(node.config.idle_timeout.as_micros() as u64);
        let evicted = node.router.table.evict_idle(idle_since);
        if evicted > 0 {
            tracing::debug!(evicted, "evicted idle activations");
        }
    }
}
