//! What the edge node benchmarks share: a real control plane (embedded store) and one edge node
//! on loopback, in this process (the test kit's cluster), with the counter deployed and a token
//! to invoke it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;

use latchkey_edge_node::{CallRequest, EdgeNode, NodeConfig};
use latchkey_test_kit::Cluster;
use latchkey_wire::client::Client;

pub struct Bench {
    pub admin: Client,
    pub node: EdgeNode,
    /// Content id of the deployed counter.
    pub counter: String,
    /// Invokes any counter.
    pub token: String,
    _cluster: Cluster,
}

impl Bench {
    pub async fn start() -> Bench {
        let mut cluster = Cluster::start_with(
            0,
            |config| {
                config.lease.min_heartbeats = 1;
                config.lease.heartbeat_interval_ms = 200;
            },
            |_| {},
        )
        .await;
        // One node alone in this process: the default pools, not the test kit's small ones.
        cluster
            .add_node("bench", |config| {
                let defaults = NodeConfig::new("", "", "");
                config.max_activations = defaults.max_activations;
                config.runtime.max_instances = defaults.runtime.max_instances;
            })
            .await;
        let counter = cluster.deploy("counter", latchkey_examples::COUNTER).await;
        let token = cluster.invoke_token("counter").await;
        Bench {
            admin: cluster.cp.admin.clone(),
            node: cluster.nodes.pop().expect("the bench node"),
            counter,
            token,
            _cluster: cluster,
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
pub fn get(token: &str, key: &str) -> CallRequest {
    latchkey_test_kit::cluster::in_process("counter", key, "get", token)
}
