//! Group `memory`: resident memory per idle activation (10,000 activations, each called once),
//! and how many live activations one node holds (100,000 asked). Each node runs in a child
//! process of its own (this binary with `--child`), against a control plane in this process, so
//! the figures are the node's alone.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use latchkey_edge_node::Router;

use crate::cluster::{ControlPlaneHandle, Options, call, start_node};
use crate::report::{Row, Table, count};

/// Idle activations measured.
const IDLE: usize = 10_000;
/// Live activations asked of one node.
const LIVE: usize = 100_000;
/// Mappings per activation when none were measured (pooling allocator: memory, stack, tables).
const MAPS_GUESS: f64 = 4.0;

pub(crate) fn activations(table: &mut Table) {
    crate::block_on(async {
        let cp = ControlPlaneHandle::start(Options::default()).await;
        let idle_count = std::env::var("LATCHKEY_BENCH_IDLE")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(IDLE);
        let idle = child(&cp, "idle", idle_count).await;
        let maps = match &idle {
            Ok(r) => {
                let per = r.rss_delta as f64 / r.created as f64;
                table.push(
                    Row::new(
                        format!(
                            "resident memory (PSS) per idle activation, {} activations",
                            count(r.created as f64)
                        ),
                        format!("{:.1} KiB", per / 1024.0),
                    )
                    .floor(format!(
                        "{:.1} mappings per activation; floor 16–29 KB (notes)",
                        r.maps_per
                    ))
                    .target("≤ 64 KiB", per <= 64.0 * 1024.0),
                );
                r.maps_per
            }
            Err(e) => {
                table.push(Row::new("resident memory per idle activation", e.clone()));
                MAPS_GUESS
            }
        };
        let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(65_530.0);
        let needed = (LIVE as f64 * maps * 1.1 + 20_000.0) as u64;
        let row = if limit < needed as f64 {
            Row::new(
                "live activations on one node",
                format!(
                    "not run: needs vm.max_map_count ≥ {} (here {limit}); `sysctl -w vm.max_map_count={}`",
                    count(needed as f64),
                    needed.next_power_of_two()
                ),
            )
            .target("≥ 100,000", false)
        } else {
            match child(&cp, "live", LIVE).await {
                Ok(r) => Row::new(
                    "live activations on one node",
                    format!(
                        "{} live ({:.0}/s created, {:.1} GiB resident)",
                        count(r.created as f64),
                        r.created as f64 / r.seconds,
                        r.rss_delta as f64 / (1u64 << 30) as f64
                    ),
                )
                .floor(format!("{:.1} mappings per activation", r.maps_per))
                .target("≥ 100,000", r.created >= LIVE),
                Err(e) => Row::new("live activations on one node", e).target("≥ 100,000", false),
            }
        };
        table.push(row);
    });
}

/// What a child node reports.
struct Report {
    created: usize,
    rss_delta: u64,
    maps_per: f64,
    seconds: f64,
}

/// Runs a node in a child process that creates `n` activations and reports.
async fn child(cp: &ControlPlaneHandle, what: &str, n: usize) -> Result<Report, String> {
    let node_token = cp.served.enrolment_token("bench").await;
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut command = Command::new(exe);
    command.args([
        "--child",
        what,
        &cp.served.url,
        &node_token,
        &cp.token,
        &n.to_string(),
    ]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| format!("child task: {e}"))?
        .map_err(|e| format!("starting the child node: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| {
            format!(
                "the child node reported nothing ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" / ")
            )
        })?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().map_err(|e| format!("child report `{line}`: {e}")))
        .collect::<Result<_, _>>()?;
    let [created, rss_delta, maps_per, seconds] = f[..] else {
        return Err(format!("child report `{line}` has {} fields", f.len()));
    };
    Ok(Report {
        created: created as usize,
        rss_delta: rss_delta as u64,
        maps_per,
        seconds,
    })
}

/// A child node: `idle|live CP_URL NODE_TOKEN TOKEN N`. Prints `RESULT created rss_delta
/// maps_per_activation seconds`.
pub(crate) fn child_main(args: &[String]) {
    let [what, url, node_token, token, n] = args else {
        eprintln!("usage: --child idle|live CP_URL NODE_TOKEN TOKEN N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N is a number");
    let capacity = (n + 500) as u32;
    let dir = tempfile::tempdir().expect("temp dir");
    let report = crate::block_on(async {
        let batch = Options::default().max_commit_batch;
        let node = start_node(
            url,
            node_token,
            capacity,
            batch,
            dir.path().join("compiled"),
            None,
        )
        .await;
        let inner = node.router();
        // The module compiled, the pools and the runtime touched: the baseline.
        create(inner, token, "base", 100).await;
        let (rss0, maps0) = (resident(), mappings());
        dump_smaps("before");
        let started = Instant::now();
        let created = create(inner, token, what, n).await;
        let seconds = started.elapsed().as_secs_f64();
        let (rss1, maps1) = (resident(), mappings());
        dump_smaps("after");
        eprintln!(
            "{what}: {created} activations, {} live instances, {:.1} s",
            node.live_instances(),
            seconds
        );
        node.shutdown().await;
        format!(
            "RESULT {created} {} {} {seconds}",
            rss1.saturating_sub(rss0),
            (maps1 as f64 - maps0 as f64) / created.max(1) as f64
        )
    });
    println!("{report}");
}

/// Creates `n` activations with 64 concurrent callers; returns how many succeeded.
async fn create(node: &Arc<Router>, token: &str, prefix: &str, n: usize) -> usize {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (node, token, next) = (Arc::clone(node), token.to_owned(), Arc::clone(&next));
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                let mut ok = 0;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return ok;
                    }
                    match node
                        .call(call(&token, format!("{prefix}-{i}"), "get"))
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(e) if ok == 0 => eprintln!("activation {prefix}-{i} failed: {e}"),
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.expect("creator task");
    }
    ok
}

/// Resident bytes of this process, as its proportional set size: pages shared between
/// instances (the module's memory image, mapped copy-on-write into every instance) count once,
/// split among their mappers, rather than once per instance as RSS counts them.
fn resident() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Memory mappings of this process.
fn mappings() -> usize {
    std::fs::read_to_string(Path::new("/proc/self/maps"))
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

/// With `LATCHKEY_BENCH_SMAPS=DIR`, copies `/proc/self/smaps` to `DIR/{label}` (for finding
/// where an activation's memory goes).
fn dump_smaps(label: &str) {
    if let Some(dir) = std::env::var_os("LATCHKEY_BENCH_SMAPS") {
        let _ = std::fs::copy("/proc/self/smaps", Path::new(&dir).join(label));
    }
}
