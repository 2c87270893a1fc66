//! Group `cold`: create-then-invoke — the first call of a new key, whose activation is placed by
//! the control plane and instantiated from the already-compiled module — on the memory store and
//! on the embedded store. The floor is the control plane's own round trip for the placement.

use std::time::{Duration, Instant};

use latchkey_store::CommitMode;
use latchkey_wire::node::EnsureActivationRequest;

use crate::cluster::{Cluster, Options, StoreKind, call};
use crate::report::{Row, Table, count, micros, percentiles};

pub(crate) async fn create_then_invoke(table: &mut Table) {
    for (store, calls, target) in [
        (StoreKind::Memory, 5_000, Duration::from_micros(75)),
        (StoreKind::Embedded, 2_000, Duration::from_millis(2)),
    ] {
        // Each store as `StoreSpec` opens it: the volatile memory store commits inline.
        let commit_mode = match store {
            StoreKind::Memory => CommitMode::Inline,
            StoreKind::Embedded => Options::default().commit_mode,
        };
        let cluster = Cluster::start(Options {
            store,
            commit_mode,
            ..Options::default()
        })
        .await;
        let node = cluster.router();
        // Warm up: the module compiled and the connection to the control plane open.
        node.call(call(&cluster.token, "warmup".into(), "get"))
            .await
            .expect("first call");
        let mut samples = Vec::with_capacity(calls);
        let started = Instant::now();
        for i in 0..calls {
            let t0 = Instant::now();
            node.call(call(&cluster.token, format!("new-{i}"), "get"))
                .await
                .expect("create-then-invoke");
            samples.push(t0.elapsed());
        }
        let rate = calls as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = percentiles(&mut samples);
        // The floor: the node's placement request alone (HTTP to the control plane and its
        // transaction), for new keys, made the way the node makes it.
        let client = cluster.node_client("bench").await;
        let mut placements = Vec::with_capacity(1_000);
        for i in 0..1_000 {
            let request = EnsureActivationRequest {
                actor_type: "counter".into(),
                key: format!("floor-{i}"),
                region_hint: None,
                token_id: None,
            };
            let t0 = Instant::now();
            client
                .ensure_activation("bench", &request)
                .await
                .expect("placement");
            placements.push(t0.elapsed());
        }
        let (placement_p50, _) = percentiles(&mut placements);
        let name = match store {
            StoreKind::Memory => "memory",
            StoreKind::Embedded => "embedded",
        };
        table.push(
            Row::new(
                format!("create-then-invoke `get`, {name} store, 1 caller"),
                format!("{}/s", count(rate)),
            )
            .latency(p50, p99)
            .floor(format!(
                "placement request alone p50 {}; instantiate ~4 µs (notes)",
                micros(placement_p50)
            ))
            .target(format!("p50 ≤ {}", micros(target)), p50 <= target),
        );
        cluster.stop().await;
    }
}
