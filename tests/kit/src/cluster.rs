//! A control plane and edge nodes in one process, talking over real HTTP (or HTTPS) on loopback:
//! what the edge node's end-to-end tests and the benchmarks start, and how they call actors.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use latchkey_control_plane::Config;
use latchkey_edge_node::{CallRequest, EdgeNode, NodeConfig};
use latchkey_wire::ApiError;
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::lease::LeaseSettings;

use crate::control_plane::{Launch, ServedControlPlane, mint};

/// Short leases so tests that need one to lapse do not wait long.
pub const LEASE: LeaseSettings = LeaseSettings {
    ttl_versions: 2_000_000,
    heartbeat_interval_ms: 100,
    min_heartbeats: 1,
};

/// A served control plane and the edge nodes started against it.
pub struct Cluster {
    /// The control plane and its admin client.
    pub cp: ServedControlPlane,
    /// The nodes, in the order they were added.
    pub nodes: Vec<EdgeNode>,
}

impl Cluster {
    /// A control plane (embedded store) and `n` edge nodes, each tuned by `tune`.
    pub async fn start(n: usize, tune: impl Fn(&mut NodeConfig)) -> Cluster {
        Self::start_with(n, |_| {}, tune).await
    }

    /// [`Cluster::start`] with `n` untuned nodes and the counter example deployed; a token that
    /// invokes any counter.
    pub async fn with_counter(n: usize) -> (Cluster, String) {
        let cluster = Self::start(n, |_| {}).await;
        cluster.deploy("counter", latchkey_examples::COUNTER).await;
        let token = cluster.invoke_token("counter").await;
        (cluster, token)
    }

    /// The same, every listener serving HTTPS (the nodes trust the CA file).
    pub async fn start_tls(n: usize, tune: impl Fn(&mut NodeConfig)) -> Cluster {
        let launch = Launch {
            tls: true,
            ..Launch::default()
        };
        Self::launch(launch, n, |_| {}, tune).await
    }

    /// [`Cluster::start`] with the control plane's configuration tuned by `tune_cp`.
    pub async fn start_with(
        n: usize,
        tune_cp: impl FnOnce(&mut Config),
        tune: impl Fn(&mut NodeConfig),
    ) -> Cluster {
        Self::launch(Launch::default(), n, tune_cp, tune).await
    }

    /// The most general start: the control plane as `launch` says, with [`LEASE`] and no limit
    /// on the rate of new actors unless `tune_cp` sets one; nodes `node-0`.. tuned by `tune`.
    pub async fn launch(
        launch: Launch,
        n: usize,
        tune_cp: impl FnOnce(&mut Config),
        tune: impl Fn(&mut NodeConfig),
    ) -> Cluster {
        let cp = ServedControlPlane::start(launch, |config| {
            config.lease = LEASE;
            // Tests place hundreds of actors with one token at once; the rate of new actors is
            // limited only where a test sets it.
            config.limits.new_actors_per_second = 0;
            tune_cp(config);
        })
        .await;
        let mut cluster = Cluster {
            cp,
            nodes: Vec::new(),
        };
        for i in 0..n {
            cluster.add_node(&format!("node-{i}"), &tune).await;
        }
        cluster
    }

    /// Enrols and starts node `id`, tuned by `tune`, and waits until it is ready.
    pub async fn add_node(&mut self, id: &str, tune: impl Fn(&mut NodeConfig)) {
        let token = self.cp.enrolment_token(id).await;
        let mut config = self.node_config(id, &token);
        tune(&mut config);
        let node = EdgeNode::start(config).await.expect("the edge node starts");
        node.wait_ready(Duration::from_secs(30))
            .await
            .expect("the edge node becomes ready");
        self.nodes.push(node);
    }

    /// The configuration of node `id` enrolling with `token`: this cluster's control plane and
    /// TLS, a compile cache shared by its nodes, and pools small enough for several nodes in one
    /// process (each pooled slot costs memory mappings; `vm.max_map_count` bounds them).
    pub fn node_config(&self, id: &str, token: &str) -> NodeConfig {
        let mut config = NodeConfig::new(id, &self.cp.url, token);
        config.runtime.cache_dir = Some(self.cp.dir().join("compiled"));
        config.max_activations = 1_000;
        config.runtime.max_instances = 1_000;
        if let Some(tls) = &self.cp.tls {
            config.ca_file = Some(tls.ca.clone());
            config.server.tls = Some(tls.server.clone());
        }
        config
    }

