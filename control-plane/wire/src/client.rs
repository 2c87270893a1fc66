//! A typed async client for the control plane's admin (JSON) and node (postcard) APIs, over
//! keep-alive HTTP/1.1 connections, plain or TLS (feature `client`). Used by edge nodes, the CLI,
//! the Terraform provider and tests.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admin::{
    ActivationInfo, CanaryRequest, ClockInfo, DeployRequest, DeploymentDetail, DeploymentInfo,
    EnrolmentRequest, KeyInfo, MintRequest, MintResponse, ModuleInfo, NodeInfo, ReasonRequest,
    RegionInfo, RegionRequest, RevocationInfo, RevokeRequest, RollbackPolicy, RotateResponse,
};
use crate::identity::{self, NodeCredentials, Outgoing};
use crate::node::{
    Activation, CertificateRequest, CertificateResponse, Changes, CommitBatchRequest,
    CommitBatchResponse, CommitRequest, CommitResponse, EnrolRequest, EnsureActivationRequest,
    Fence, HeartbeatRequest, HeartbeatResponse, ModuleRequest, OutcomeAck, OutcomeReport,
    ReadStateRequest, ReadStateResponse, RegisterRequest, RegisterResponse, SelfToken, SyncRequest,
    SyncSnapshot, UpgradeRequest, WatchRequest,
};
use crate::nodeapi::{self, NodeRoute};
use crate::path::{self, segment};
use crate::tail::{TailBatch, TailInterest, TailInterestRequest};
use crate::tls::{Connector, Trust};
use crate::{ApiError, ErrorCode, NODE_CONTENT_TYPE};
use latchkey_caps::node::CONTROL_PLANE_AUDIENCE;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// The URL called.
        url: String,
        /// What happened.
        message: String,
    },
    /// No answer within the timeout.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The answer did not decode.
    #[error("unexpected response from {url}: {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        message: String,
    },
}

impl ClientError {
    /// Whether the same call may succeed later (unreachable server, timeouts, 503/429/504).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Api(e) => e.retryable,
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            ClientError::Decode { .. } => false,
        }
    }

    /// The API error code, if the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(e) => Some(e.code),
            _ => None,
        }
    }
}

/// Called with the bytes of a request body handed to the connection so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Slices a request body is sent in (so that [`Progress`] moves while a large upload is sent).
const BODY_SLICE: usize = 64 << 10;

/// How long a client waits for an answer unless told otherwise ([`Client::with_timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A request body: the bytes in one frame, or, with a [`Progress`] to report to, one slice at a
/// time.
pub struct RequestBody {
    rest: Bytes,
    sent: u64,
    progress: Option<Progress>,
}

impl RequestBody {
    fn new(data: Bytes, progress: Option<Progress>) -> Self {
        RequestBody {
            rest: data,
            sent: 0,
            progress,
        }
    }
}

impl RequestBody {
    /// The bytes not sent yet (all of them, before sending).
    fn bytes(&self) -> &[u8] {
        &self.rest
    }
}

/// Unix milliseconds now. A clock before 1970 gives 0, which every recipient refuses as stale:
/// signing fails closed.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("remaining", &self.rest.len())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        // Without a progress report, the whole body is one frame (as before: a commit batch is
        // not cut up for nothing).
        let Some(progress) = self.progress.clone() else {
            let all = std::mem::take(&mut self.rest);
            self.sent += all.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(all))));
        };
        let n = self.rest.len().min(BODY_SLICE);
        let slice = self.rest.split_to(n);
        self.sent += n as u64;
        progress(self.sent);
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// How a client proves its authority: a bearer capability (operators, the CLI, Terraform,
/// tests), or, for an edge node, a signature by its own key on every request (no bearer
/// credential ever leaves the node).
#[derive(Clone)]
enum Authority {
    Bearer(String),
    Node(Arc<NodeCredentials>),
}

impl std::fmt::Debug for Authority {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authority::Bearer(_) => f.write_str("Bearer(…)"),
            Authority::Node(c) => write!(f, "Node({})", c.node_id()),
        }
    }
}

