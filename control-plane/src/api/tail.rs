//! Tail routes: `GET /v1/tail` streams a session's messages to a client as server-sent events;
//! `GET`/`POST /v1/nodes/{id}/tail` let nodes long-poll the sessions' filters and send events.
//!
//! A session's filter is the request's narrowed to the token (`tail` right; a filter outside the
//! token is refused, 403). The token is checked again every [`RECHECK`], so a stream ends once
//! its token expires or is revoked.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::Either;
use hyper::body::{Body, Frame, Incoming};
use latchkey_caps::{Capability, KeyScope, Rights};
use latchkey_wire::tail::{
    KeyFilter, MAX_TAIL_BATCH, TailBatch, TailFilter, TailInterest, TailInterestRequest,
    TailMessage,
};
use latchkey_wire::{ApiError, ErrorCode};
use tokio::sync::mpsc;

use super::{Reply, bearer, blocking, param};
use crate::ControlPlane;
use crate::tail::Subscription;

/// How often an open stream re-checks its token, and sends a comment so that a vanished client
/// is noticed.
const RECHECK: Duration = Duration::from_secs(15);

/// Longest a node's interest long-poll waits.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Frames of a stream buffered towards the connection.
const STREAM_BUFFER: usize = 64;

/// Longest a client may leave the stream unread (its buffer full) before its session ends: a
/// client that stops reading does not keep a session slot.
const UNREAD: Duration = Duration::from_secs(30);

/// A response body fed from a channel: the frames of a server-sent event stream.
pub(super) struct EventStream(mpsc::Receiver<Bytes>);

impl Body for EventStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// What the request asks to follow, as a capability to narrow the token's with.
fn requested(req: &Request<Incoming>) -> Result<Capability, ApiError> {
    let key = param(req, "key")?;
    let prefix = param(req, "key_prefix")?;
    if key.is_some() && prefix.is_some() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "give `key` or `key_prefix`, not both",
        ));
    }
    let methods = param(req, "methods")?.map(|m| {
        m.split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect()
    });
    Ok(Capability {
        actor_type: param(req, "actor_type")?,
        keys: key.map(KeyScope::Exact).or(prefix.map(KeyScope::Prefix)),
        methods,
        ..Capability::default()
    })
}

/// The session filter: `asked` within the token's capability `granted` (unset fields take the
/// token's), or the field that would widen it.
pub(crate) fn session_filter(
    granted: &Capability,
    asked: &Capability,
) -> Result<TailFilter, ApiError> {
    let effective = granted.narrow(asked).map_err(|field| {
        ApiError::new(
            ErrorCode::Forbidden,
            format!("forbidden: the tail asks for a {field} outside the token's"),
        )
    })?;
    Ok(TailFilter {
        actor_type: effective.actor_type,
        keys: effective.keys.map(|k| match k {
            KeyScope::Exact(k) => KeyFilter::Exact(k),
            KeyScope::Prefix(p) => KeyFilter::Prefix(p),
        }),
        methods: effective.methods.map(|m| m.into_iter().collect()),
    })
}

/// `GET /v1/tail?actor_type=&key=|key_prefix=&methods=a,b`: a server-sent event stream of
/// [`TailMessage`]s, one JSON object per `data:` field.
pub(super) async fn stream(
    cp: Arc<ControlPlane>,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let token = bearer(&req)?;
    let verified = cp
        .authority
        .check_right(&token, Rights::TAIL)
        .map_err(ApiError::from)?;
    let filter = session_filter(verified.capability(), &requested(&req)?)?;
    let registry = Arc::clone(&cp.registry);
    let live_nodes: Vec<String> = blocking(move || registry.nodes())
        .await?
        .into_iter()
        .filter(|n| n.live)
        .map(|n| n.id)
        .collect();
    let subscription = cp
        .tail
        .subscribe(filter, live_nodes)
        .map_err(|e| ApiError::new(ErrorCode::Overloaded, e.to_string()))?;
    let (frames, body) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(forward(cp, token, subscription, frames));
    let mut reply = Response::new(Either::Right(EventStream(body)));
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(reply)
}

