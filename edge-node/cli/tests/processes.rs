//! Latchkey as real processes on loopback (`latchkey control-plane`, `latchkey edge-node`):
//! durable state survives a full restart of both; calls through either of two nodes reach one
//! instance; killing the owner node with SIGKILL moves the actor, state intact, once its lease
//! has expired.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Method;
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::{Client, ClientError};
use serde_json::{Value, json};

/// A child process, killed (SIGKILL) when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn latchkey(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start latchkey");
    Proc { child }
}

fn control_plane(dir: &Path, port: u16) -> Proc {
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

fn edge_node(dir: &Path, id: &str, port: u16, cp_url: &str, token: &str) -> Proc {
    let data = dir.join(id);
    latchkey(
        &[
            "edge-node",
            "--node-id",
            id,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--control-plane",
            cp_url,
            "--node-token",
            token,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &dir.join(format!("{id}.log")),
    )
}

/// Retries `f` on retryable errors (as a client of a restarting system does) for up to 30 s.
async fn retrying<T>(what: &str, mut f: impl AsyncFnMut() -> Result<T, ClientError>) -> T {
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

async fn healthy(url: &str) {
    let client = Client::new(url, "");
    retrying(&format!("{url} healthy"), async || {
        client
            .send(
                Method::GET,
                "/healthz",
                "text/plain",
                Vec::new(),
                Duration::from_secs(2),
            )
            .await
    })
    .await;
}

async fn call(node: &str, token: &str, key: &str, method: &str) -> Result<Value, ClientError> {
    let body = Client::new(node, token)
        .send(
            Method::POST,
            &format!("/v1/actors/counter/{key}/{method}"),
            "application/json",
            Vec::new(),
            Duration::from_secs(10),
        )
        .await?;
    Ok(serde_json::from_slice(&body).expect("JSON answer"))
}

struct Fleet {
    dir: tempfile::TempDir,
    cp_port: u16,
    cp: Proc,
    admin: Client,
}

impl Fleet {
    async fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let cp_port = free_port();
        let cp = control_plane(dir.path(), cp_port);
        let url = format!("http://127.0.0.1:{cp_port}");
        healthy(&url).await;
        let token = std::fs::read_to_string(dir.path().join("cp/admin.token")).unwrap();
        let admin = Client::new(&url, &token);
        Fleet {
            dir,
            cp_port,
            cp,
            admin,
        }
    }

    fn cp_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.cp_port)
    }

    async fn node(&self, id: &str, port: u16) -> Proc {
        let token = self.admin.node_token(id).await.unwrap().token;
        let node = edge_node(self.dir.path(), id, port, &self.cp_url(), &token);
        healthy(&format!("http://127.0.0.1:{port}")).await;
        node
    }

    async fn deploy_counter(&self) -> String {
        let module = self
            .admin
            .upload_module(latchkey_examples::COUNTER.to_vec())
            .await
            .unwrap();
        self.admin
            .deploy("counter", &module.content_id, None)
            .await
            .unwrap();
        self.admin
            .mint(&MintRequest {
                actor_type: Some("counter".into()),
                rights: Some(vec!["invoke".into()]),
                ..MintRequest::default()
            })
            .await
            .unwrap()
            .token
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_state_survives_a_restart_of_both_processes() {
    let mut fleet = Fleet::start().await;
    let node_port = free_port();
    let mut node = fleet.node("n1", node_port).await;
    let token = fleet.deploy_counter().await;
    let url = format!("http://127.0.0.1:{node_port}");
    for expected in 1..=3 {
        let n = retrying("inc", async || call(&url, &token, "k", "inc").await).await;
        assert_eq!(n, json!(expected));
    }

    node.kill();
    fleet.cp.kill();
    fleet.cp = control_plane(fleet.dir.path(), fleet.cp_port);
    healthy(&fleet.cp_url()).await;
    let node_token = fleet.admin.node_token("n1").await.unwrap().token;
    let _node = edge_node(
        fleet.dir.path(),
        "n1",
        node_port,
        &fleet.cp_url(),
        &node_token,
    );
    healthy(&url).await;

    assert_eq!(
        retrying("get after restart", async || call(&url, &token, "k", "get")
            .await)
        .await,
        json!(3)
    );
    assert_eq!(
        retrying("inc after restart", async || call(&url, &token, "k", "inc")
            .await)
        .await,
        json!(4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_instance_and_failover_after_sigkill() {
    let fleet = Fleet::start().await;
    let ports = [free_port(), free_port()];
    let mut nodes = [
        fleet.node("a", ports[0]).await,
        fleet.node("b", ports[1]).await,
    ];
    let token = fleet.deploy_counter().await;
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();

    // Through either node, each call advances the one counter by exactly one.
    for i in 1..=10u64 {
        let url = &urls[(i % 2) as usize];
        let n = retrying("inc", async || call(url, &token, "shared", "inc").await).await;
        assert_eq!(n, json!(i), "call {i}");
    }
    let owner = fleet.admin.activations(Some("counter")).await.unwrap();
    assert_eq!(owner.len(), 1);
    let owner = if owner[0].node_id == "a" { 0 } else { 1 };
    let survivor = 1 - owner;

    // Kill the owner outright. Calls fail (as failures, never wrong values) until its lease
    // expires; then the actor is placed on the survivor with its state.
    nodes[owner].kill();
    let mut failures = 0u32;
    let n = retrying("inc after failover", async || {
        let r = call(&urls[survivor], &token, "shared", "inc").await;
        if r.is_err() {
            failures += 1;
        }
        r
    })
    .await;
    assert_eq!(
        n,
        json!(11),
        "no increment lost or doubled ({failures} failed attempts while the lease ran out)"
    );
    let moved = fleet.admin.activations(Some("counter")).await.unwrap();
    assert_eq!(moved[0].node_id, ["a", "b"][survivor]);
    assert!(moved[0].live);
}
