//! A real control plane (embedded or memory store) and one edge node on loopback, in this
//! process, with the counter deployed and a token that invokes it: what most groups measure.
//! Built on the test kit's control plane and cluster; what is the suite's own is its options.

use std::sync::Arc;
use std::time::Duration;

use latchkey_control_plane::Config;
use latchkey_edge_node::{EdgeNode, NodeConfig, Router};
use latchkey_store::{CommitMode, EngineOptions};
use latchkey_test_kit::cluster::in_process;
use latchkey_test_kit::{Launch, ServedControlPlane, StoreChoice, Tls};
use latchkey_wire::client::Client;

/// Which store the control plane runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    /// redb on this machine's disk.
    Embedded,
    /// In memory, no log.
    Memory,
}

/// How to start the cluster.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub(crate) store: StoreKind,
    pub(crate) commit_mode: CommitMode,
    /// Live instances (and activations) the node may hold.
    pub(crate) capacity: u32,
    /// Commits per request to the control plane (1: one request, one transaction per call).
    pub(crate) max_commit_batch: usize,
    /// Both listeners serve HTTPS (a throwaway CA; the node trusts it).
    pub(crate) tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            store: StoreKind::Embedded,
            commit_mode: EngineOptions::default().commit_mode,
            // 10,000 warm actors and some to spare, within the default `vm.max_map_count`
            // (the pools map ~2 regions per slot up front, each activation ~3 more).
            capacity: 11_000,
            max_commit_batch: NodeConfig::new("", "", "").max_commit_batch,
            tls: false,
        }
    }
}

impl Options {
    fn launch(self) -> Launch {
        let engine = EngineOptions {
            commit_mode: self.commit_mode,
            ..EngineOptions::default()
        };
        let store = match self.store {
            StoreKind::Embedded => StoreChoice::Embedded(engine),
            StoreKind::Memory => StoreChoice::Memory(engine),
        };
        Launch {
            store,
            tls: self.tls,
            ..Launch::default()
        }
    }
}

/// The control plane's configuration for the suite.
fn tune_control_plane(config: &mut Config) {
    config.lease.min_heartbeats = 1;
    config.lease.heartbeat_interval_ms = 200;
    // The suite places thousands of actors with one token as fast as it can.
    config.limits.new_actors_per_second = 0;
}

/// A control plane serving on loopback, with the counter deployed.
pub(crate) struct ControlPlaneHandle {
    pub(crate) served: ServedControlPlane,
    /// Invokes any counter.
    pub(crate) token: String,
}

impl ControlPlaneHandle {
    pub(crate) async fn start(options: Options) -> ControlPlaneHandle {
        let served = ServedControlPlane::start(options.launch(), tune_control_plane).await;
        served.deploy("counter", latchkey_examples::COUNTER).await;
        let token = served.invoke_token("counter").await;
        ControlPlaneHandle { served, token }
    }
}

/// Starts an edge node `bench` of `capacity` activations against the control plane at `url`.
pub(crate) async fn start_node(
    url: &str,
    node_token: &str,
    capacity: u32,
    max_commit_batch: usize,
    cache_dir: std::path::PathBuf,
    tls: Option<&Tls>,
) -> EdgeNode {
    let mut config = NodeConfig::new("bench", url, node_token);
    if let Some(tls) = tls {
        config.ca_file = Some(tls.ca.clone());
        config.server.tls = Some(tls.server.clone());
    }
    config.max_commit_batch = max_commit_batch;
    config.runtime.cache_dir = Some(cache_dir);
    config.runtime.max_instances = capacity;
    config.max_activations = capacity as usize;
    let node = EdgeNode::start(config).await.expect("node starts");
    node.wait_ready(Duration::from_secs(30))
        .await
        .expect("node ready");
    node
}

/// A control plane and one edge node.
pub(crate) struct Cluster {
    pub(crate) node: EdgeNode,
    /// Invokes any counter.
    pub(crate) token: String,
    control_plane: ControlPlaneHandle,
}

impl Cluster {
    pub(crate) async fn start(options: Options) -> Cluster {
        let control_plane = ControlPlaneHandle::start(options).await;
        let served = &control_plane.served;
        let node = start_node(
            &served.url,
            &served.enrolment_token("bench").await,
            options.capacity,
            options.max_commit_batch,
            served.dir().join("compiled"),
            served.tls.as_ref(),
        )
        .await;
        Cluster {
            node,
            token: control_plane.token.clone(),
            control_plane,
        }
    }

    /// A node-API client of the control plane, as a node named `node_id` (for floors).
    pub(crate) async fn node_client(&self, node_id: &str) -> Client {
        assert_eq!(
            node_id, "bench",
            "the floor is the running node's own request"
        );
        self.node.control_plane_client()
    }

    /// The node's base URL (`https://` with `tls`).
    pub(crate) fn node_url(&self) -> String {
        let scheme = if self.control_plane.served.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.node.address())
    }

    pub(crate) fn router(&self) -> &Arc<Router> {
        self.node.router()
    }

    pub(crate) async fn stop(self) {
        self.node.shutdown().await;
    }
}

/// An in-process call of the counter's `method` on actor `key`.
pub(crate) fn call(token: &str, key: String, method: &str) -> latchkey_edge_node::CallRequest {
    in_process("counter", key, method, token)
}
