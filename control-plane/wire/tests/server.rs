//! The shared accept loop (`latchkey_wire::server`) over real sockets: slow heads and bodies,
//! idle keep-alive connections and streams in progress, the connection cap, and TLS. Timing is
//! checked by waiting for the server's action with a bounded deadline, never by sleeping.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use latchkey_test_kit::raw::read_until_closed;
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::server::{self, ServerLimits, ServerOptions};
use latchkey_wire::tls::{ServerTls, Trust, dev_certs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A stream that sends one event, then nothing more, and never ends (like a quiet tail).
struct Quiet(bool);

impl Body for Quiet {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.0 {
            Poll::Pending
        } else {
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                b"data: hello\n\n",
            )))))
        }
    }
}

type Reply = Response<Either<Full<Bytes>, Quiet>>;

/// `GET /stream`: a quiet event stream; `POST /echo`: the body read with the server's body
/// timeout (errors as the API's JSON); anything else: `ok`.
async fn handler(req: Request<Incoming>) -> Reply {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/stream") => Response::new(Either::Right(Quiet(false))),
        (&Method::POST, "/echo") => {
            match server::read_body(req.into_body(), 1 << 20, server::body_read_timeout()).await {
                Ok(body) => Response::new(Either::Left(Full::new(body))),
                Err(e) => {
                    let e = e.to_api();
                    let mut reply =
                        Response::new(Either::Left(Full::new(Bytes::from(e.to_json()))));
                    *reply.status_mut() = StatusCode::from_u16(e.code.status()).unwrap();
                    reply
                }
            }
        }
        _ => Response::new(Either::Left(Full::new(Bytes::from_static(b"ok")))),
    }
}

struct Running {
    address: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(limits: ServerLimits, tls: Option<ServerTls>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(
        listener,
        ServerOptions { limits, tls },
        handler,
        async {
            let _ = stopped.await;
        },
    ));
    Running {
        address,
        _stop: stop,
    }
}

fn limits(header_ms: u64, body_ms: u64, idle_ms: u64) -> ServerLimits {
    ServerLimits {
        header_read_timeout: Duration::from_millis(header_ms),
        body_read_timeout: Duration::from_millis(body_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_connections: 100,
    }
}

/// Reads one whole `Content-Length` response (head and body).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed before the whole response");
        all.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&all).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if all.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_slow_request_head_is_cut_at_the_header_timeout() {
    let server = start(limits(300, 10_000, 10_000), None).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET / HT").await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(answer.is_empty(), "no answer to half a request line");
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?}, before the timeout"
    );

    // Also the head of a later request on a keep-alive connection, from its first byte.
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(GET).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    stream.write_all(b"GET / HTTP/1.1\r\nhost:").await.unwrap();
    let started = Instant::now();
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "closed after {took:?}, not at the header timeout"
    );
}

#[tokio::test]
async fn a_slow_body_gets_408_naming_the_timeout() {
    let server = start(limits(5_000, 300, 10_000), None).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    let started = Instant::now();
    let answer =
        String::from_utf8(read_until_closed(&mut stream, Duration::from_secs(5)).await).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(answer.contains("body read timeout of 300ms"), "{answer}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_naming_it() {
    let server = start(limits(5_000, 5_000, 10_000), None).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2000000\r\n\r\n")
        .await
        .unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("limit of 1048576 bytes"), "{answer}");
}

