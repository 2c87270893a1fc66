//! A real control plane (embedded or memory store) and one edge node on loopback, in this
//! process, with the counter deployed and a token that invokes it: what most groups measure.

use std::sync::Arc;
use std::time::Duration;

use latchkey_control_plane::{Config, ControlPlane};
use latchkey_edge_node::{EdgeNode, NodeConfig, Router};
use latchkey_store::{CommitMode, EmbeddedStore, EngineOptions, MemoryStore, Store};
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::Client;
use latchkey_wire::server::ServerOptions;
use latchkey_wire::tls::{DevCerts, ServerTls, Trust, dev_certs};

fn server_tls(certs: &DevCerts) -> ServerTls {
    ServerTls::from_pem_files(&certs.cert, &certs.key).expect("the dev certificate")
}

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

/// A control plane serving on loopback, with the counter deployed.
pub(crate) struct ControlPlaneHandle {
    pub(crate) url: String,
    /// With `tls`: the certificates both listeners serve, and the CA clients trust.
    pub(crate) tls: Option<DevCerts>,
    pub(crate) admin: Client,
    /// Invokes any counter.
    pub(crate) token: String,
    dir: tempfile::TempDir,
}

impl ControlPlaneHandle {
    pub(crate) async fn start(options: Options) -> ControlPlaneHandle {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(dir.path().join("cp"));
        config.lease.min_heartbeats = 1;
        config.lease.heartbeat_interval_ms = 200;
        // The suite places thousands of actors with one token as fast as it can.
        config.limits.new_actors_per_second = 0;
        let engine = EngineOptions {
            commit_mode: options.commit_mode,
            ..EngineOptions::default()
        };
        let store_path = dir.path().join("store.redb");
        let opened = tokio::task::spawn_blocking(move || {
            let store: Arc<dyn Store> = match options.store {
                StoreKind::Embedded => Arc::new(EmbeddedStore::open_with(store_path, &engine)?),
                StoreKind::Memory => Arc::new(MemoryStore::volatile_with(&engine)),
            };
            ControlPlane::open_with_store(store, config)
        })
        .await
        .expect("open task")
        .expect("control plane opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let tls = options
            .tls
            .then(|| dev_certs(&dir.path().join("tls")).expect("dev certificates"));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("address"));
        let server = ServerOptions {
            tls: tls.as_ref().map(server_tls),
            ..ServerOptions::default()
        };
        tokio::spawn(latchkey_control_plane::api::serve_with(
            opened.control_plane,
            listener,
            server,
            std::future::pending(),
        ));
        let admin_token = opened.new_admin_token.expect("a new admin token");
        let admin = match &tls {
            Some(certs) => Client::with_trust(
                &url,
                &admin_token,
                &Trust::ca_file(&certs.ca).expect("the CA"),
            ),
            None => Client::new(&url, &admin_token),
        };
        let counter = admin
            .upload_module(latchkey_examples::COUNTER.to_vec())
            .await
            .expect("upload")
            .content_id;
        admin
            .deploy("counter", &counter, None)
            .await
            .expect("deploy");
        let token = admin
            .mint(&MintRequest {
                actor_type: Some("counter".into()),
                rights: Some(vec!["invoke".into()]),
                ..MintRequest::default()
            })
            .await
            .expect("mint")
            .token;
        ControlPlaneHandle {
            url,
            tls,
            admin,
            token,
            dir,
        }
    }

    /// A single-use enrolment capability for node `node_id`.
    pub(crate) async fn node_token(&self, node_id: &str) -> String {
        self.admin
            .enrolment_token(node_id, None)
            .await
            .expect("enrolment capability")
            .token
    }
}

/// Starts an edge node `bench` of `capacity` activations against the control plane at `url`.
pub(crate) async fn start_node(
    url: &str,
    node_token: &str,
    capacity: u32,
    max_commit_batch: usize,
    cache_dir: std::path::PathBuf,
    tls: Option<&DevCerts>,
) -> EdgeNode {
    let mut config = NodeConfig::new("bench", url, node_token);
    if let Some(certs) = tls {
        config.ca_file = Some(certs.ca.clone());
        config.server.tls = Some(server_tls(certs));
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
    _control_plane: ControlPlaneHandle,
}

impl Cluster {
    pub(crate) async fn start(options: Options) -> Cluster {
        let cp = ControlPlaneHandle::start(options).await;
        let node_token = cp.node_token("bench").await;
        let node = start_node(
            &cp.url,
            &node_token,
            options.capacity,
            options.max_commit_batch,
            cp.dir.path().join("compiled"),
            cp.tls.as_ref(),
        )
        .await;
        Cluster {
            node,
            token: cp.token.clone(),
            _control_plane: cp,
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
        let scheme = if self._control_plane.tls.is_some() {
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
    latchkey_edge_node::CallRequest {
        actor_type: "counter".into(),
        key,
        method: method.into(),
        payload: bytes::Bytes::new(),
        token: bytes::Bytes::copy_from_slice(token.as_bytes()),
        presenter: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        forwarded: false,
    }
}
