//! Group `durable`: counter increments across 1,000 keys, each a call whose write is committed
//! (fenced, through the control plane, on the embedded store) before it answers; with group
//! commit, and with the one-durable-commit-per-call ablation. The floor is redb alone, in
//! transactions of 1 and of 100 inserts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_store::{CommitMode, EngineOptions};

use crate::cluster::{Cluster, Options, StoreKind, call};
use crate::invoke::drive;
use crate::report::{Row, Table, count};

const KEYS: usize = 1_000;
const MEASURE: Duration = Duration::from_secs(4);

pub(crate) async fn increments(table: &mut Table) {
    let floors = tokio::task::spawn_blocking(|| (redb_floor(1), redb_floor(100)))
        .await
        .expect("floor task");
    let floor_text = format!(
        "redb alone: {}/s (1 per tx), {}/s (100 per tx)",
        count(floors.0),
        count(floors.1)
    );
    let mut rates = Vec::new();
    for mode in [EngineOptions::default().commit_mode, CommitMode::Inline] {
        // The ablation: no batching anywhere, one request and one durable transaction per call.
        let max_commit_batch = match mode {
            CommitMode::Inline => 1,
            CommitMode::Grouped { .. } => Options::default().max_commit_batch,
        };
        let cluster = Cluster::start(Options {
            store: StoreKind::Embedded,
            commit_mode: mode,
            max_commit_batch,
            ..Options::default()
        })
        .await;
        let (rate, p50, p99) = run(&cluster).await;
        rates.push(rate);
        let row = match mode {
            CommitMode::Inline => Row::new(
                "durable `inc`, 1,000 keys, one commit per call (ablation)",
                format!("{}/s", count(rate)),
            )
            .latency(p50, p99)
            .floor(floor_text.clone()),
            CommitMode::Grouped { .. } => Row::new(
                "durable `inc`, 1,000 keys, group commit (node batches, store group commit)",
                format!("{}/s", count(rate)),
            )
            .latency(p50, p99)
            .floor(floor_text.clone())
            .target("≥ 50,000/s", rate >= 50_000.0),
        };
        table.push(row);
        cluster.stop().await;
    }
    let ratio = rates[0] / rates[1].max(1.0);
    table.push(
        Row::new("group commit ÷ per-call commits", format!("{ratio:.1}×"))
            .target("≥ 5×", ratio >= 5.0),
    );
}

/// One caller per key, each incrementing its counter in a loop; every 8th call is timed.
async fn run(cluster: &Cluster) -> (f64, Duration, Duration) {
    let node = cluster.router();
    let keys: Vec<String> = (0..KEYS).map(|k| format!("d{k}")).collect();
    for key in &keys {
        node.call(call(&cluster.token, key.clone(), "get"))
            .await
            .expect("activation");
    }
    let r = drive(
        node,
        &cluster.token,
        Arc::new(keys),
        "inc",
        KEYS,
        MEASURE,
        8,
    )
    .await;
    (r.rate, r.p50, r.p99)
}

/// redb alone: inserts per second in transactions of `per_tx`, one thread, default durability.
fn redb_floor(per_tx: u64) -> f64 {
    use redb::{Database, TableDefinition};
    const T: TableDefinition<'_, u64, u64> = TableDefinition::new("t");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::create(dir.path().join("floor.redb")).expect("redb");
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        let tx = db.begin_write().expect("write tx");
        {
            let mut t = tx.open_table(T).expect("table");
            for _ in 0..per_tx {
                t.insert(n, n).expect("insert");
                n += 1;
            }
        }
        tx.commit().expect("commit");
    }
    n as f64 / started.elapsed().as_secs_f64()
}
