//! HTTP ingress (hyper): `POST /v1/actors/{type}/{key}/{method}` with `Authorization: Bearer
//! <token>` and the payload as body; the actor's answer is the response body. Path segments are
//! percent-decoded (a key with `/` is sent as `%2F`). `GET /healthz` answers 200 only while the
//! node holds a valid lease, so load balancers stop sending to a node that cannot serve.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use latchkey_wire::{ApiError, ErrorCode};
use tokio::net::TcpListener;

use crate::error::CallError;
use crate::node::Node;
use crate::ports::CallRequest;
use latchkey_caps::node::{NodeAuthError, Presented};
use latchkey_wire::identity::{
    self, CERTIFICATE, CONTENT_SHA256, DEADLINE_MS, FORWARDED_BY, PRESENTER, SIGNATURE,
};

type Reply = Response<Full<Bytes>>;

/// Serves until `shutdown` completes, then lets open requests finish (up to 10 s); the accept
/// loop, its limits and TLS are `latchkey_wire::server`'s.
pub(crate) async fn serve(
    node: Arc<Node>,
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

async fn handle(node: Arc<Node>, req: Request<Incoming>) -> Reply {
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
    latchkey_wire::path::decode(segment)
        .filter(|s| !s.is_empty())
        .map(std::borrow::Cow::into_owned)
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Headers only a node may send: their presence makes a call a forwarded one, which must then
/// prove the forwarding node's identity. (Parsed once: a lookup by `&str` parses the name.)
const NODE_ONLY: [HeaderName; 5] = [
    HeaderName::from_static(FORWARDED_BY),
    HeaderName::from_static(PRESENTER),
    HeaderName::from_static(DEADLINE_MS),
    HeaderName::from_static(CERTIFICATE),
    HeaderName::from_static(SIGNATURE),
];

/// What a forwarded call's node signature established: the presenter and the deadline the
/// forwarding node vouches for, and the body digest it signed.
struct Forwarded {
    presenter: Option<String>,
    deadline_ms: Option<u64>,
    digest: [u8; 32],
}

/// Verifies the forwarding node's signature and certificate, from the headers alone.
fn forwarded(node: &Node, req: &Request<Incoming>) -> Result<Forwarded, NodeAuthError> {
    identity::check_single(|name| req.headers().get_all(name).iter().count())?;
    let need = |name: &'static str| header_str(req, name).ok_or(NodeAuthError::Missing(name));
    let certificate = need(CERTIFICATE)?;
    let signature = need(SIGNATURE)?;
    let digest = identity::parse_content_digest(need(CONTENT_SHA256)?)?;
    let bound = identity::bound_values(|n| req.headers().get(n).map(|v| v.as_bytes()));
    node.auth.authenticate_node(
        &Presented {
            certificate,
            signature,
            method: req.method().as_str(),
            path: req.uri().path_and_query().map_or("/", |p| p.as_str()),
            content_sha256: digest,
            bound: &bound,
        },
        header_str(req, FORWARDED_BY),
    )?;
    Ok(Forwarded {
        presenter: header_str(req, PRESENTER)
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        deadline_ms: header_str(req, DEADLINE_MS).and_then(|m| m.parse().ok()),
        digest,
    })
}

async fn call(
    node: &Arc<Node>,
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
    // A client cannot name a presenter or claim to forward: only a node that proves its
    // identity by its signature can, and the presenter is then the one it vouches for.
    let from_node = if NODE_ONLY.iter().any(|h| req.headers().contains_key(h)) {
        Some(forwarded(node, &req)?)
    } else {
        None
    };
    let mut timeout = node.config.call_timeout;
    if let Some(ms) = from_node.as_ref().and_then(|f| f.deadline_ms) {
        timeout = timeout.min(Duration::from_millis(ms));
    }
    let mut request = CallRequest {
        actor_type,
        key,
        method,
        payload: Bytes::new(),
        token,
        presenter: from_node.as_ref().and_then(|f| f.presenter.clone()),
        deadline: tokio::time::Instant::now() + timeout,
        forwarded: from_node.is_some(),
    };
    // The token is checked before the body is read: a caller without authority costs no more
    // than its headers.
    let verified = node.router.authorize(&request)?;
    let max = node.config.max_payload;
    let body_timeout = node.config.server.limits.body_read_timeout;
    request.payload = latchkey_wire::server::read_body(req.into_body(), max, body_timeout).await?;
    if let Some(f) = &from_node {
        identity::check_body(&request.payload, &f.digest)?;
    }
    node.router.call_authorized(request, &verified).await
}
