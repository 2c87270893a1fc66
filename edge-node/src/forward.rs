//! Forwarding a call to the node that holds the actor, over persistent HTTP/1.1 connections
//! (HTTPS to a node whose advertised address is `https://host:port`).
//! The original token travels with the call (the owner checks it again); the forwarding node
//! signs the call with its own key for the owner alone (`node:{owner}`), binding the token, the
//! presenter it vouches for, the deadline and the payload, and sends its certificate. No node
//! credential travels: a captured forwarded call is good for nothing but the one delivery.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use latchkey_caps::node::node_audience;
use latchkey_wire::ApiError;
use latchkey_wire::identity::{
    self, DEADLINE_MS, FORWARDED_BY, NodeCredentials, Outgoing, PRESENTER,
};
use latchkey_wire::path::segment;
use latchkey_wire::tls::{Connector, Trust};

use crate::error::CallError;
use crate::ports::{CallRequest, Clock, Peers};
use crate::router::MAX_RESPONSE;
use crate::table::Remote;

/// Keep-alive connections to other nodes, and the key calls are signed with.
pub(crate) struct Forwarder {
    http: Client<Connector, Full<Bytes>>,
    identity: Arc<NodeCredentials>,
    clock: Arc<dyn Clock>,
}

/// The base URL of a node's advertised address: as it is with a scheme (`https://…`), else
/// plain HTTP.
fn base_url(address: &str) -> std::borrow::Cow<'_, str> {
    if address.contains("://") {
        address.trim_end_matches('/').into()
    } else {
        format!("http://{address}").into()
    }
}

impl Forwarder {
    /// Signs as `identity`, at `clock`'s time; `trust`: the CA certificates peers serving HTTPS
    /// are checked against.
    pub(crate) fn new(
        trust: &Trust,
        identity: Arc<NodeCredentials>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let connector = trust.connector(Duration::from_secs(2));
        Forwarder {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
            identity,
            clock,
        }
    }
}

#[async_trait]
impl Peers for Forwarder {
    /// Sends the call to `remote` over HTTP. A connection that could not be made is
    /// `Unavailable` (the call was not sent; the router asks the control plane again); an answer
    /// lost after the call was sent is `OutcomeUnknown` (it may have run: never sent again).
    async fn forward(&self, remote: &Remote, call: &CallRequest) -> Result<Bytes, CallError> {
        let path = format!(
            "/v1/actors/{}/{}/{}",
            segment(&call.actor_type),
            segment(&call.key),
            segment(&call.method)
        );
        let url = format!("{}{path}", base_url(&remote.address));
        let left = call
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let authorization = [b"Bearer ".as_slice(), &call.token].concat();
        let deadline = left.as_millis().to_string();
        let presenter = call.presenter.as_deref().unwrap_or_default();
        let bound = [
            (identity::BOUND[0], authorization.as_slice()),
            (identity::BOUND[1], presenter.as_bytes()),
            (identity::BOUND[2], deadline.as_bytes()),
        ];
        let audience = node_audience(&remote.node_id);
        let signed = self.identity.sign(
            &Outgoing {
                audience: &audience,
                method: "POST",
                path: &path,
                body: &call.payload,
                bound: &bound,
            },
            self.clock.unix_millis(),
        );
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(header::AUTHORIZATION, authorization.as_slice())
            .header(FORWARDED_BY, self.identity.node_id())
            .header(DEADLINE_MS, &deadline);
        if let Some(presenter) = &call.presenter {
            request = request.header(PRESENTER, presenter);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(call.payload.clone()))
            .map_err(|e| CallError::Internal(format!("cannot build the forwarded request: {e}")))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    CallError::Unavailable(format!(
                        "node {} at {} is unreachable: {e}",
                        remote.node_id, remote.address
                    ))
                } else {
                    CallError::OutcomeUnknown(format!(
                        "node {} at {}: the call was sent but its answer was lost ({e}); it may have taken effect",
                        remote.node_id, remote.address
                    ))
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    CallError::OutcomeUnknown(format!(
                        "node {} broke off its answer ({e}); the call may have taken effect",
                        remote.node_id
                    ))
                })?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(CallError::from_api(ApiError::from_response(
                    status.as_u16(),
                    &body,
                )))
            }
        };
        tokio::time::timeout(left, exchange).await.map_err(|_| {
            CallError::OutcomeUnknown(format!(
                "node {} did not answer before the deadline; the call may have taken effect",
                remote.node_id
            ))
        })?
    }
}
