//! Helpers shared by the process tests (`processes.rs`, `faults.rs`): starting `latchkey
//! control-plane` and `latchkey edge-node` as child processes on loopback, signalling them, and
//! waiting (boundedly) for them to answer. `proxy` is the fault-injecting TCP proxy.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod lines;
pub(crate) mod proxy;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use latchkey_test_kit::cluster::healthz;
use latchkey_test_kit::control_plane::{deploy, invoke_token};
use latchkey_wire::client::{Client, ClientError};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub(crate) use latchkey_test_kit::process::{Proc, free_port};

/// Starts `latchkey <args>`, its output (the log goes to stdout) appended to `log` (a restarted
/// process keeps one log).
pub(crate) fn latchkey(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    )
}

/// A control plane with a short lease (2 s), data in `dir/cp`, log in `dir/cp.log`.
pub(crate) fn control_plane(dir: &Path, port: u16) -> Proc {
    let data = dir.join("cp");
    latchkey(
        &[
            "control-plane",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().unwrap(),
            "--lease-ttl-ms",
            "2000",
            "--heartbeat-interval-ms",
            "100",
            "--min-heartbeats",
            "1",
        ],
        &dir.join("cp.log"),
    )
}

/// An edge node `id`, data in `dir/<id>`, log in `dir/<id>.log`, enrolling with `token` unless
/// it holds a certificate from an earlier start.
pub(crate) fn edge_node(dir: &Path, id: &str, port: u16, cp_url: &str, token: &str) -> Proc {
    edge_node_with(dir, id, port, cp_url, token, &[])
}

/// [`edge_node`] with more options (e.g. `--advertise`).
pub(crate) fn edge_node_with(
    dir: &Path,
    id: &str,
    port: u16,
    cp_url: &str,
    token: &str,
    extra: &[&str],
) -> Proc {
    let data = dir.join(id);
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "edge-node",
        "--node-id",
        id,
        "--listen",
        &listen,
        "--control-plane",
        cp_url,
        "--enrolment-token",
        token,
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    latchkey(&args, &dir.join(format!("{id}.log")))
}

/// Retries `f` on retryable errors (as a client of a restarting system does) for up to 30 s.
pub(crate) async fn retrying<T>(
    what: &str,
    mut f: impl AsyncFnMut() -> Result<T, ClientError>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// Waits (up to 30 s) until `GET {url}/healthz` answers 200.
pub(crate) async fn healthy(url: &str) {
    healthy_with(&Client::new(url, "")).await;
}

/// Waits (up to 30 s) until `GET /healthz` through `client` answers 200.
pub(crate) async fn healthy_with(client: &Client) {
    let url = client.base_url().to_owned();
    retrying(&format!("{url} healthy"), async || {
        healthz(client, Duration::from_secs(2)).await
    })
    .await;
}

/// Uploads and deploys the counter example through `admin`; returns a token that may invoke it.
pub(crate) async fn deploy_counter(admin: &Client) -> String {
    // A debug build's upload check compiles the module: give it longer than a call.
    let patient = admin.with_timeout(Duration::from_secs(60));
    deploy(&patient, "counter", latchkey_examples::COUNTER).await;
    invoke_token(admin, "counter").await
}
