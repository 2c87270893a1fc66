//! Fleet security at the edge, over real HTTP between real nodes: a client cannot pose as a
//! forwarding node or name a presenter; a captured forwarded call is good only once and only
//! for its owner; the token is checked before the body is read; the node's key is private and
//! its certificate survives a restart.

use std::time::Duration;

use latchkey_caps::node::{NodeCertificate, node_audience};
use latchkey_caps::{Capability, Token};
use latchkey_edge_node::{EdgeNode, NodeConfig};
use latchkey_test_kit::raw::post;
use latchkey_test_kit::{Cluster, call_url, json};
use latchkey_wire::ErrorCode;
use latchkey_wire::identity::{self, NodeCredentials, Outgoing};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Finding 2: a client-chosen `X-Latchkey-Forwarded-By` made a call "forwarded", and a user
/// token passed as the node token, so its holder could name any presenter. Now any node-only
/// header makes the call prove its node, and a client cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_spoof_forwarding_or_name_a_presenter() {
    let (cluster, token) = Cluster::with_counter(1).await;
    let url = cluster.node_url(0);
    let path = "/v1/actors/counter/k/inc";
    let bearer = format!("Bearer {token}");
    for spoof in [
        vec![
            ("x-latchkey-forwarded-by", "node-0".to_owned()),
            ("x-latchkey-node-token", token.clone()),
        ],
        vec![("x-latchkey-presenter", "actor:counter/k".to_owned())],
        vec![("x-latchkey-deadline-ms", "1".to_owned())],
    ] {
        let mut headers = vec![("authorization", bearer.clone())];
        headers.extend(spoof.iter().cloned());
        let (status, m) = post(&url, path, &headers, b"null".to_vec()).await;
        assert_eq!(status, 401, "{spoof:?}: {m}");
        assert!(
            m.contains("node authentication failed")
                && m.contains("missing `x-latchkey-node-certificate`"),
            "{m}"
        );
    }
    // The same call without the spoofed headers is served.
    let (status, _) = post(&url, path, &[("authorization", bearer)], b"null".to_vec()).await;
    assert_eq!(status, 200);
}

/// A token meant for an actor (audience `actor:…`, narrowed offline: the mint API refuses it)
/// is useless to an HTTP client, which presents for nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_an_actor_or_a_node_is_no_client_token() {
    let (cluster, token) = Cluster::with_counter(1).await;
    let parent = Token::from_text(&token).unwrap();
    for audience in ["actor:counter/k", &node_audience("node-0")] {
        let narrowed = parent
            .attenuate(&Capability::unrestricted().audience(audience))
            .unwrap()
            .to_text();
        let e = call_url(
            &cluster.node_url(0),
            &narrowed,
            "counter",
            "k",
            "get",
            Vec::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden, "{audience}");
        assert!(
            e.message.contains("may only be presented by"),
            "{}",
            e.message
        );
    }
}

/// The headers a node `spy` (enrolled for real) sends to forward `inc` on `counter/k` to
/// node `to`, vouching for `presenter`.
fn forwarded(
    spy: &NodeCredentials,
    to: &str,
    token: &str,
    presenter: &str,
) -> Vec<(&'static str, String)> {
    let authorization = format!("Bearer {token}");
    let bound = [
        (identity::BOUND[0], authorization.as_bytes()),
        (identity::BOUND[1], presenter.as_bytes()),
        (identity::BOUND[2], b"5000".as_slice()),
    ];
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut headers = spy.sign(
        &Outgoing {
            audience: &node_audience(to),
            method: "POST",
            path: "/v1/actors/counter/k/inc",
            body: b"null",
            bound: &bound,
        },
        now_ms,
    );
    headers.push(("authorization", authorization));
    headers.push((identity::PRESENTER, presenter.to_owned()));
    headers.push((identity::DEADLINE_MS, "5000".to_owned()));
    headers.push((identity::FORWARDED_BY, spy.node_id().to_owned()));
    headers
}

