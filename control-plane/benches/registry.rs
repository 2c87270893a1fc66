//! Registry benchmark: `cargo bench -p latchkey-control-plane --bench registry` prints
//! ensure-activation/s (placing new actors, and finding live ones) and fenced commits/s on the
//! embedded store, with group commit and with one durable commit per transaction (ablation),
//! next to raw redb figures measured in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_control_plane::registry::deployments::DeployOp;
use latchkey_control_plane::{Limits, Registry};
use latchkey_store::{CommitMode, EmbeddedStore, EngineOptions, Store};
use latchkey_wire::lease::LeaseSettings;
use latchkey_wire::node::{
    Activation, CommitRequest, EnsureActivationRequest, RegisterRequest, StateWrite,
};

/// Commit sequence numbers, increasing across the whole test process (so per activation too).
fn next_seq() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

const MEASURE: Duration = Duration::from_secs(3);
/// Client threads (override with `LATCHKEY_BENCH_THREADS`).
fn threads() -> usize {
    std::env::var("LATCHKEY_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(64)
}

fn registry(dir: &std::path::Path, mode: CommitMode) -> Arc<Registry> {
    let options = EngineOptions {
        commit_mode: mode,
        ..EngineOptions::default()
    };
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open_with(dir.join("bench.redb"), &options).unwrap());
    let settings = LeaseSettings {
        min_heartbeats: 1,
        ..LeaseSettings::default()
    };
    let r = Arc::new(Registry::new(store, settings, Limits::default()));
    r.register(
        "bench",
        &RegisterRequest {
            region: "eu".into(),
            address: "x:1".into(),
        },
    )
    .unwrap();
    r.heartbeat("bench").unwrap();
    r
}

/// `LATCHKEY_BENCH_ONLY=<substring>` measures only matching rows (for profiling one phase).
fn wanted(name: &str) -> bool {
    std::env::var("LATCHKEY_BENCH_ONLY").map_or(true, |only| name.contains(&only))
}

/// Runs `op(thread, i)` on `threads()` threads for `MEASURE`, returning operations per second.
fn throughput(name: &str, op: impl Fn(usize, u64) + Sync) -> f64 {
    if !wanted(name) {
        return f64::NAN;
    }
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads() {
            let (op, done, stop) = (&op, &done, &stop);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op(t, i);
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(MEASURE);
        stop.store(true, Ordering::Relaxed);
    });
    done.into_inner() as f64 / started.elapsed().as_secs_f64()
}