/// A client bound to one server and one bearer token or node identity.
#[derive(Clone, Debug)]
pub struct Client {
    http: Hyper<Connector, RequestBody>,
    base: String,
    auth: Authority,
    timeout: Duration,
}

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:7070`, or `https://…`, trusting the
    /// platform's certificate authorities) presenting `token`.
    pub fn new(base_url: &str, token: &str) -> Self {
        Client::with_trust(base_url, token, &Trust::for_url(base_url))
    }

    /// A client for `base_url` presenting `token`, trusting `trust` for `https://`.
    pub fn with_trust(base_url: &str, token: &str, trust: &Trust) -> Self {
        let connector = trust.connector(Duration::from_secs(5));
        let http = Hyper::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            auth: Authority::Bearer(token.trim().to_owned()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client for an edge node: every request is signed by the node's key, for audience
    /// `control-plane`, and carries its certificate.
    pub fn for_node(base_url: &str, credentials: Arc<NodeCredentials>) -> Self {
        Client {
            auth: Authority::Node(credentials),
            ..Client::new(base_url, "")
        }
    }

    /// The same server and connection pool (and trust), signing as a node with `credentials`.
    pub fn as_node(&self, credentials: Arc<NodeCredentials>) -> Self {
        Client {
            auth: Authority::Node(credentials),
            ..self.clone()
        }
    }

    /// The same server and connection pool, another token.
    pub fn with_token(&self, token: &str) -> Self {
        Client {
            auth: Authority::Bearer(token.trim().to_owned()),
            ..self.clone()
        }
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Client {
            timeout,
            ..self.clone()
        }
    }

    /// How long a call waits for an answer ([`DEFAULT_TIMEOUT`] unless [`Client::with_timeout`]).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the body of a 2xx answer; any other status becomes
    /// [`ClientError::Api`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let body = RequestBody::new(Bytes::from(body), None);
        self.exchange(method, path, content_type, body, timeout)
            .await
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let url = format!("{}{path}", self.base);
        let exchange = async {
            let response = self.respond(method, &url, content_type, body).await?;
            let status = response.status();
            let body = collect(&url, response.into_body()).await?;
            if status.is_success() {
                Ok(body)
            } else {
                Err(ClientError::Api(ApiError::from_response(
                    status.as_u16(),
                    &body,
                )))
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout,
            })?
    }

    /// Sends a request and returns the response, whatever its status, its body unread.
    async fn respond(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: RequestBody,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let mut request = Request::builder()
            .method(&method)
            .uri(url)
            .header(header::CONTENT_TYPE, content_type);
        match &self.auth {
            Authority::Bearer(token) => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            Authority::Node(credentials) => {
                let path = url
                    .parse::<http::Uri>()
                    .ok()
                    .and_then(|u| u.path_and_query().map(|p| p.as_str().to_owned()))
                    .unwrap_or_default();
                let bound = identity::bound_values(|_| None);
                let outgoing = Outgoing {
                    audience: CONTROL_PLANE_AUDIENCE,
                    method: method.as_str(),
                    path: &path,
                    body: body.bytes(),
                    bound: &bound,
                };
                for (name, value) in credentials.sign(&outgoing, unix_millis()) {
                    request = request.header(name, value);
                }
            }
        }
        let request = request.body(body).map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        self.http
            .request(request)
            .await
            .map_err(|e| ClientError::Transport {
                url: url.to_owned(),
                message: error_chain(&e),
            })
    }

    /// `GET path` whose answer is a stream (server-sent events): waits up to the client's
    /// timeout for the response to start, then returns its body to read as it arrives. A non-2xx
    /// answer is read whole and becomes [`ClientError::Api`].
    pub async fn stream(&self, path: &str) -> Result<Incoming, ClientError> {
        let url = format!("{}{path}", self.base);
        let started = self.respond(
            Method::GET,
            &url,
            "application/json",
            RequestBody::new(Bytes::new(), None),
        );
        let response = tokio::time::timeout(self.timeout, started)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout: self.timeout,
            })??;
        let status = response.status();
        if status.is_success() {
            return Ok(response.into_body());
        }
        let body = tokio::time::timeout(self.timeout, collect(&url, response.into_body()))
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout: self.timeout,
            })??;
        Err(ClientError::Api(ApiError::from_response(
            status.as_u16(),
            &body,
        )))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let body = body
            .map(|b| serde_json::to_vec(b).expect("requests serialise"))
            .unwrap_or_default();
        let bytes = self
            .send(method, path, "application/json", body, self.timeout)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: format!("{}{path}", self.base),
            message: e.to_string(),
        })
    }

    // ----- admin API -----

    /// Uploads a WASM component.
    pub async fn upload_module(&self, component: Vec<u8>) -> Result<ModuleInfo, ClientError> {
        self.upload_module_with_progress(component, None).await
    }

    /// Uploads a WASM component, reporting the bytes sent so far to `progress` as the upload
    /// goes (the answer comes once the control plane has validated and stored it).
    pub async fn upload_module_with_progress(
        &self,
        component: Vec<u8>,
        progress: Option<Progress>,
    ) -> Result<ModuleInfo, ClientError> {
        let body = RequestBody::new(Bytes::from(component), progress);
        let bytes = self
            .exchange(
                Method::POST,
                "/v1/modules",
                "application/wasm",
                body,
                self.timeout,
            )
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: format!("{}/v1/modules", self.base),
            message: e.to_string(),
        })
    }

    /// Every uploaded module.
    pub async fn modules(&self) -> Result<Vec<ModuleInfo>, ClientError> {
        self.json(Method::GET, "/v1/modules", None::<&()>).await
    }

    /// One module's metadata.
    pub async fn module(&self, content_id: &str) -> Result<ModuleInfo, ClientError> {
        self.json(
            Method::GET,
            &format!("/v1/modules/{}", segment(content_id)),
            None::<&()>,
        )
        .await
    }

    /// Makes `version` active for every key of `actor_type`.
    pub async fn deploy(
        &self,
        actor_type: &str,
        version: &str,
        reason: Option<&str>,
    ) -> Result<DeploymentInfo, ClientError> {
        let body = DeployRequest {
            version: version.to_owned(),
            reason: reason.map(str::to_owned),
        };
        self.json(
            Method::POST,
            &format!("/v1/deployments/{}", segment(actor_type)),
            Some(&body),
        )
        .await
    }

    /// Runs `version` on `percent`% of the keys of `actor_type`.
    pub async fn canary(
        &self,
        actor_type: &str,
        version: &str,
        percent: f64,
    ) -> Result<DeploymentInfo, ClientError> {
        let body = CanaryRequest {
            version: version.to_owned(),
            percent,
            reason: None,
        };
        self.json(
            Method::POST,
            &format!("/v1/deployments/{}/canary", segment(actor_type)),
            Some(&body),
        )
        .await
    }

    /// `promote`, `abort` or `rollback`.
    pub async fn deployment_action(
        &self,
        actor_type: &str,
        action: &str,
        reason: Option<&str>,
    ) -> Result<DeploymentInfo, ClientError> {
        let body = ReasonRequest {
            reason: reason.map(str::to_owned),
        };
        self.json(
            Method::POST,
            &format!("/v1/deployments/{}/{action}", segment(actor_type)),
            Some(&body),
        )
        .await
    }

    /// Replaces the rollback policy.
    pub async fn set_policy(
        &self,
        actor_type: &str,
        policy: &RollbackPolicy,
    ) -> Result<DeploymentInfo, ClientError> {
        self.json(
            Method::PUT,
            &format!("/v1/deployments/{}/policy", segment(actor_type)),
            Some(policy),
        )
        .await
    }

    /// A deployment and its history.
    pub async fn deployment(&self, actor_type: &str) -> Result<DeploymentDetail, ClientError> {
        self.json(
            Method::GET,
            &format!("/v1/deployments/{}", segment(actor_type)),
            None::<&()>,
        )
        .await
    }

    /// Every deployment.
    pub async fn deployments(&self) -> Result<Vec<DeploymentInfo>, ClientError> {
        self.json(Method::GET, "/v1/deployments", None::<&()>).await
    }

    /// Every node.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ClientError> {
        self.json(Method::GET, "/v1/nodes", None::<&()>).await
    }

    /// Activations, of one actor type or all.
    pub async fn activations(
        &self,
        actor_type: Option<&str>,
    ) -> Result<Vec<ActivationInfo>, ClientError> {
        let path = match actor_type {
            Some(t) => format!("/v1/activations?actor_type={}", path::query_value(t)),
            None => "/v1/activations".to_owned(),
        };
        self.json(Method::GET, &path, None::<&()>).await
    }

    /// Mints a token no wider than this client's.
    pub async fn mint(&self, request: &MintRequest) -> Result<MintResponse, ClientError> {
        self.json(Method::POST, "/v1/tokens", Some(request)).await
    }

    /// Revokes a token.
    pub async fn revoke(&self, request: &RevokeRequest) -> Result<RevocationInfo, ClientError> {
        self.json(Method::POST, "/v1/revocations", Some(request))
            .await
    }

    /// Every revoked token id.
    pub async fn revocations(&self) -> Result<Vec<RevocationInfo>, ClientError> {
        self.json(Method::GET, "/v1/revocations", None::<&()>).await
    }

    /// The revocation of `token_id` (`NotFound` if it is not revoked).
    pub async fn revocation(&self, token_id: &str) -> Result<RevocationInfo, ClientError> {
        self.json(
            Method::GET,
            &format!("/v1/revocations/{}", segment(token_id)),
            None::<&()>,
        )
        .await
    }

    /// Deletes a module no deployment uses.
    pub async fn delete_module(&self, content_id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/modules/{}", segment(content_id)))
            .await
    }

    /// Stops running `actor_type`: no active version, no canary (its stored state is kept).
    pub async fn remove_deployment(
        &self,
        actor_type: &str,
        reason: Option<&str>,
    ) -> Result<DeploymentInfo, ClientError> {
        let body = ReasonRequest {
            reason: reason.map(str::to_owned),
        };
        self.json(
            Method::DELETE,
            &format!("/v1/deployments/{}", segment(actor_type)),
            Some(&body),
        )
        .await
    }

    /// Every declared region.
    pub async fn regions(&self) -> Result<Vec<RegionInfo>, ClientError> {
        self.json(Method::GET, "/v1/regions", None::<&()>).await
    }

    /// One declared region.
    pub async fn region(&self, name: &str) -> Result<RegionInfo, ClientError> {
        self.json(
            Method::GET,
            &format!("/v1/regions/{}", segment(name)),
            None::<&()>,
        )
        .await
    }

    /// Declares a region, or changes it.
    pub async fn put_region(
        &self,
        name: &str,
        request: &RegionRequest,
    ) -> Result<RegionInfo, ClientError> {
        self.json(
            Method::PUT,
            &format!("/v1/regions/{}", segment(name)),
            Some(request),
        )
        .await
    }

    /// Removes a declared region.
    pub async fn delete_region(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/regions/{}", segment(name))).await
    }

    async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send(
            Method::DELETE,
            path,
            "application/json",
            Vec::new(),
            self.timeout,
        )
        .await
        .map(drop)
    }

    /// The store's current version next to the control plane's wall clock (turns the versions
    /// in other answers into dates).
    pub async fn clock(&self) -> Result<ClockInfo, ClientError> {
        self.json(Method::GET, "/v1/clock", None::<&()>).await
    }

    /// Every issuer key.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.json(Method::GET, "/v1/keys", None::<&()>).await
    }

    /// Creates a new active issuer key.
    pub async fn rotate_key(&self) -> Result<RotateResponse, ClientError> {
        self.json(Method::POST, "/v1/keys/rotate", None::<&()>)
            .await
    }

    /// Stops trusting an issuer key.
    pub async fn retire_key(&self, key_id: &str) -> Result<Vec<KeyInfo>, ClientError> {
        self.json(
            Method::POST,
            &format!("/v1/keys/{}/retire", segment(key_id)),
            None::<&()>,
        )
        .await
    }

    /// Makes a single-use enrolment capability for `node_id` (admin), valid for
    /// `expires_in_secs` (the control plane's default when `None`).
    pub async fn enrolment_token(
        &self,
        node_id: &str,
        expires_in_secs: Option<u64>,
    ) -> Result<MintResponse, ClientError> {
        self.json(
            Method::POST,
            &format!("/v1/nodes/{}/enrolment", segment(node_id)),
            Some(&EnrolmentRequest { expires_in_secs }),
        )
        .await
    }

    /// Removes `node_id`'s identity (admin): its key is revoked, so its certificates stop
    /// verifying everywhere, and it must be enrolled again with a new key.
    pub async fn remove_node(&self, node_id: &str) -> Result<RevocationInfo, ClientError> {
        self.json(
            Method::DELETE,
            &format!("/v1/nodes/{}/identity", segment(node_id)),
            None::<&()>,
        )
        .await
    }

    // ----- node API -----

    /// Sends `request` to its route of the node API ([`crate::nodeapi`]) for node `node_id`,
    /// signed as this client's node, and decodes the answer. A long-poll is allowed its wait and
    /// [`LONG_POLL_GRACE`] more; any other request the client's timeout.
    pub async fn node<R: NodeRoute>(
        &self,
        node_id: &str,
        request: &R,
    ) -> Result<R::Response, ClientError> {
        let timeout = request
            .long_poll()
            .map_or(self.timeout, |wait| wait + LONG_POLL_GRACE);
        self.node_within(node_id, request, timeout).await
    }

    /// [`node`](Self::node), allowed `timeout` to answer.
    async fn node_within<R: NodeRoute>(
        &self,
        node_id: &str,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let path = nodeapi::path(node_id, &request.target());
        let bytes = self
            .send(
                http_method(R::METHOD),
                &path,
                NODE_CONTENT_TYPE,
                request.body(),
                timeout,
            )
            .await?;
        R::decode_response(&bytes).map_err(|e| ClientError::Decode {
            url: format!("{}{path}", self.base),
            message: e.message,
        })
    }

    /// Enrols a node: presents `enrolment_token` and proves possession of `credentials`' key by
    /// signing the request with it. Answers the node's first certificate.
    ///
    /// Not through [`node`](Self::node): the request is signed with `credentials` (not this
    /// client's authority), binds the enrolment token's `Authorization` header, and carries no
    /// certificate (the node has none yet). Its path, body and answer still come from the table.
    pub async fn enrol(
        &self,
        credentials: &NodeCredentials,
        enrolment_token: &str,
    ) -> Result<CertificateResponse, ClientError> {
        let request = EnrolRequest {
            public_key: credentials.public_key().to_string(),
        };
        let path = nodeapi::path(credentials.node_id(), &request.target());
        let url = format!("{}{path}", self.base);
        let body = request.body();
        let bearer = format!("Bearer {}", enrolment_token.trim());
        let bound =
            identity::bound_values(|name| (name == "authorization").then_some(bearer.as_bytes()));
        let path_and_query = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_owned()))
            .unwrap_or(path);
        let method = http_method(EnrolRequest::METHOD);
        let outgoing = Outgoing {
            audience: CONTROL_PLANE_AUDIENCE,
            method: method.as_str(),
            path: &path_and_query,
            body: &body,
            bound: &bound,
        };
        let mut request = Request::builder()
            .method(&method)
            .uri(&url)
            .header(header::CONTENT_TYPE, NODE_CONTENT_TYPE)
            .header(header::AUTHORIZATION, &bearer);
        for (name, value) in credentials.sign(&outgoing, unix_millis()) {
            if name != identity::CERTIFICATE {
                request = request.header(name, value);
            }
        }
        let request = request
            .body(RequestBody::new(Bytes::from(body), None))
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let exchange = async {
            let response =
                self.http
                    .request(request)
                    .await
                    .map_err(|e| ClientError::Transport {
                        url: url.clone(),
                        message: error_chain(&e),
                    })?;
            let status = response.status();
            let bytes = collect(&url, response.into_body()).await?;
            if !status.is_success() {
                return Err(ClientError::Api(ApiError::from_response(
                    status.as_u16(),
                    &bytes,
                )));
            }
            EnrolRequest::decode_response(&bytes).map_err(|e| ClientError::Decode {
                url: url.clone(),
                message: e.message,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                timeout: self.timeout,
            })?
    }

    /// Renews this node's certificate (the request is signed with the current one).
    pub async fn renew_certificate(
        &self,
        node_id: &str,
    ) -> Result<CertificateResponse, ClientError> {
        self.node(node_id, &CertificateRequest).await
    }

    /// Registers a node (new epoch).
    pub async fn register(
        &self,
        node_id: &str,
        request: &RegisterRequest,
    ) -> Result<RegisterResponse, ClientError> {
        self.node(node_id, request).await
    }

    /// Heartbeats, with a timeout (a late answer is useless to lease logic).
    pub async fn heartbeat(
        &self,
        node_id: &str,
        request: &HeartbeatRequest,
        timeout: Duration,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.node_within(node_id, request, timeout).await
    }

    /// Finds or places an actor's activation.
    pub async fn ensure_activation(
        &self,
        node_id: &str,
        request: &EnsureActivationRequest,
    ) -> Result<Activation, ClientError> {
        self.node(node_id, request).await
    }

    /// Fenced state read.
    pub async fn read_state(
        &self,
        node_id: &str,
        request: &ReadStateRequest,
    ) -> Result<ReadStateResponse, ClientError> {
        self.node(node_id, request).await
    }

    /// Fenced state commit.
    pub async fn commit_state(
        &self,
        node_id: &str,
        request: &CommitRequest,
    ) -> Result<CommitResponse, ClientError> {
        self.node(node_id, request).await
    }

    /// Several activations' fenced state commits in one request (one transaction).
    pub async fn commit_batch(
        &self,
        node_id: &str,
        request: &CommitBatchRequest,
    ) -> Result<CommitBatchResponse, ClientError> {
        self.node(node_id, request).await
    }

    /// Switches an activation to a new version (with its upgrade hook's writes).
    pub async fn upgrade_activation(
        &self,
        node_id: &str,
        request: &UpgradeRequest,
    ) -> Result<Activation, ClientError> {
        self.node(node_id, request).await
    }

    /// Reports call outcomes per version.
    pub async fn report_outcomes(
        &self,
        node_id: &str,
        report: &OutcomeReport,
    ) -> Result<OutcomeAck, ClientError> {
        self.node(node_id, report).await
    }

    /// A capability for the actor an activation holds.
    pub async fn self_token(&self, node_id: &str, fence: &Fence) -> Result<SelfToken, ClientError> {
        self.node(node_id, fence).await
    }

    /// A module's bytes.
    pub async fn fetch_module(
        &self,
        node_id: &str,
        content_id: &str,
    ) -> Result<Bytes, ClientError> {
        let request = ModuleRequest {
            content_id: content_id.to_owned(),
        };
        self.node(node_id, &request).await.map(Bytes::from)
    }

    /// Everything a node follows.
    pub async fn sync(&self, node_id: &str) -> Result<SyncSnapshot, ClientError> {
        self.node(node_id, &SyncRequest).await
    }

    /// Changes after `cursor`, waiting up to `wait` for some.
    pub async fn watch(
        &self,
        node_id: &str,
        cursor: &str,
        wait: Duration,
    ) -> Result<Changes, ClientError> {
        self.node(node_id, &WatchRequest::new(cursor, wait)).await
    }

    /// Long-polls the tail sessions' filters: answered when their revision differs from
    /// `after`, or after `wait` (asking with `after` acknowledges that revision).
    pub async fn tail_interest(
        &self,
        node_id: &str,
        after: u64,
        wait: Duration,
    ) -> Result<TailInterest, ClientError> {
        self.node(node_id, &TailInterestRequest::new(after, wait))
            .await
    }

    /// Sends tail events.
    pub async fn push_tail(&self, node_id: &str, batch: &TailBatch) -> Result<(), ClientError> {
        self.node(node_id, batch).await
    }
}

/// What a long-poll of the node API is allowed beyond its wait to answer.
pub const LONG_POLL_GRACE: Duration = Duration::from_secs(5);

/// The `http` method of a node route.
fn http_method(method: nodeapi::Method) -> Method {
    match method {
        nodeapi::Method::Get => Method::GET,
        nodeapi::Method::Post => Method::POST,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    // What hyper says when a plain-HTTP request reaches a TLS port (the answer is a TLS alert).
    if message.contains("invalid HTTP version parsed") {
        message
            .push_str(" (the answer is not HTTP: if the server serves HTTPS, use an https:// URL)");
    }
    message
}

/// Reads a whole response body.
async fn collect(url: &str, body: Incoming) -> Result<Bytes, ClientError> {
    body.collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        })
}
