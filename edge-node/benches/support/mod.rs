//! What the edge node benchmarks share: a real control plane (embedded store) and one edge node
//! on loopback, in this process, with the counter deployed and a token to invoke it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_edge_node::{CallRequest, EdgeNode, NodeConfig};
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::Client;

pub struct Bench {
    pub admin: Client,
    pub node: EdgeNode,
    /// Content id of the deployed counter.
    pub counter: String,
    /// Invokes any counter.
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Bench {
    pub async fn start() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("cp"));
        config.lease.min_heartbeats = 1;
        config.lease.heartbeat_interval_ms = 200;
        // The benchmark places a thousand actors with one token at once.
        config.limits.new_actors_per_second = 0;
        let opened = tokio::task::spawn_blocking(move || ControlPlane::open(config))
            .await
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cp_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(latchkey_control_plane::api::serve(
            opened.control_plane,
            listener,
            std::future::pending(),
        ));
        let admin = Client::new(&cp_url, &opened.new_admin_token.unwrap());
        let node_token = admin.enrolment_token("bench", None).await.unwrap().token;
        let mut node_config = NodeConfig::new("bench", &cp_url, &node_token);
        node_config.runtime.cache_dir = Some(dir.path().join("compiled"));
        let node = EdgeNode::start(node_config).await.unwrap();
        node.wait_ready(Duration::from_secs(30)).await.unwrap();
        let counter = admin
            .upload_module(latchkey_examples::COUNTER.to_vec())
            .await
            .unwrap()
            .content_id;
        admin.deploy("counter", &counter, None).await.unwrap();
        let token = admin
            .mint(&MintRequest {
                actor_type: Some("counter".into()),
                rights: Some(vec!["invoke".into()]),
                ..MintRequest::default()
            })
            .await
            .unwrap()
            .token;
        Bench {
            admin,
            node,
            counter,
            token,
            _dir: dir,
        }
    }
}

/// Runs `bench` on a 2-thread runtime when cargo runs this target as a benchmark (`cargo bench`
/// passes `--bench`); under `cargo test` it only says how to get figures.
pub fn main<F: Future<Output = ()>>(name: &str, bench: impl FnOnce() -> F) {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p latchkey-edge-node --bench {name}` for figures");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

/// An in-process call of the counter's `get` on actor `key`.
pub fn get(token: &str, key: String) -> CallRequest {
    CallRequest {
        actor_type: "counter".into(),
        key,
        method: "get".into(),
        payload: Bytes::new(),
        token: Bytes::copy_from_slice(token.as_bytes()),
        presenter: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        forwarded: false,
    }
}