    /// Node `i`'s base URL.
    pub fn node_url(&self, i: usize) -> String {
        let scheme = if self.cp.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.nodes[i].address())
    }

    /// A client for `url` presenting `token`, trusting the cluster's CA.
    pub fn client(&self, url: &str, token: &str) -> Client {
        self.cp.client(url, token)
    }

    /// Uploads and deploys a component as `actor_type`; returns its content id.
    pub async fn deploy(&self, actor_type: &str, component: &[u8]) -> String {
        self.cp.deploy(actor_type, component).await
    }

    /// Mints a token (narrowed from the admin token).
    pub async fn token(&self, request: MintRequest) -> String {
        mint(&self.cp.admin, &request).await
    }

    /// A token to invoke every method of every actor of `actor_type`.
    pub async fn invoke_token(&self, actor_type: &str) -> String {
        self.cp.invoke_token(actor_type).await
    }

    /// Increments the counter `key` `calls` times, through the nodes in turn, and checks that
    /// each answer is the next count: one instance serves the key whichever node is asked.
    pub async fn count_alternating(&self, token: &str, key: &str, calls: u64) {
        for i in 1..=calls {
            let node = usize::try_from(i).expect("a small count") % self.nodes.len();
            let n = json(self.call(node, token, "counter", key, "inc", "").await);
            assert_eq!(n, serde_json::json!(i), "call {i}, through node {node}");
        }
    }

    /// Calls `method` on `(actor_type, key)` through node `i` over HTTP.
    pub async fn call(
        &self,
        i: usize,
        token: &str,
        actor_type: &str,
        key: &str,
        method: &str,
        payload: &str,
    ) -> Result<Bytes, ApiError> {
        let client = self.client(&self.node_url(i), token);
        call_with(
            &client,
            actor_type,
            key,
            method,
            payload.as_bytes().to_vec(),
        )
        .await
    }
}

/// Calls an actor through the node at `url`.
pub async fn call_url(
    url: &str,
    token: &str,
    actor_type: &str,
    key: &str,
    method: &str,
    payload: Vec<u8>,
) -> Result<Bytes, ApiError> {
    call_with(&Client::new(url, token), actor_type, key, method, payload).await
}

/// Calls an actor with `client` (a node's URL and a token); a transport failure panics.
pub async fn call_with(
    client: &Client,
    actor_type: &str,
    key: &str,
    method: &str,
    payload: Vec<u8>,
) -> Result<Bytes, ApiError> {
    call_client(client, actor_type, key, method, payload)
        .await
        .map_err(|e| match e {
            ClientError::Api(api) => api,
            other => panic!("transport failure: {other}"),
        })
}

/// Calls an actor with `client` (waiting as long as its timeout), every failure returned (for
/// processes that may be down).
pub async fn call_client(
    client: &Client,
    actor_type: &str,
    key: &str,
    method: &str,
    payload: Vec<u8>,
) -> Result<Bytes, ClientError> {
    let enc = latchkey_wire::path::segment;
    let path = format!(
        "/v1/actors/{}/{}/{}",
        enc(actor_type),
        enc(key),
        enc(method)
    );
    client
        .send(
            Method::POST,
            &path,
            "application/json",
            payload,
            client.timeout(),
        )
        .await
}

/// The JSON value of an answer.
pub fn json(answer: Result<Bytes, ApiError>) -> serde_json::Value {
    match answer {
        Ok(body) => {
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
        }
        Err(e) => panic!("call failed: {e}"),
    }
}

/// `GET /healthz` through `client`, waiting at most `timeout`.
pub async fn healthz(client: &Client, timeout: Duration) -> Result<Bytes, ClientError> {
    client
        .send(Method::GET, "/healthz", "text/plain", Vec::new(), timeout)
        .await
}

/// An in-process call (no HTTP) of `method` on `(actor_type, key)` with `token`, for
/// [`latchkey_edge_node::Router::call`]; a deadline 30 s away.
pub fn in_process(
    actor_type: &str,
    key: impl Into<String>,
    method: &str,
    token: &str,
) -> CallRequest {
    CallRequest {
        actor_type: actor_type.into(),
        key: key.into(),
        method: method.into(),
        payload: Bytes::new(),
        token: Bytes::copy_from_slice(token.as_bytes()),
        presenter: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        forwarded: false,
    }
}