fn ensure(r: &Registry, key: &str) -> Activation {
    r.ensure_activation(
        "bench",
        &EnsureActivationRequest::any_region("counter", key),
    )
    .unwrap()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p latchkey-control-plane --bench registry` for figures");
        return;
    }
    println!(
        "| measure ({} threads, {MEASURE:?} each) | group commit | one commit per transaction | ratio |",
        threads()
    );
    println!("|---|---:|---:|---:|");
    let mut rows: Vec<(&str, [f64; 2])> = vec![
        ("ensure-activation, new actor (placement)", [0.0; 2]),
        ("ensure-activation, live actor (lookup)", [0.0; 2]),
        ("fenced commit, 1 key, 1,000 actors", [0.0; 2]),
    ];
    // `LATCHKEY_BENCH_MODE=grouped|inline` runs one column only (for profiling).
    let only_mode = std::env::var("LATCHKEY_BENCH_MODE").ok();
    for (col, mode) in [CommitMode::Grouped { max_batch: 1024 }, CommitMode::Inline]
        .into_iter()
        .enumerate()
    {
        let name = ["grouped", "inline"][col];
        if only_mode.as_deref().is_some_and(|m| m != name) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path(), mode);
        let module = r.put_module(&test_component()).unwrap();
        r.change_deployment("counter", &DeployOp::Deploy(module.content_id), None)
            .unwrap();
        let keepalive = AtomicBool::new(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                while keepalive.load(Ordering::Relaxed) {
                    r.heartbeat("bench").unwrap();
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
            rows[0].1[col] = throughput(rows[0].0, |t, i| {
                ensure(&r, &format!("new-{t}-{i}"));
            });
            let live: Vec<Activation> = (0..1000)
                .map(|i| ensure(&r, &format!("live-{i}")))
                .collect();
            rows[1].1[col] = throughput(rows[1].0, |t, i| {
                let _ = ensure(&r, &live[(t * 7919 + i as usize) % live.len()].key);
            });
            rows[2].1[col] = throughput(rows[2].0, |t, i| {
                // Each thread owns a slice of the actors, as one activation runs one call at a time.
                let n = threads();
                let act = &live[(t + n * (i as usize % (1000 / n).max(1))) % live.len()];
                r.commit_state(
                    "bench",
                    &CommitRequest {
                        seq: next_seq(),
                        fence: act.fence(),
                        writes: vec![StateWrite::Put(b"count".to_vec(), i.to_le_bytes().to_vec())],
                        alarms: Vec::new(),
                    },
                )
                .unwrap();
            });
            keepalive.store(false, Ordering::Relaxed);
        });
    }
    for (name, [grouped, inline]) in rows {
        println!(
            "| {name} | {grouped:.0}/s | {inline:.0}/s | {:.1}x |",
            grouped / inline
        );
    }
    if wanted("cpu cost") {
        cpu_cost();
    }
    if wanted("redb floor") {
        floor_redb();
    }
}

/// The CPU cost of the registry's side of a fenced commit, without I/O: one thread, the memory
/// store with inline commits.
fn cpu_cost() {
    use latchkey_store::MemoryStore;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::volatile_with(&EngineOptions {
        commit_mode: CommitMode::Inline,
        ..EngineOptions::default()
    }));
    let settings = LeaseSettings {
        min_heartbeats: 1,
        ..LeaseSettings::default()
    };
    let r = Registry::new(store, settings, Limits::default());
    r.register(
        "bench",
        &RegisterRequest {
            region: "eu".into(),
            address: "x:1".into(),
        },
    )
    .unwrap();
    r.heartbeat("bench").unwrap();
    let module = r.put_module(&test_component()).unwrap();
    r.change_deployment("counter", &DeployOp::Deploy(module.content_id), None)
        .unwrap();
    let acts: Vec<Activation> = (0..1000).map(|i| ensure(&r, &format!("k{i}"))).collect();
    let n = 200_000u64;
    let started = Instant::now();
    for i in 0..n {
        r.commit_state(
            "bench",
            &CommitRequest {
                seq: next_seq(),
                fence: acts[(i % 1000) as usize].fence(),
                writes: vec![StateWrite::Put(b"count".to_vec(), i.to_le_bytes().to_vec())],
                alarms: Vec::new(),
            },
        )
        .unwrap();
    }
    let per = started.elapsed() / n as u32;
    println!();
    println!("| CPU cost, memory store, inline, 1 thread | per operation |");
    println!("|---|---:|");
    println!("| fenced commit (read 2 records, check, write 1 key) | {per:.2?} |");
}

/// The smallest valid actor component: stub code for the actor world, built in-process.
fn test_component() -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
    use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};
    let mut resolve = Resolve::default();
    let pkg = resolve
        .push_str("actor.wit", include_str!("../../actor-sdk/wit/actor.wit"))
        .unwrap();
    let world = resolve.select_world(&[pkg], Some("actor")).unwrap();
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

/// redb alone, in the same run: single-insert commits and 100-insert transactions.
fn floor_redb() {
    use redb::{Database, TableDefinition};
    const T: TableDefinition<'_, u64, u64> = TableDefinition::new("t");
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("floor.redb")).unwrap();
    let measure = |per_tx: u64| {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < MEASURE {
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(T).unwrap();
                for _ in 0..per_tx {
                    t.insert(n, n).unwrap();
                    n += 1;
                }
            }
            tx.commit().unwrap();
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    println!();
    println!("| floor: redb alone, 1 thread | inserts/s |");
    println!("|---|---:|");
    println!("| 1 insert per transaction | {:.0} |", measure(1));
    println!("| 100 inserts per transaction | {:.0} |", measure(100));
}