#[tokio::test]
async fn hyper_alone_closes_an_idle_keep_alive_connection_at_its_header_read_timeout() {
    // Why the accept loop has its own watchdog: hyper's header read timer also runs while a
    // keep-alive connection waits for its next request, so it would stand in for the idle
    // timeout (and close idle connections at the header timeout).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_millis(300))
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(GET).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        idle.elapsed() < Duration::from_secs(2),
        "{:?}",
        idle.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout_not_the_header_one() {
    let server = start(limits(200, 5_000, 900), None).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(GET).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = idle.elapsed();
    assert!(
        took >= Duration::from_millis(850),
        "closed after {took:?}: before the idle timeout"
    );
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[tokio::test]
async fn a_stream_in_progress_outlives_the_idle_timeout() {
    let server = start(limits(200, 5_000, 300), None).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Six idle timeouts with nothing sent: the stream is still open (reading times out).
    let quiet = tokio::time::timeout(Duration::from_millis(1800), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return "closed",
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the stream was cut: {quiet:?}");
}

#[tokio::test]
async fn a_third_connection_waits_until_one_of_two_closes() {
    let mut limits = limits(5_000, 5_000, 30_000);
    limits.max_connections = 2;
    let server = start(limits, None).await;
    let mut first = TcpStream::connect(server.address).await.unwrap();
    let mut second = TcpStream::connect(server.address).await.unwrap();
    for s in [&mut first, &mut second] {
        s.write_all(GET).await.unwrap();
        assert!(read_response(s).await.starts_with("HTTP/1.1 200"));
    }
    // The kernel completes the handshake (backlog), but the server does not take it.
    let mut third = TcpStream::connect(server.address).await.unwrap();
    third.write_all(GET).await.unwrap();
    let mut buf = [0u8; 64];
    let waiting = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(
        waiting.is_err(),
        "the third connection was served: {waiting:?}"
    );
    drop(first);
    assert!(read_response(&mut third).await.starts_with("HTTP/1.1 200"));
    second.write_all(GET).await.unwrap();
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
}

fn dev_tls(dir: &std::path::Path) -> (ServerTls, Trust) {
    let certs = dev_certs(dir).unwrap();
    (
        ServerTls::from_pem_files(&certs.cert, &certs.key).unwrap(),
        Trust::ca_file(&certs.ca).unwrap(),
    )
}

#[tokio::test]
async fn https_round_trips_with_the_ca_file_and_plain_http_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, trust) = dev_tls(dir.path());
    let server = start(limits(2_000, 5_000, 10_000), Some(tls)).await;
    let port = server.address.port();
    for host in ["127.0.0.1", "localhost"] {
        let client = Client::with_trust(&format!("https://{host}:{port}"), "t", &trust);
        let body = client
            .send(
                Method::GET,
                "/",
                "text/plain",
                Vec::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(&body[..], b"ok");
        let echoed = client
            .send(
                Method::POST,
                "/echo",
                "text/plain",
                b"over tls".to_vec(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(&echoed[..], b"over tls");
    }

    // Plain HTTP to the TLS port: a transport error, quickly (no hang until the timeout).
    let plain = Client::new(&format!("http://127.0.0.1:{port}"), "t");
    let started = Instant::now();
    let e = plain
        .send(
            Method::GET,
            "/",
            "text/plain",
            Vec::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Transport { .. }), "{e}");
    assert!(e.to_string().contains("use an https:// URL"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Raw bytes of a plain request: the server closes the connection.
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"));

    // A server not signed by the given CA is refused.
    let other = tempfile::tempdir().unwrap();
    let (_, other_trust) = dev_tls(other.path());
    let stranger = Client::with_trust(&format!("https://127.0.0.1:{port}"), "t", &other_trust);
    let e = stranger
        .send(
            Method::GET,
            "/",
            "text/plain",
            Vec::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");

    // And the server still serves.
    let client = Client::with_trust(&format!("https://localhost:{port}"), "t", &trust);
    client
        .send(
            Method::GET,
            "/",
            "text/plain",
            Vec::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_cut_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, _) = dev_tls(dir.path());
    let server = start(limits(300, 5_000, 10_000), Some(tls)).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn dev_certificate_keys_are_private_and_kept_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let first = dev_certs(dir.path()).unwrap();
    let ca = std::fs::read(&first.ca).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = dev_certs(dir.path()).unwrap();
    assert_eq!(std::fs::read(&again.ca).unwrap(), ca);
}
