//! The edge node's listener over real sockets: actor calls and node-to-node forwarding over
//! HTTPS (the nodes advertise `https://`, trust the CA file, and reach the control plane over
//! HTTPS too), plain HTTP to the TLS port failing cleanly, and a slow request body answered 408
//! naming the timeout; and a node dropped without `shutdown()` freeing everything it held.

use std::time::{Duration, Instant};

use latchkey_test_kit::{Cluster, json};
use latchkey_wire::client::{Client, ClientError};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_forwarding_run_over_https() {
    let c = Cluster::start_tls(2, |_| {}).await;
    assert!(c.cp.url.starts_with("https://"));
    c.deploy("counter", latchkey_examples::COUNTER).await;
    let token = c.invoke_token("counter").await;

    let nodes = c.cp.admin.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    for n in &nodes {
        assert!(n.address.starts_with("https://127.0.0.1:"), "{}", n.address);
    }

    // Alternate nodes: one of them forwards each call to the other, over HTTPS.
    c.count_alternating(&token, "shared", 6).await;
    let held: usize = c.nodes.iter().map(|n| n.local_activations()).sum();
    assert_eq!(
        held, 1,
        "exactly one node holds the actor; the other forwarded"
    );

    // Plain HTTP to the node's TLS port: a clear transport error, not a hang.
    let plain = Client::new(&format!("http://{}", c.nodes[0].address()), &token)
        .with_timeout(Duration::from_secs(5));
    let started = Instant::now();
    match plain.nodes().await {
        Err(ClientError::Transport { message, .. }) => {
            assert!(message.contains("https://"), "{message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        json(c.call(0, &token, "counter", "shared", "get", "").await),
        json!(6)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_body_is_408_naming_the_timeout() {
    let c = Cluster::start(1, |n| {
        n.server.limits.body_read_timeout = Duration::from_millis(300);
    })
    .await;
    let token = c.invoke_token("counter").await;
    let mut stream = tokio::net::TcpStream::connect(c.nodes[0].address())
        .await
        .unwrap();
    let head = format!(
        "POST /v1/actors/counter/k/inc HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 1000\r\n\r\n0123456789"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer and the connection closed within 5 s")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(answer.contains("body read timeout of 300ms"), "{answer}");
}

/// A node dropped without `shutdown()` takes its state with it: its tasks stop, its listener's
/// connections close, and its activations, instances and wasmtime runtime are freed (nothing
/// below the router holds the node, so no ownership cycle keeps them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dropped_without_shutdown_frees_its_activations_and_runtime() {
    let (mut c, token) = Cluster::with_counter(1).await;
    assert_eq!(
        json(c.call(0, &token, "counter", "k", "inc", "").await),
        json!(1)
    );
    assert_eq!(c.nodes[0].live_instances(), 1);
    let state = c.nodes[0].downgrade();
    let address = c.nodes[0].address();
    drop(c.nodes.remove(0));
    latchkey_test_kit::eventually("the dropped node's state to be freed", || {
        let freed = state.upgrade().is_none();
        async move { freed.then_some(()) }
    })
    .await;
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the listener is closed"
    );
}
