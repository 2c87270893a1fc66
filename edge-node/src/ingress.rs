//! HTTP ingress (hyper): `POST /v1/actors/{type}/{key}/{method}` with `Authorization: Bearer
//! <token>` and the payload as body; the actor's answer is the response body. Path segments are
//! percent-decoded (a key with `/` is sent as `%2F`). `GET /healthz` answers 200 only while the
//! node holds a valid lease, so load balancers stop sending to a node that cannot serve.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use latchkey_wire::{ApiError, ErrorCode};
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;

use crate::error::CallError;
use crate::forward::{DEADLINE_MS, FORWARDED_BY, NODE_TOKEN, PRESENTER};
use crate::node::NodeInner;
use crate::router::CallRequest;

type Reply = Response<Full<Bytes>>;

/// Serves until `shutdown` completes, then lets open requests finish (up to 10 s); the accept
/// loop, its limits and TLS are `latchkey_wire::server`'s.
pub(crate) async fn serve(
    node: Arc<NodeInner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let options = node.config.server.clone();
    let handler = move |req| handle(Arc::clone(&node), req);
    latchkey_wire::server::serve(listener, options, handler, shutdown).await;
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn error(e: &ApiError) -> Reply {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, "application/json", Bytes::from(e.to_json()))
}

async fn handle(node: Arc<NodeInner>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["healthz"]) => {
            if node.lease.valid_epoch().is_none() {
                let e = ApiError::new(ErrorCode::Unavailable, "this node holds no valid lease");
                error(&e)
            } else if !node.auth.has_keys() {
                let e = ApiError::new(
                    ErrorCode::Unavailable,
                    "this node has not loaded the trusted issuer keys yet",
                );
                error(&e)
            } else {
                reply(StatusCode::OK, "text/plain", Bytes::from_static(b"ok"))
            }
        }
        (&Method::POST, ["v1", "actors", actor_type, key, method]) => {
            let (actor_type, key, method) = match (decode(actor_type), decode(key), decode(method))
            {
                (Some(t), Some(k), Some(m)) => (t, k, m),
                _ => {
                    let e = ApiError::new(
                        ErrorCode::BadRequest,
                        "path segments must be percent-encoded UTF-8",
                    );
                    return error(&e);
                }
            };
            match call(&node, req, actor_type, key, method).await {
                Ok(body) => reply(StatusCode::OK, "application/json", body),
                Err(e) => error(&e.to_api()),
            }
        }
        (_, ["v1", "actors", ..]) => error(&ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no route for {} {path}: call actors with POST /v1/actors/{{type}}/{{key}}/{{method}}",
                req.method()
            ),
        )),
        _ => error(&ApiError::new(
            ErrorCode::NotFound,
            format!("no route for {path}"),
        )),
    }
}

fn decode(segment: &str) -> Option<String> {
    let s = percent_decode_str(segment).decode_utf8().ok()?.into_owned();
    (!s.is_empty()).then_some(s)
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn call(
    node: &Arc<NodeInner>,
    req: Request<Incoming>,
    actor_type: String,
    key: String,
    method: String,
) -> Result<Bytes, CallError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(|t| Bytes::copy_from_slice(t.trim_ascii()))
        .ok_or(CallError::Auth(latchkey_caps::AuthError::Invalid(
            latchkey_caps::VerifyError::Encoding("missing `Authorization: Bearer <token>` header"),
        )))?;
    let mut timeout = node.config.call_timeout;
    let mut presenter = None;
    let forwarded = match header_str(&req, FORWARDED_BY) {
        None => false,
        Some(from) => {
            // Only another node may forward, and only it may vouch for a presenter.
            let node_token = header_str(&req, NODE_TOKEN).unwrap_or_default();
            node.auth.authorize_node(node_token.as_bytes(), from)?;
            presenter = header_str(&req, PRESENTER).map(str::to_owned);
            if let Some(ms) = header_str(&req, DEADLINE_MS).and_then(|m| m.parse().ok()) {
                timeout = timeout.min(Duration::from_millis(ms));
            }
            true
        }
    };
    let max = node.config.max_payload;
    let body_timeout = node.config.server.limits.body_read_timeout;
    let payload = latchkey_wire::server::read_body(req.into_body(), max, body_timeout).await?;
    node.call(CallRequest {
        actor_type,
        key,
        method,
        payload,
        token,
        presenter,
        deadline: tokio::time::Instant::now() + timeout,
        forwarded,
    })
    .await
}
