//! Latchkey as real processes on loopback (`latchkey control-plane`, `latchkey edge-node`):
//! durable state survives a full restart of both; calls through either of two nodes reach one
//! instance; killing the owner node with SIGKILL moves the actor, state intact, once its lease
//! has expired; `latchkey tail` follows calls on both nodes; the same over TLS, from the command
//! line (`--tls-cert`, `--tls-key`, `--ca-file`).

mod support;

use std::time::Duration;

use http::Method;
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::tls::{Trust, dev_certs};
use serde_json::{Value, json};
use support::lines::Lines;
use support::{
    Proc, control_plane, edge_node, edge_node_with, free_port, healthy, healthy_with, retrying,
};

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
        let token = self.admin.enrolment_token(id, None).await.unwrap().token;
        let node = edge_node(self.dir.path(), id, port, &self.cp_url(), &token);
        healthy(&format!("http://127.0.0.1:{port}")).await;
        node
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_state_survives_a_restart_of_both_processes() {
    let mut fleet = Fleet::start().await;
    let node_port = free_port();
    let mut node = fleet.node("n1", node_port).await;
    let token = support::deploy_counter(&fleet.admin).await;
    let url = format!("http://127.0.0.1:{node_port}");
    for expected in 1..=3 {
        let n = retrying("inc", async || call(&url, &token, "k", "inc").await).await;
        assert_eq!(n, json!(expected));
    }

    node.kill();
    fleet.cp.kill();
    fleet.cp = control_plane(fleet.dir.path(), fleet.cp_port);
    healthy(&fleet.cp_url()).await;
    // No new enrolment capability: the node comes back with the key and certificate it keeps
    // in its data directory.
    let _node = edge_node(fleet.dir.path(), "n1", node_port, &fleet.cp_url(), "");
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
    let token = support::deploy_counter(&fleet.admin).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_calls_on_every_node_through_the_control_plane() {
    let fleet = Fleet::start().await;
    let ports = [free_port(), free_port()];
    let _nodes = [
        fleet.node("a", ports[0]).await,
        fleet.node("b", ports[1]).await,
    ];
    let token = support::deploy_counter(&fleet.admin).await;
    let mut tail = Proc::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["tail", "--actor-type", "counter", "--control-plane"])
            .arg(fleet.cp_url())
            .arg("--token-file")
            .arg(fleet.dir.path().join("cp/admin.token"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let mut lines = Lines::new("latchkey tail", tail.take_stdout().unwrap());
    let mut notes = Lines::new("latchkey tail (stderr)", tail.take_stderr().unwrap());
    let mut following: Vec<String> = (0..2)
        .map(|_| {
            notes.wait_for("a node follows", Duration::from_secs(30), |l| {
                l.starts_with("following ")
            })
        })
        .collect();
    following.sort();
    assert_eq!(following, ["following a", "following b"]);
    // Each key is placed on the node first asked; a call to the other node is forwarded.
    for (i, key) in ["on-a", "on-b"].into_iter().enumerate() {
        let url = format!("http://127.0.0.1:{}", ports[i]);
        retrying("inc", async || call(&url, &token, key, "inc").await).await;
    }
    let other = format!("http://127.0.0.1:{}", ports[1]);
    retrying("forwarded inc", async || {
        call(&other, &token, "on-a", "inc").await
    })
    .await;
    for (node, key) in [("a", "on-a"), ("b", "on-b"), ("a", "on-a")] {
        lines.wait_for(
            &format!("{key}'s outcome from node {node}"),
            Duration::from_secs(30),
            |l| l.contains(&format!(" {node} counter/{key} inc#")) && l.contains("=> ok in "),
        );
    }
    tail.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_and_the_cli_over_tls_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dev_certs(&dir.path().join("tls")).unwrap();
    let (cert, key, ca) = (
        certs.cert.to_str().unwrap(),
        certs.key.to_str().unwrap(),
        certs.ca.to_str().unwrap(),
    );
    let trust = Trust::ca_file(&certs.ca).unwrap();
    let cp_port = free_port();
    let cp_data = dir.path().join("cp");
    let _cp = support::latchkey(
        &[
            "control-plane",
            "--listen",
            &format!("127.0.0.1:{cp_port}"),
            "--data-dir",
            cp_data.to_str().unwrap(),
            "--heartbeat-interval-ms",
            "100",
            "--min-heartbeats",
            "1",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ],
        &dir.path().join("cp.log"),
    );
    let cp_url = format!("https://127.0.0.1:{cp_port}");
    healthy_with(&Client::with_trust(&cp_url, "", &trust)).await;
    let token_file = cp_data.join("admin.token");
    let admin_token = std::fs::read_to_string(&token_file).unwrap();
    let admin = Client::with_trust(&cp_url, &admin_token, &trust);

    let ports = [free_port(), free_port()];
    let mut nodes = Vec::new();
    for (id, port) in ["a", "b"].into_iter().zip(ports) {
        let token = admin.enrolment_token(id, None).await.unwrap().token;
        let tls = ["--tls-cert", cert, "--tls-key", key, "--ca-file", ca];
        nodes.push(edge_node_with(dir.path(), id, port, &cp_url, &token, &tls));
        healthy_with(&Client::with_trust(
            &format!("https://127.0.0.1:{port}"),
            "",
            &trust,
        ))
        .await;
    }
    let token = support::deploy_counter(&admin).await;
    for i in 1..=6u64 {
        // Alternate nodes: one holds the counter, the other forwards to it over HTTPS.
        let url = format!("https://localhost:{}", ports[(i % 2) as usize]);
        let client = Client::with_trust(&url, &token, &trust);
        let n = retrying("inc", async || {
            let body = client
                .send(
                    Method::POST,
                    "/v1/actors/counter/k/inc",
                    "application/json",
                    Vec::new(),
                    Duration::from_secs(10),
                )
                .await?;
            Ok(serde_json::from_slice::<Value>(&body).unwrap())
        })
        .await;
        assert_eq!(n, json!(i));
    }

    // The CLI reaches the TLS control plane with --ca-file, and is refused without it.
    let cli = |with_ca: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command.args(["--json", "nodes", "--control-plane", &cp_url]);
        command.args(["--token-file", token_file.to_str().unwrap()]);
        command.env_remove("LATCHKEY_CA_FILE");
        if with_ca {
            command.args(["--ca-file", ca]);
        }
        command.output().unwrap()
    };
    let listed = cli(true);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let addresses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), 2);
    assert!(
        addresses
            .iter()
            .all(|a| a.starts_with("https://127.0.0.1:")),
        "the nodes advertise https: {addresses:?}"
    );
    let refused = cli(false);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    drop(nodes);
}
