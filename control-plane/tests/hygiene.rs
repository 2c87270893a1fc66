//! The control plane's server limits and TLS over real sockets: a slow body is 408 naming the
//! timeout, an idle keep-alive connection is closed while a tail stream in progress is not, and
//! the admin API round-trips over HTTPS with the CA file (plain HTTP to it fails cleanly).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::server::{ServerLimits, ServerOptions};
use latchkey_wire::tls::{ServerTls, Trust, dev_certs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Running {
    address: SocketAddr,
    admin_token: String,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(options: ServerOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.lease = common::SETTINGS;
    let opened = ControlPlane::open(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(latchkey_control_plane::api::serve_with(
        opened.control_plane,
        listener,
        options,
        async {
            let _ = stopped.await;
        },
    ));
    Running {
        address,
        admin_token: opened.new_admin_token.expect("a new admin token"),
        _dir: dir,
        _stop: stop,
    }
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

/// Reads until the server closes the connection; panics after `deadline`.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> String {
    let mut all = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(deadline, read)
        .await
        .expect("the server closed the connection before the deadline");
    String::from_utf8_lossy(&all).into_owned()
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
    let dir = tempfile::tempdir().unwrap();
    let certs = dev_certs(dir.path()).unwrap();
    let tls = ServerTls::from_pem_files(&certs.cert, &certs.key).unwrap();
    let cp = start(ServerOptions {
        tls: Some(tls),
        ..ServerOptions::default()
    })
    .await;
    let port = cp.address.port();
    let trust = Trust::ca_file(&certs.ca).unwrap();
    let admin = Client::with_trust(
        &format!("https://localhost:{port}"),
        &cp.admin_token,
        &trust,
    );
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