/// Finding 3's other half: every forwarded call handed the forwarding node's bearer token to
/// the peer. Now a forwarded call carries a signature for its owner only: captured, it is
/// refused by any other node, refused the second time, and refused once a bound header
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_forwarded_call_is_good_once_and_only_for_its_owner() {
    let (cluster, token) = Cluster::with_counter(2).await;
    let spy = cluster.cp.enrolled_credentials("spy").await;
    let path = "/v1/actors/counter/k/inc";
    let captured = forwarded(&spy, "node-0", &token, "");
    let (status, m) = post(&cluster.node_url(0), path, &captured, b"null".to_vec()).await;
    assert_ne!(
        status, 401,
        "a node's signed call passes node authentication: {m}"
    );

    let (status, m) = post(&cluster.node_url(0), path, &captured, b"null".to_vec()).await;
    assert_eq!(status, 401);
    assert!(m.contains("replay refused"), "{m}");

    let captured = forwarded(&spy, "node-0", &token, "");
    let (status, m) = post(&cluster.node_url(1), path, &captured, b"null".to_vec()).await;
    assert_eq!(status, 401);
    assert!(m.contains("another recipient"), "{m}");

    // A presenter changed in a captured call breaks its signature; a second one is refused.
    let mut altered = forwarded(&spy, "node-0", &token, "actor:counter/k");
    for (name, value) in &mut altered {
        if *name == identity::PRESENTER {
            *value = "actor:counter/admin".to_owned();
        }
    }
    let (status, m) = post(&cluster.node_url(0), path, &altered, b"null".to_vec()).await;
    assert_eq!(status, 401);
    assert!(m.contains("does not verify"), "{m}");
    let mut doubled = forwarded(&spy, "node-0", &token, "actor:counter/k");
    doubled.push((identity::PRESENTER, "actor:counter/admin".to_owned()));
    let (status, m) = post(&cluster.node_url(0), path, &doubled, b"null".to_vec()).await;
    assert_eq!(status, 401);
    assert!(m.contains("appears more than once"), "{m}");

    // Forwarding between the real nodes still works: a call through node-1 reaches the
    // instance node-0 holds (or the reverse), counting on from where it was.
    let a = json(
        cluster
            .call(0, &token, "counter", "shared", "inc", "null")
            .await,
    );
    let b = json(
        cluster
            .call(1, &token, "counter", "shared", "inc", "null")
            .await,
    );
    assert_eq!((a, b), (serde_json::json!(1), serde_json::json!(2)));
}

/// Finding 7: the edge read (up to 1 MiB of) the body before it checked the token. Now a call
/// with a bad token is refused after its headers: this client never sends the body it
/// announced, and gets its 401 anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_is_read() {
    let (cluster, _) = Cluster::with_counter(1).await;
    let mut socket = tokio::net::TcpStream::connect(cluster.nodes[0].address())
        .await
        .unwrap();
    socket
        .write_all(
            b"POST /v1/actors/counter/k/inc HTTP/1.1\r\nhost: x\r\nauthorization: Bearer lk1.forged\r\ncontent-length: 900000\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid token"), "{answer}");
}

/// The node's key is private (0600 in a 0700 directory), and a restarted node comes back with
/// its key and stored certificate, without a new enrolment capability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_a_private_key_and_restarts_from_its_certificate() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut cluster = Cluster::start(0, |_| {}).await;
    let identity_dir = cluster.cp.dir().join("n1-identity");
    let dir = identity_dir.clone();
    cluster
        .add_node("n1", move |c: &mut NodeConfig| {
            c.identity.dir = Some(dir.clone());
        })
        .await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&identity_dir), 0o700);
    assert_eq!(mode(&identity_dir.join("node.key")), 0o600);
    let first = NodeCertificate::from_text(
        &std::fs::read_to_string(identity_dir.join("node.cert")).unwrap(),
    )
    .unwrap();
    let node = cluster.nodes.pop().unwrap();
    let mut config = NodeConfig::new("n1", &cluster.cp.url, "");
    config.identity.dir = Some(identity_dir.clone());
    config.runtime.cache_dir = Some(cluster.cp.dir().join("compiled"));
    node.shutdown().await;
    let again = EdgeNode::start(config).await.unwrap();
    again.wait_ready(Duration::from_secs(20)).await.unwrap();
    let second = NodeCertificate::from_text(
        &std::fs::read_to_string(identity_dir.join("node.cert")).unwrap(),
    )
    .unwrap();
    assert_eq!(first.node_key(), second.node_key(), "the same key");
    again.shutdown().await;
}
