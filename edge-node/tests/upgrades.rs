//! Hot upgrades end to end: live activations switch versions between calls under load without
//! failing a call or losing a count; a trapping version is rolled back by itself; a canary
//! touches only its bucket; a failing upgrade hook keeps the old version; a removed deployment
//! ends its live actors.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use latchkey_examples::{COUNTER, COUNTER_FAILING_UPGRADE, COUNTER_V2, COUNTER_V3};
use latchkey_test_kit::{Cluster, call_url, eventually_within, json};
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{DeploymentDetail, RollbackPolicy};
use latchkey_wire::canary::{basis_points, in_canary};
use serde_json::json;
use tokio::task::JoinHandle;

/// Uploads `component` and returns its content id (without deploying it).
async fn upload(c: &Cluster, component: &[u8]) -> String {
    c.cp.admin
        .upload_module(component.to_vec())
        .await
        .unwrap()
        .content_id
}

async fn deployment(c: &Cluster) -> DeploymentDetail {
    c.cp.admin.deployment("counter").await.unwrap()
}

fn switches(c: &Cluster) -> u64 {
    c.nodes.iter().map(|n| n.switches()).sum()
}

/// `(release, code_version)` of the version `key` runs, asked through node `node`.
async fn version(c: &Cluster, token: &str, node: usize, key: &str) -> (String, String) {
    let v = json(c.call(node, token, "counter", key, "version", "").await);
    (
        v["release"].as_str().unwrap().to_owned(),
        v["code_version"].as_str().unwrap().to_owned(),
    )
}

/// What one load worker saw.
#[derive(Default)]
struct Tally {
    /// Successful `inc`s per key.
    counts: HashMap<String, u64>,
    /// Every failed call, described.
    failures: Vec<String>,
}

/// Clients incrementing counters through every node of a cluster, each key owned by one worker
/// (so its expected value is known exactly), alternating nodes call by call.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    workers: Vec<JoinHandle<Tally>>,
}

