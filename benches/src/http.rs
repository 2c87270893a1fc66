//! Group `http`: the counter's `get` and `inc` over HTTP with a capability token on every request
//! (cached after the first check), keep-alive, 64 connections, load from `wrk` (Debian package
//! `wrk`) as a separate process. The floor is a bare hyper server answering the same requests
//! with a constant, on the same runtime, under the same `wrk` command. Then the same two over
//! HTTPS (both listeners on TLS, rustls with ring; wrk's connections are kept alive, so this is
//! the cost of encrypting requests and answers, not of handshakes), next to the plain figures.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::cluster::{Cluster, Options, call};
use crate::report::{Row, Table, count, micros};

const SECONDS: u64 = 5;

/// Cached-token `get`s per second over HTTP the node must reach (issue #7).
const TARGET: f64 = 150_000.0;

pub(crate) async fn end_to_end(table: &mut Table) {
    let floor_url = bare_hyper().await;
    let cluster = warm_cluster(false).await;
    let url = cluster.node_url();
    let token = cluster.token.clone();
    // wrk blocks: run it off the runtime's workers.
    let floor = tokio::task::spawn_blocking({
        let (url, token) = (floor_url.clone(), token.clone());
        move || wrk(&url, &token, "get")
    })
    .await
    .expect("wrk task");
    let floor_text = match &floor {
        Ok(f) => format!("{}/s (bare hyper, p99 {})", count(f.rate), micros(f.p99)),
        Err(e) => e.clone(),
    };
    let mut plain = Vec::new();
    for method in ["get", "inc"] {
        let result = run_wrk(&url, &token, method).await;
        let row = match &result {
            Ok(w) => {
                let share = match &floor {
                    Ok(f) => format!(" ({:.0}% of bare hyper)", w.rate / f.rate * 100.0),
                    Err(_) => String::new(),
                };
                let row = Row::new(
                    format!("HTTP `{method}`, token checked (cached), 1,000 actors, wrk -t1 -c64"),
                    format!("{}/s{share}{}", count(w.rate), w.errors),
                )
                .latency(w.p50, w.p99)
                .floor(floor_text.clone());
                if method == "get" {
                    row.target("≥ 150,000/s", w.rate >= TARGET)
                } else {
                    row
                }
            }
            Err(e) => Row::new(format!("HTTP `{method}`"), e.clone()),
        };
        table.push(row);
        plain.push(result.ok().map(|w| w.rate));
    }
    cluster.stop().await;

    let cluster = warm_cluster(true).await;
    let url = cluster.node_url();
    let token = cluster.token.clone();
    for (method, plain) in ["get", "inc"].into_iter().zip(plain) {
        let row = match run_wrk(&url, &token, method).await {
            Ok(w) => {
                let (share, floor) = match plain {
                    Some(p) => (
                        format!(" ({:.0}% of plain HTTP)", w.rate / p * 100.0),
                        format!("{}/s plain HTTP, same run", count(p)),
                    ),
                    None => (String::new(), String::new()),
                };
                Row::new(
                    format!("HTTPS `{method}` (TLS on both listeners), 1,000 actors, wrk -t1 -c64"),
                    format!("{}/s{share}{}", count(w.rate), w.errors),
                )
                .latency(w.p50, w.p99)
                .floor(floor)
            }
            Err(e) => Row::new(format!("HTTPS `{method}`"), e),
        };
        table.push(row);
    }
    cluster.stop().await;
}

/// A cluster (over TLS or not) with 1,000 counters activated.
async fn warm_cluster(tls: bool) -> Cluster {
    let cluster = Cluster::start(Options {
        tls,
        ..Options::default()
    })
    .await;
    let node = cluster.router();
    for k in 0..1000 {
        node.call(call(&cluster.token, format!("w{k}"), "get"))
            .await
            .expect("activation");
    }
    cluster
}

/// [`wrk`] off the runtime's workers (it blocks).
async fn run_wrk(url: &str, token: &str, method: &'static str) -> Result<Wrk, String> {
    let (url, token) = (url.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || wrk(&url, &token, method))
        .await
        .expect("wrk task")
}

struct Wrk {
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// Empty, or a note that some answers were not 200.
    errors: String,
}

/// Runs `wrk` against `method` on 1,000 counters.
fn wrk(url: &str, token: &str, method: &str) -> Result<Wrk, String> {
    let script = format!(
        r#"wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {token}"
-- Formatted once: formatting in `request` would make wrk, not the server, the bottleneck.
local requests = {{}}
for i = 0, 999 do
  requests[i] = wrk.format(nil, "/v1/actors/counter/w" .. i .. "/{method}")
end
local n = 0
request = function()
  n = (n + 1) % 1000
  return requests[n]
end
"#
    );
    let path = std::env::temp_dir().join(format!("latchkey-bench-wrk-{method}.lua"));
    std::fs::write(&path, script).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let output = std::process::Command::new("wrk")
        .args([
            "-t1",
            "-c64",
            "-d",
            &format!("{SECONDS}s"),
            "--latency",
            "-s",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .map_err(|e| format!("wrk did not run ({e}): apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
            .ok_or_else(|| format!("wrk printed no `{prefix}`:\n{text}"))
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(|l| format!(" ({})", l.trim()))
        .unwrap_or_default();
    Ok(Wrk {
        rate: field("Requests/sec:")?
            .parse()
            .map_err(|e| format!("wrk's rate: {e}"))?,
        p50: duration(&field("50%")?)?,
        p99: duration(&field("99%")?)?,
        errors,
    })
}

/// A bare hyper server on this runtime that answers every request with `0`; returns its URL.
async fn bare_hyper() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"0"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

/// wrk's latency text (`812.00us`, `1.01ms`, `2.50s`).
fn duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("wrk latency without a unit: {text}"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|e| format!("wrk latency {text}: {e}"))?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("wrk latency unit `{unit}` in {text}")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// `--child hyper`: serves the bare hyper floor for 60 s and prints its URL (to load it by hand).
pub(crate) fn serve_floor() {
    crate::block_on(async {
        println!("{}", bare_hyper().await);
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}
