//! Group `warm`: warm invokes in process (token check, routing, mailbox, lease check, wasmtime;
//! no HTTP) on 1, 10 and 10,000 actors, against the floor of the same guest call made directly
//! on a live instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_edge_node::Router;

use crate::cluster::{Cluster, Options, call};
use crate::report::{Row, Table, count, percentiles};

/// How long each figure is measured.
pub(crate) const MEASURE: Duration = Duration::from_secs(3);

/// Warm invokes per second the node must reach (issue #7).
const TARGET: f64 = 1_000_000.0;

pub(crate) async fn warm(table: &mut Table) {
    let cluster = Cluster::start(Options::default()).await;
    let node = cluster.router();
    let floor = floor(node, &cluster.token).await;
    let floor_text = format!("{}/s (direct guest call, 2 instances)", count(floor));
    for (actors, callers) in [(1usize, 1usize), (1, 16), (10, 16), (10_000, 64)] {
        let r = run(node, &cluster.token, actors, callers, MEASURE).await;
        let row = Row::new(
            format!(
                "warm invoke `get`, {} actor(s), {callers} callers",
                count(actors as f64)
            ),
            format!("{}/s", count(r.rate)),
        )
        .latency(r.p50, r.p99)
        .floor(floor_text.clone());
        // One actor runs one call at a time by design (one core at most): the target is for
        // many actors.
        table.push(if actors > 1 {
            row.target("≥ 1,000,000/s", r.rate >= TARGET)
        } else {
            row
        });
    }
    cluster.stop().await;
}

/// Warm-invoke throughput and latency.
pub(crate) struct Rate {
    pub(crate) rate: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

/// `callers` tasks loop over `actors` counters (activated first) for `measure`; every 16th call
/// of each is timed.
pub(crate) async fn run(
    node: &Arc<Router>,
    token: &str,
    actors: usize,
    callers: usize,
    measure: Duration,
) -> Rate {
    for a in 0..actors {
        node.call(call(token, format!("a{a}"), "get"))
            .await
            .expect("activation");
    }
    let keys: Vec<String> = (0..actors).map(|a| format!("a{a}")).collect();
    drive(node, token, Arc::new(keys), "get", callers, measure, 16).await
}

/// `callers` tasks call `method` for `measure`, caller `t`'s `n`th call on
/// `keys[(t + n * callers) % keys.len()]` (so callers spread over the keys, and with as many
/// callers as keys each keeps to its own); every `sample_every`th call of each is timed.
pub(crate) async fn drive(
    node: &Arc<Router>,
    token: &str,
    keys: Arc<Vec<String>>,
    method: &'static str,
    callers: usize,
    measure: Duration,
    sample_every: u64,
) -> Rate {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|t| {
            let (node, token, keys) = (Arc::clone(node), token.to_owned(), Arc::clone(&keys));
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t0 = n.is_multiple_of(sample_every).then(Instant::now);
                    let key = &keys[(t + n as usize * callers) % keys.len()];
                    node.call(call(&token, key.clone(), method))
                        .await
                        .expect("call under load");
                    if let Some(t0) = t0 {
                        samples.push(t0.elapsed());
                    }
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
                samples
            })
        })
        .collect();
    tokio::time::sleep(measure).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("caller task"));
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut samples);
    Rate { rate, p50, p99 }
}

/// The floor: the counter's `get` called directly on two live instances, one per core.
async fn floor(node: &Arc<Router>, token: &str) -> f64 {
    const CALLS: usize = 1_000_000;
    for key in ["floor0", "floor1"] {
        node.call(call(token, key.into(), "get"))
            .await
            .expect("activation");
    }
    let started = Instant::now();
    let tasks: Vec<_> = ["floor0", "floor1"]
        .into_iter()
        .map(|key| {
            let node = Arc::clone(node);
            tokio::spawn(async move {
                latchkey_edge_node::floor::guest_calls(&node, "counter", key, "get", CALLS)
                    .await
                    .expect("floor calls")
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("floor task");
    }
    (2 * CALLS) as f64 / started.elapsed().as_secs_f64()
}
