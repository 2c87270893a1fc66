//! The control plane's HTTP server (hyper, through `latchkey_wire::server`'s accept loop:
//! limits, timeouts, TLS): routing, bodies with size limits, bearer tokens, and
//! errors as JSON [`ApiError`]s with the right status. Handlers are in [`admin`] (JSON, for
//! operators, the CLI and Terraform) and [`node`] (postcard, for edge nodes); registry work runs
//! on blocking threads.

mod admin;
mod modules;
mod node;
mod nodeauth;
mod tail;

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use latchkey_caps::Verified;
use latchkey_wire::server::ServerOptions;
use latchkey_wire::{ApiError, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::ControlPlane;
use crate::error::RegistryError;

/// A response: a whole body, or a stream of server-sent events (`GET /v1/tail`).
type Reply = Response<Either<Full<Bytes>, tail::EventStream>>;

/// A response with a whole body.
fn whole(body: impl Into<Bytes>) -> Reply {
    Response::new(Either::Left(Full::new(body.into())))
}

/// Largest JSON body accepted (module uploads have their own limit; node routes take theirs from
/// the table, `latchkey_wire::nodeapi`).
const MAX_BODY: usize = 2 << 20;

/// Serves the admin and node APIs on `listener` with the default limits, over plain HTTP, until
/// `shutdown` completes, then lets open requests finish (up to 10 s).
pub async fn serve(
    cp: Arc<ControlPlane>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(cp, listener, ServerOptions::default(), shutdown).await;
}

/// Serves the admin and node APIs on `listener` with `options` (limits, TLS) until `shutdown`
/// completes, then lets open requests finish (up to 10 s); the accept loop is
/// [`latchkey_wire::server::serve`].
pub async fn serve_with(
    cp: Arc<ControlPlane>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let tail_owner = Arc::clone(&cp);
    let shutdown = async move {
        shutdown.await;
        // Open tail streams would otherwise hold their connections past the grace period.
        tail_owner.tail.close_all();
    };
    let handler = move |req| dispatch(Arc::clone(&cp), req);
    latchkey_wire::server::serve(listener, options, handler, shutdown).await;
}

async fn dispatch(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let reply = match route(cp, req).await {
        Ok(reply) => reply,
        Err(e) => error_reply(&e),
    };
    tracing::debug!(%method, %path, status = reply.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    reply
}

async fn route(cp: Arc<ControlPlane>, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let path = req.uri().path().to_owned();
    let decoded = segments(&path)?;
    let segments: Vec<&str> = decoded.iter().map(|s| s.as_ref()).collect();
    match segments.as_slice() {
        ["healthz"] => Ok(text(StatusCode::OK, "ok")),
        ["v1", "tail"] if req.method() == Method::GET => tail::stream(cp, req).await,
        ["v1", "nodes", id, rest @ ..] if node::is_node_route(rest) => {
            node::handle(cp, req, id, rest).await
        }
        ["v1", rest @ ..] => admin::handle(cp, req, rest).await,
        _ => Err(not_found(&path)),
    }
}

/// The path's segments, each percent-decoded ([`latchkey_wire::path`]: a name may hold `/`);
/// borrowed from `path` unless escaped.
fn segments(path: &str) -> Result<Vec<Cow<'_, str>>, ApiError> {
    path.trim_matches('/')
        .split('/')
        .map(|s| {
            latchkey_wire::path::decode(s).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("path segment `{s}` is not percent-encoded UTF-8"),
                )
            })
        })
        .collect()
}

fn not_found(path: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no route for {path}"))
}

fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not supported on {path}"),
    )
}

fn error_reply(e: &ApiError) -> Reply {
    let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut reply = whole(e.to_json());
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut reply = whole(Bytes::from_static(body.as_bytes()));
    *reply.status_mut() = status;
    reply
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
    let body = serde_json::to_vec(value).expect("API types serialise");
    let mut reply = whole(body);
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

/// `204 No Content`: a deletion done.
fn no_content() -> Reply {
    let mut reply = whole(Bytes::new());
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}

fn binary(content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut reply = whole(body);
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// Reads the whole body, refusing more than `max` bytes with 413 and a body slower than the
/// server's body read timeout with 408.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, ApiError> {
    latchkey_wire::server::read_body(body, max, latchkey_wire::server::body_read_timeout())
        .await
        .map_err(ApiError::from)
}

/// Parses a JSON body, naming what is wrong with it.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed JSON body: {e}")))
}

/// The token in `Authorization: Bearer <token>`.
fn bearer<B>(req: &Request<B>) -> Result<Vec<u8>, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "missing `Authorization: Bearer <token>` header",
        )
    })?;
    let token = value.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "the Authorization header must be `Bearer <token>`",
        )
    })?;
    Ok(token.trim_ascii().to_vec())
}

/// Verifies the request's token and authorizes `request` with it.
fn authorize<B>(
    cp: &ControlPlane,
    req: &Request<B>,
    request: &latchkey_caps::Request<'_>,
) -> Result<Arc<Verified>, ApiError> {
    let token = bearer(req)?;
    cp.authority.check(&token, request).map_err(ApiError::from)
}

/// Runs registry work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| e.to_api()),
        Err(e) => Err(ApiError::new(
            ErrorCode::Internal,
            format!("registry task failed: {e}"),
        )),
    }
}

/// The value of query parameter `name`.
/// A query parameter, percent-decoded (`+` is a space).
fn param<B>(req: &Request<B>, name: &str) -> Result<Option<String>, ApiError> {
    query(req, name)
        .map(|v| {
            latchkey_wire::path::decode(&v.replace('+', " "))
                .map(Cow::into_owned)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::BadRequest,
                        format!("query parameter `{name}` is not percent-encoded UTF-8"),
                    )
                })
        })
        .transpose()
}

fn query<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}
