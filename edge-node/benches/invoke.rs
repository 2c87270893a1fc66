//! Edge node benchmark: `cargo bench -p latchkey-edge-node --bench invoke` prints warm in-process
//! invoke throughput (through token check, routing, mailbox and wasmtime, no HTTP) and HTTP
//! requests/s for the counter's `get` and `inc` under `wrk` (a separate process, Debian package
//! `wrk`), with a real control plane and edge node on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_edge_node::NodeInner;

mod support;

const MEASURE: Duration = Duration::from_secs(4);

fn main() {
    support::main("invoke", run);
}

async fn run() {
    let bench = support::Bench::start().await;
    let (node, token) = (&bench.node, &bench.token);
    println!("| measure | ops/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    for (actors, tasks) in [(1usize, 1usize), (1, 16), (10, 16), (1000, 64)] {
        let (rate, p50, p99) = in_process(node.inner(), token, actors, tasks).await;
        println!(
            "| warm invoke in process, counter `get`, {actors} actor(s), {tasks} concurrent callers | {rate:.0} | {p50:.1?} | {p99:.1?} |"
        );
    }
    let url = format!("http://{}", node.address());
    for method in ["get", "inc"] {
        match wrk(&url, token, method) {
            Some((rate, p50, p99)) => println!(
                "| HTTP `{method}` with token check, 1,000 actors, wrk -t1 -c64 | {rate:.0} | {p50} | {p99} |"
            ),
            None => {
                println!("| HTTP `{method}`: wrk is not installed (apt-get install wrk) | | | |");
            }
        }
    }
    bench.node.shutdown().await;
}

/// `tasks` callers loop over `actors` counters for [`MEASURE`]; every 16th call is timed.
async fn in_process(
    node: &Arc<NodeInner>,
    token: &str,
    actors: usize,
    tasks: usize,
) -> (f64, Duration, Duration) {
    for a in 0..actors {
        node.call(support::get(token, format!("a{a}")))
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (node, token, stop, done) = (
                Arc::clone(node),
                token.to_owned(),
                Arc::clone(&stop),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let timed = i % 16 == 0;
                    let t0 = Instant::now();
                    node.call(support::get(&token, format!("a{}", i % actors)))
                        .await
                        .unwrap();
                    if timed {
                        samples.push(t0.elapsed());
                    }
                    i += tasks;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                samples
            })
        })
        .collect();
    tokio::time::sleep(MEASURE).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for h in handles {
        samples.extend(h.await.unwrap());
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    (rate, pct(0.5), pct(0.99))
}

/// Runs `wrk` against `method` on 1,000 counters; returns (req/s, p50, p99).
fn wrk(url: &str, token: &str, method: &str) -> Option<(f64, String, String)> {
    let script = format!(
        r#"wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {token}"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/actors/counter/w" .. (n % 1000) .. "/{method}")
end
local shown = 0
response = function(status, headers, body)
  if status ~= 200 and shown < 3 then
    shown = shown + 1
    print("error answer: " .. status .. " " .. body)
  end
end
"#
    );
    let path = std::env::temp_dir().join(format!("latchkey-wrk-{method}.lua"));
    std::fs::write(&path, script).ok()?;
    let secs = MEASURE.as_secs().to_string();
    let output = std::process::Command::new("wrk")
        .args([
            "-t1",
            "-c64",
            "-d",
            &secs,
            "--latency",
            "-s",
            path.to_str()?,
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
    };
    if text.contains("Non-2xx") {
        println!("wrk saw errors (the figures below count them):\n{text}");
    }
    let rate = field("Requests/sec:")?.parse().ok()?;
    Some((rate, field("50%")?, field("99%")?))
}