/// One `data:` event.
fn event(message: &TailMessage) -> Bytes {
    let json = serde_json::to_string(message).expect("tail messages serialise");
    Bytes::from(format!("data: {json}\n\n"))
}

/// Moves a session's messages into its stream until the client leaves, the token stops being
/// valid, or the session is closed (shutdown).
async fn forward(
    cp: Arc<ControlPlane>,
    token: Vec<u8>,
    mut subscription: Subscription,
    frames: mpsc::Sender<Bytes>,
) {
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    loop {
        let frame = tokio::select! {
            message = subscription.messages.recv() => {
                let Some(message) = message else { return };
                event(&message)
            }
            _ = recheck.tick() => {
                if let Err(e) = cp.authority.check_right(&token, Rights::TAIL) {
                    let json = String::from_utf8_lossy(&ApiError::from(e).to_json()).into_owned();
                    let _ = frames.try_send(Bytes::from(format!("event: error\ndata: {json}\n\n")));
                    return;
                }
                Bytes::from_static(b": still here\n\n")
            }
            () = frames.closed() => return,
        };
        match tokio::time::timeout(UNREAD, frames.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// `GET /v1/nodes/{id}/tail?after=R&wait_ms=`: the sessions' filters once their revision is not
/// `R` (or after the wait); asking with `after = R` records that the node applies `R`.
pub(super) async fn interest(
    cp: &ControlPlane,
    node: &str,
    request: TailInterestRequest,
) -> Result<TailInterest, ApiError> {
    let TailInterestRequest { after, wait_ms } = request;
    let wait = wait_ms
        .map_or(MAX_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    if let Some(after) = after {
        cp.tail.applied(node, after);
    }
    let mut changes = cp.tail.changes();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        changes.borrow_and_update();
        let interest = cp.tail.interest();
        if after != Some(interest.revision) {
            return Ok(interest);
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            return Ok(interest);
        }
    }
}

/// `POST /v1/nodes/{id}/tail`: a node's events.
pub(super) fn publish(cp: &ControlPlane, node: &str, batch: TailBatch) -> Result<(), ApiError> {
    if batch.events.len() > MAX_TAIL_BATCH {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "a tail batch holds at most {MAX_TAIL_BATCH} events; this one has {}",
                batch.events.len()
            ),
        ));
    }
    cp.tail.publish(node, batch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_the_request_narrowed_to_the_token() {
        let token = Capability::unrestricted()
            .actor_type("counter")
            .key_prefix("user/");
        let all = session_filter(&token, &Capability::default()).unwrap();
        assert_eq!(all.actor_type.as_deref(), Some("counter"));
        assert_eq!(all.keys, Some(KeyFilter::Prefix("user/".into())));
        let one = session_filter(&token, &Capability::default().key("user/1")).unwrap();
        assert_eq!(one.keys, Some(KeyFilter::Exact("user/1".into())));
        let other_type =
            session_filter(&token, &Capability::default().actor_type("chat-room")).unwrap_err();
        assert_eq!(other_type.code, ErrorCode::Forbidden);
        assert!(
            other_type.message.contains("actor type"),
            "{}",
            other_type.message
        );
        let other_keys =
            session_filter(&token, &Capability::default().key_prefix("admin/")).unwrap_err();
        assert!(
            other_keys.message.contains("key scope"),
            "{}",
            other_keys.message
        );
        let methods = Capability::unrestricted().methods(["get"]);
        assert!(session_filter(&methods, &Capability::default().methods(["get", "inc"])).is_err());
        assert_eq!(
            session_filter(&methods, &Capability::default())
                .unwrap()
                .methods,
            Some(vec!["get".to_owned()])
        );
    }
}