impl Load {
    fn start(c: &Cluster, token: &str, keys: &[String], workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let urls: Vec<String> = (0..c.nodes.len()).map(|i| c.node_url(i)).collect();
        let workers = (0..workers)
            .map(|w| {
                let mine: Vec<String> = keys.iter().skip(w).step_by(workers).cloned().collect();
                let (stop, calls, urls, token) =
                    (stop.clone(), calls.clone(), urls.clone(), token.to_owned());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut round = w;
                    while !stop.load(Ordering::Relaxed) {
                        for key in &mine {
                            round += 1;
                            let url = &urls[round % urls.len()];
                            let answer =
                                call_url(url, &token, "counter", key, "inc", Vec::new()).await;
                            calls.fetch_add(1, Ordering::Relaxed);
                            let count = tally.counts.entry(key.clone()).or_default();
                            match answer {
                                Ok(body) => {
                                    *count += 1;
                                    let n: u64 = serde_json::from_slice(&body).unwrap();
                                    if n != *count {
                                        tally.failures.push(format!(
                                            "{key} counted {n} after {count} increments"
                                        ));
                                    }
                                }
                                Err(e) => tally.failures.push(format!("{key} via {url}: {e}")),
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        Load {
            stop,
            calls,
            workers,
        }
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Tally::default();
        for worker in self.workers {
            let tally = worker.await.unwrap();
            all.counts.extend(tally.counts);
            all.failures.extend(tally.failures);
        }
        all
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_under_load_fails_no_call_and_every_counter_continues() {
    const KEYS: usize = 128;
    let c = Cluster::start(2, |_| {}).await;
    let v1 = c.deploy("counter", COUNTER).await;
    let v2 = upload(&c, COUNTER_V2).await;
    let token = c.invoke_token("counter").await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key-{i}")).collect();

    let load = Load::start(&c, &token, &keys, 16);
    eventually_within("every key activated", 30, || async {
        let live: usize = c.nodes.iter().map(|n| n.local_activations()).sum();
        (live == KEYS).then_some(())
    })
    .await;
    assert!(
        c.nodes.iter().all(|n| n.local_activations() > 0),
        "the load reaches actors on both nodes"
    );

    let calls_at_deploy = load.calls();
    c.cp.admin.deploy("counter", &v2, Some("v2")).await.unwrap();
    eventually_within("every live activation switched to v2", 30, || async {
        (switches(&c) == KEYS as u64).then_some(())
    })
    .await;
    let calls_at_switch = load.calls();
    eventually_within("more calls on v2", 30, || async {
        (load.calls() >= calls_at_switch + 2 * KEYS as u64).then_some(())
    })
    .await;
    let tally = load.finish().await;

    assert!(
        tally.failures.is_empty(),
        "{} calls failed during the deploy, e.g. {:?}",
        tally.failures.len(),
        &tally.failures[..tally.failures.len().min(5)]
    );
    assert!(
        calls_at_switch > calls_at_deploy,
        "calls ran while activations switched"
    );
    for (i, key) in keys.iter().enumerate() {
        let expected = tally.counts[key];
        assert!(expected > 1, "{key} was called before and after the deploy");
        assert_eq!(
            json(c.call(i % 2, &token, "counter", key, "get", "").await),
            json!(expected),
            "{key} continues exactly where it was"
        );
        assert_eq!(
            version(&c, &token, i % 2, key).await,
            ("v2".to_owned(), v2.clone())
        );
        assert_eq!(
            json(
                c.call(i % 2, &token, "counter", key, "upgraded_from", "")
                    .await
            ),
            json!(v1),
            "{key}'s upgrade hook ran once, inside the switch"
        );
    }
    assert_eq!(switches(&c), KEYS as u64, "no activation switched twice");
    assert_eq!(
        version(&c, &token, 0, "brand-new").await,
        ("v2".to_owned(), v2.clone()),
        "a new actor starts on the new version"
    );
    assert_eq!(
        json(
            c.call(0, &token, "counter", "brand-new", "upgraded_from", "")
                .await
        ),
        json!(null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_version_is_rolled_back_within_the_window_and_keeps_v2_state() {
    const KEYS: usize = 20;
    let policy = RollbackPolicy {
        max_error_rate: 0.25,
        window_secs: 30,
        min_calls: 20,
    };
    let c = Cluster::start(2, |_| {}).await;
    c.deploy("counter", COUNTER).await;
    c.cp.admin.set_policy("counter", &policy).await.unwrap();
    let v2 = c.deploy("counter", COUNTER_V2).await;
    let v3 = upload(&c, COUNTER_V3).await;
    let token = c.invoke_token("counter").await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    let mut expected: HashMap<&str, u64> = HashMap::new();
    for round in 0..3 {
        for (i, key) in keys.iter().enumerate() {
            let n = json(
                c.call((i + round) % 2, &token, "counter", key, "inc", "")
                    .await,
            );
            *expected.entry(key).or_default() += 1;
            assert_eq!(n, json!(expected[key.as_str()]));
        }
    }

    c.cp.admin.deploy("counter", &v3, Some("v3")).await.unwrap();
    let deployed = tokio::time::Instant::now();
    let mut traps = 0u64;
    let mut streak = 0usize;
    // Keep calling until the rollback is in force: two full rounds of calls succeed on v2.
    for i in 0usize.. {
        assert!(
            deployed.elapsed() < Duration::from_secs(60),
            "v3 was not rolled back within 60 s ({traps} traps so far)"
        );
        let key = &keys[i % KEYS];
        match c.call(i % 2, &token, "counter", key, "inc", "").await {
            Ok(body) => {
                let count = expected.get_mut(key.as_str()).unwrap();
                *count += 1;
                assert_eq!(serde_json::from_slice::<u64>(&body).unwrap(), *count);
                streak += 1;
            }
            Err(e) => {
                assert_eq!(e.code, ErrorCode::Trapped, "{e}");
                assert!(e.message.contains("release v3 cannot count"), "{e}");
                traps += 1;
                streak = 0;
            }
        }
        if streak >= 2 * KEYS && traps > 0 {
            break;
        }
    }
    let elapsed = deployed.elapsed();
    assert!(
        elapsed < Duration::from_secs(policy.window_secs),
        "rolled back after {elapsed:?}, outside the {} s window",
        policy.window_secs
    );

    let detail = deployment(&c).await;
    assert_eq!(detail.deployment.active.as_deref(), Some(v2.as_str()));
    let last = &detail.history[0];
    assert_eq!(last.action, "auto-rollback");
    assert_eq!(last.from.as_deref(), Some(v3.as_str()));
    assert_eq!(last.version.as_deref(), Some(v2.as_str()));
    let reason = last.reason.as_deref().unwrap();
    assert!(
        reason.contains(&v3) && reason.contains("traps") && reason.contains("25.0%"),
        "the history says why: {reason}"
    );
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            json(c.call(i % 2, &token, "counter", key, "get", "").await),
            json!(expected[key.as_str()]),
            "{key} kept every count v2 stored"
        );
        assert_eq!(version(&c, &token, i % 2, key).await.0, "v2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_touches_only_its_bucket_and_abort_returns_it() {
    const KEYS: usize = 200;
    let c = Cluster::start(1, |_| {}).await;
    let v1 = c.deploy("counter", COUNTER).await;
    let v2 = upload(&c, COUNTER_V2).await;
    let token = c.invoke_token("counter").await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("user-{i}")).collect();
    for key in &keys {
        assert_eq!(
            json(c.call(0, &token, "counter", key, "inc", "").await),
            json!(1)
        );
    }
    let bucket = basis_points(10.0).unwrap();
    let canaried: Vec<&String> = keys
        .iter()
        .filter(|k| in_canary("counter", k, bucket))
        .collect();
    assert!(
        (5..=40).contains(&canaried.len()),
        "about 10% of keys: {}",
        canaried.len()
    );

    c.cp.admin.canary("counter", &v2, 10.0).await.unwrap();
    eventually_within("the canary's keys switched", 30, || async {
        (switches(&c) == canaried.len() as u64).then_some(())
    })
    .await;
    for key in &keys {
        let expected = if in_canary("counter", key, bucket) {
            &v2
        } else {
            &v1
        };
        assert_eq!(&version(&c, &token, 0, key).await.1, expected, "{key}");
    }
    // New actors follow their bucket too.
    let fresh: Vec<String> = (0..100).map(|i| format!("new-{i}")).collect();
    let mut fresh_canaried = 0u64;
    for key in &fresh {
        let inside = in_canary("counter", key, bucket);
        fresh_canaried += u64::from(inside);
        let expected = if inside { &v2 } else { &v1 };
        assert_eq!(&version(&c, &token, 0, key).await.1, expected, "{key}");
    }
    assert_eq!(
        switches(&c),
        canaried.len() as u64,
        "only the canary's keys switched"
    );

    c.cp.admin
        .deployment_action("counter", "abort", Some("test"))
        .await
        .unwrap();
    let back = 2 * canaried.len() as u64 + fresh_canaried;
    eventually_within("the canary's keys switched back", 30, || async {
        (switches(&c) == back).then_some(())
    })
    .await;
    for key in keys.iter().chain(&fresh) {
        assert_eq!(version(&c, &token, 0, key).await.1, v1, "{key}");
    }
    for key in &keys {
        assert_eq!(
            json(c.call(0, &token, "counter", key, "get", "").await),
            json!(1),
            "{key} kept its count through the canary"
        );
    }
    assert_eq!(
        deployment(&c).await.history[0].action,
        "abort",
        "the history records the abort"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upgrade_hook_keeps_the_old_version_and_counts_against_the_new() {
    const KEYS: usize = 10;
    let c = Cluster::start(1, |_| {}).await;
    let v1 = c.deploy("counter", COUNTER).await;
    c.cp.admin
        .set_policy(
            "counter",
            &RollbackPolicy {
                max_error_rate: 0.5,
                window_secs: 60,
                min_calls: KEYS as u64,
            },
        )
        .await
        .unwrap();
    let token = c.invoke_token("counter").await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    for key in &keys {
        c.call(0, &token, "counter", key, "inc", "").await.unwrap();
    }
    let failing = upload(&c, COUNTER_FAILING_UPGRADE).await;
    c.cp.admin.deploy("counter", &failing, None).await.unwrap();

    // Every live actor tries, fails and stays on v1; the failures roll the version back.
    let detail = eventually_within("the failing version rolled back", 30, || async {
        let detail = deployment(&c).await;
        (detail.deployment.active.as_deref() == Some(v1.as_str())).then_some(detail)
    })
    .await;
    let reason = detail.history[0].reason.clone().unwrap();
    assert_eq!(detail.history[0].action, "auto-rollback");
    assert!(
        reason.contains(&format!("{KEYS} failed upgrades")),
        "{reason}"
    );
    assert_eq!(c.nodes[0].switches(), 0, "no actor left v1");
    for key in &keys {
        assert_eq!(
            version(&c, &token, 0, key).await,
            ("v1".to_owned(), v1.clone())
        );
        assert_eq!(
            json(c.call(0, &token, "counter", key, "get", "").await),
            json!(1)
        );
        assert_eq!(
            json(c.call(0, &token, "counter", key, "upgraded_from", "").await),
            json!(null),
            "the failed hook's writes were not committed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_deployment_ends_live_actors_and_a_new_one_resumes_their_state() {
    let c = Cluster::start(1, |_| {}).await;
    c.deploy("counter", COUNTER).await;
    let token = c.invoke_token("counter").await;
    let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    for key in &keys {
        for _ in 0..3 {
            json(c.call(0, &token, "counter", key, "inc", "").await);
        }
    }
    c.cp.admin
        .remove_deployment("counter", Some("test"))
        .await
        .unwrap();
    // Every actor was live on the node: only the node ending its activations stops them from
    // answering (the node serves a live activation without asking the control plane).
    for key in &keys {
        let e = eventually_within("the live activation to end", 30, || async {
            c.call(0, &token, "counter", key, "get", "").await.err()
        })
        .await;
        assert_eq!(e.code, ErrorCode::NotFound, "{key}: {e}");
        assert!(
            e.message.contains("no longer deployed") || e.message.contains("no deployed version"),
            "{key}: {e}"
        );
    }
    // Deployed again (new code): the actors resume their stored counts.
    let v2 = c.deploy("counter", COUNTER_V2).await;
    for key in &keys {
        assert_eq!(
            json(c.call(0, &token, "counter", key, "get", "").await),
            json!(3),
            "{key} kept its state"
        );
        assert_eq!(version(&c, &token, 0, key).await.1, v2, "{key}");
    }
}
