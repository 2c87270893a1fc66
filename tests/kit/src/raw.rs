//! HTTP below the typed client, for tests of what a hostile client can send: any method, path and
//! headers over a plain hyper client, and reading a raw socket until the server closes it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// One request over plain HTTP: its status and body text.
pub async fn request(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, String) {
    let client: Hyper<_, Full<Bytes>> =
        Hyper::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::builder()
        .method(http::Method::from_bytes(method.as_bytes()).expect("an HTTP method"))
        .uri(format!("{url}{path}"));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = client
        .request(
            request
                .body(Full::new(Bytes::from(body)))
                .expect("a request"),
        )
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One POST over plain HTTP: its status and body text.
pub async fn post(
    url: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, String) {
    request(url, "POST", path, headers, body).await
}

/// Reads until the peer closes (or resets) the connection; panics if `deadline` passes first.
/// Returns what was read.
pub async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Vec<u8> {
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
    all
}
