//! Hot upgrade benchmark: `cargo bench -p latchkey-edge-node --bench upgrade` activates 1,000
//! counters on one edge node (real control plane on loopback), then deploys another version and
//! prints how long until all 1,000 live activations have switched, with and without callers,
//! and the latency of the calls made while they switch against the same load before the deploy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_edge_node::{EdgeNode, Router};

mod support;

const ACTORS: usize = 1_000;
const CALLERS: usize = 16;
const ROUNDS: usize = 5;

fn main() {
    support::main("upgrade", run);
}

/// Closed-loop callers over the 1,000 counters, timing every call.
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    callers: Vec<tokio::task::JoinHandle<Vec<(Instant, Duration)>>>,
}

impl Load {
    fn start(node: &Arc<Router>, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let callers = (0..CALLERS)
            .map(|c| {
                let (node, token, stop, failed) = (
                    Arc::clone(node),
                    token.to_owned(),
                    Arc::clone(&stop),
                    Arc::clone(&failed),
                );
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    let mut key = c;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        if node
                            .call(support::get(&token, &format!("u{}", key % ACTORS)))
                            .await
                            .is_err()
                        {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        samples.push((started, started.elapsed()));
                        key += CALLERS;
                    }
                    samples
                })
            })
            .collect();
        Load {
            stop,
            failed,
            callers,
        }
    }

    /// Stops the callers; every call's (start, latency) and the number of failed calls.
    async fn finish(self) -> (Vec<(Instant, Duration)>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for caller in self.callers {
            all.extend(caller.await.unwrap());
        }
        (all, self.failed.load(Ordering::Relaxed))
    }
}

fn percentiles(mut latencies: Vec<Duration>) -> String {
    if latencies.is_empty() {
        return "no calls".into();
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    format!(
        "{} calls, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    )
}

/// Deploys `version` and waits until the node has made `switches` switches in all; the time it
/// took, from just before the deploy request.
async fn switch(bench: &support::Bench, version: &str, switches: u64) -> (Instant, Duration) {
    let started = Instant::now();
    bench.admin.deploy("counter", version, None).await.unwrap();
    while bench.node.switches() < switches {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the switch did not finish: {} of {switches} switches",
            bench.node.switches()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (started, started.elapsed())
}

async fn run() {
    let bench = support::Bench::start().await;
    let node: &EdgeNode = &bench.node;
    let v2 = bench
        .admin
        .upload_module(latchkey_examples::COUNTER_V2.to_vec())
        .await
        .unwrap()
        .content_id;
    for key in 0..ACTORS {
        node.router()
            .call(support::get(&bench.token, &format!("u{key}")))
            .await
            .unwrap();
    }
    assert_eq!(node.local_activations(), ACTORS);
    // Compile both versions once, outside the measurement (a real deploy compiles when the node
    // hears of it, before any activation switches).
    let mut expected = 0;
    for version in [&v2, &bench.counter] {
        expected += ACTORS as u64;
        switch(&bench, version, expected).await;
    }

    let mut idle = Vec::new();
    let mut loaded = Vec::new();
    let mut baseline = Vec::new();
    let mut during = Vec::new();
    let mut failed = 0;
    // Each deploy names the version the actors are not running.
    let versions = [&v2, &bench.counter];
    for _ in 0..ROUNDS {
        // Without callers.
        expected += ACTORS as u64;
        idle.push(switch(&bench, versions[0], expected).await.1);
        // With callers: a second of calls before the deploy, then the deploy.
        let load = Load::start(node.router(), &bench.token);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = Instant::now();
        expected += ACTORS as u64;
        let (started, took) = switch(&bench, versions[1], expected).await;
        loaded.push(took);
        let (samples, failures) = load.finish().await;
        failed += failures;
        let window = started..started + took;
        for (at, latency) in samples {
            if window.contains(&at) {
                during.push(latency);
            } else if at < before {
                baseline.push(latency);
            }
        }
    }
    idle.sort();
    loaded.sort();
    println!("{ACTORS} live activations on one node switching versions, {ROUNDS} rounds each:");
    println!(
        "- all switched, no callers: median {:.0?} (min {:.0?}, max {:.0?}) = {:.0} switches/s",
        idle[ROUNDS / 2],
        idle[0],
        idle[ROUNDS - 1],
        ACTORS as f64 / idle[ROUNDS / 2].as_secs_f64()
    );
    println!(
        "- all switched, {CALLERS} callers calling `get` meanwhile: median {:.0?} (min {:.0?}, max {:.0?})",
        loaded[ROUNDS / 2],
        loaded[0],
        loaded[ROUNDS - 1]
    );
    println!(
        "- call latency before the deploys: {}",
        percentiles(baseline)
    );
    println!(
        "- call latency during the switches: {}",
        percentiles(during)
    );
    println!("- failed calls: {failed}");
    bench.node.shutdown().await;
}
