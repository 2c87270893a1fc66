//! The control plane's server limits and TLS over real sockets: a slow body is 408 naming the
//! timeout, an idle keep-alive connection is closed while a tail stream in progress is not, and
//! the admin API round-trips over HTTPS with the CA file (plain HTTP to it fails cleanly).

mod common;

use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use latchkey_test_kit::raw::read_until_closed;
use latchkey_test_kit::{Launch, ServedControlPlane};
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::server::{ServerLimits, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A control plane serving with `server`'s limits.
async fn start(server: ServerOptions) -> ServedControlPlane {
    let launch = Launch {
        server,
        ..Launch::default()
    };
    ServedControlPlane::start(launch, |config| config.lease = common::SETTINGS).await
}

fn short(header_ms: u64, body_ms: u64, idle_ms: u64) -> ServerOptions {
    ServerOptions {
        limits: ServerLimits {
            header_read_timeout: Duration::from_millis(header_ms),
            body_read_timeout: Duration::from_millis(body_ms),
            idle_timeout: Duration::from_millis(idle_ms),
            max_connections: 100,
        },
        tls: None,
    }
}

#[tokio::test]
async fn a_slow_admin_body_is_408_naming_the_timeout() {
    let cp = start(short(5_000, 300, 10_000)).await;
    let mut stream = TcpStream::connect(cp.address).await.unwrap();
    let head = format!(
        "PUT /v1/regions/eu HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"placement",
        cp.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(answer.contains("body read timeout of 300ms"), "{answer}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_a_tail_stream_in_progress_is_not() {
    let cp = start(short(200, 5_000, 400)).await;

    let mut idle = TcpStream::connect(cp.address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let since = Instant::now();
    read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(
        since.elapsed() >= Duration::from_millis(350),
        "{:?}",
        since.elapsed()
    );

    let admin = Client::new(&format!("http://{}", cp.address), &cp.admin_token);
    let mut body = admin.stream("/v1/tail").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the stream starts")
        .expect("a first frame")
        .unwrap();
    assert!(String::from_utf8_lossy(first.data_ref().unwrap()).contains("started"));
    // Nothing happens for five idle timeouts: the stream stays open.
    let quiet = tokio::time::timeout(Duration::from_secs(2), body.frame()).await;
    assert!(quiet.is_err(), "the tail stream ended: {quiet:?}");
}

#[tokio::test]
async fn the_admin_api_answers_over_https_with_the_ca_file() {
    let launch = Launch {
        tls: true,
        ..Launch::default()
    };
    let cp = ServedControlPlane::start(launch, |config| config.lease = common::SETTINGS).await;
    let port = cp.address.port();
    let admin = cp.client(&format!("https://localhost:{port}"), &cp.admin_token);
    assert!(admin.modules().await.unwrap().is_empty());
    let minted = admin
        .mint(&latchkey_wire::admin::MintRequest::default())
        .await
        .unwrap();
    assert!(minted.token.starts_with("lk1."));

    let plain = Client::new(&format!("http://127.0.0.1:{port}"), &cp.admin_token)
        .with_timeout(Duration::from_secs(5));
    match plain.modules().await {
        Err(ClientError::Transport { message, .. }) => {
            assert!(message.contains("https://"), "{message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    // The server is unharmed.
    assert!(admin.modules().await.unwrap().is_empty());
}
