//! A typed async client for the control plane's admin (JSON) and node (postcard) APIs, over
//! keep-alive HTTP/1.1 connections (feature `client`). Used by edge nodes, the CLI, the Terraform
//! provider and tests.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admin::{
    ActivationInfo, CanaryRequest, DeployRequest, DeploymentDetail, DeploymentInfo, KeyInfo,
    MintRequest, MintResponse, ModuleInfo, NodeInfo, NodeTokenResponse, ReasonRequest, RegionInfo,
    RegionRequest, RevocationInfo, RevokeRequest, RollbackPolicy,
};
use crate::node::{
    Activation, Changes, CommitBatchRequest, CommitBatchResponse, CommitRequest, CommitResponse,
    EnsureActivationRequest, Fence, HeartbeatRequest, HeartbeatResponse, OutcomeAck, OutcomeReport,
    ReadStateRequest, ReadStateResponse, RegisterRequest, RegisterResponse, SelfToken,
    SyncSnapshot, UpgradeRequest,
};
use crate::{ApiError, ErrorCode, NODE_CONTENT_TYPE, decode, encode};

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

/// A client bound to one server and one bearer token.
#[derive(Clone, Debug)]
pub struct Client {
    http: Hyper<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
    timeout: Duration,
}

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:7070`) presenting `token`.
    pub fn new(base_url: &str, token: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let http = Hyper::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The same server and connection pool, another token.
    pub fn with_token(&self, token: &str) -> Self {
        Client {
            token: token.trim().to_owned(),
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
        let url = format!("{}{path}", self.base);
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
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
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Transport {
                    url: url.clone(),
                    message: e.to_string(),
                })?
                .to_bytes();
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

    async fn node<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let bytes = self
            .send(method, path, NODE_CONTENT_TYPE, body, timeout)
            .await?;
        decode(&bytes).map_err(|e| ClientError::Decode {
            url: format!("{}{path}", self.base),
            message: e.message,
        })
    }

    // ----- admin API -----

    /// Uploads a WASM component.
    pub async fn upload_module(&self, component: Vec<u8>) -> Result<ModuleInfo, ClientError> {
        let bytes = self
            .send(
                Method::POST,
                "/v1/modules",
                "application/wasm",
                component,
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
            &format!("/v1/modules/{content_id}"),
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
            &format!("/v1/deployments/{actor_type}"),
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
            &format!("/v1/deployments/{actor_type}/canary"),
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
            &format!("/v1/deployments/{actor_type}/{action}"),
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
            &format!("/v1/deployments/{actor_type}/policy"),
            Some(policy),
        )
        .await
    }

    /// A deployment and its history.
    pub async fn deployment(&self, actor_type: &str) -> Result<DeploymentDetail, ClientError> {
        self.json(
            Method::GET,
            &format!("/v1/deployments/{actor_type}"),
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
            Some(t) => format!("/v1/activations?actor_type={t}"),
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
            &format!("/v1/revocations/{token_id}"),
            None::<&()>,
        )
        .await
    }

    /// Deletes a module no deployment uses.
    pub async fn delete_module(&self, content_id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/modules/{content_id}")).await
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
            &format!("/v1/deployments/{actor_type}"),
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
        self.json(Method::GET, &format!("/v1/regions/{name}"), None::<&()>)
            .await
    }

    /// Declares a region, or changes it.
    pub async fn put_region(
        &self,
        name: &str,
        request: &RegionRequest,
    ) -> Result<RegionInfo, ClientError> {
        self.json(Method::PUT, &format!("/v1/regions/{name}"), Some(request))
            .await
    }

    /// Removes a declared region.
    pub async fn delete_region(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/regions/{name}")).await
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

    /// Every issuer key.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.json(Method::GET, "/v1/keys", None::<&()>).await
    }

    /// Creates a new active issuer key.
    pub async fn rotate_key(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.json(Method::POST, "/v1/keys/rotate", None::<&()>)
            .await
    }

    /// Stops trusting an issuer key.
    pub async fn retire_key(&self, key_id: &str) -> Result<Vec<KeyInfo>, ClientError> {
        self.json(
            Method::POST,
            &format!("/v1/keys/{key_id}/retire"),
            None::<&()>,
        )
        .await
    }

    /// Mints a node capability for `node_id`.
    pub async fn node_token(&self, node_id: &str) -> Result<NodeTokenResponse, ClientError> {
        self.json(
            Method::POST,
            &format!("/v1/nodes/{node_id}/token"),
            None::<&()>,
        )
        .await
    }

    // ----- node API -----

    /// Registers a node (new epoch).
    pub async fn register(
        &self,
        node_id: &str,
        request: &RegisterRequest,
    ) -> Result<RegisterResponse, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/register"),
            encode(request),
            self.timeout,
        )
        .await
    }

    /// Heartbeats, with a timeout (a late answer is useless to lease logic).
    pub async fn heartbeat(
        &self,
        node_id: &str,
        request: &HeartbeatRequest,
        timeout: Duration,
    ) -> Result<HeartbeatResponse, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/heartbeat"),
            encode(request),
            timeout,
        )
        .await
    }

    /// Finds or places an actor's activation.
    pub async fn ensure_activation(
        &self,
        node_id: &str,
        request: &EnsureActivationRequest,
    ) -> Result<Activation, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/activations"),
            encode(request),
            self.timeout,
        )
        .await
    }

    /// Fenced state read.
    pub async fn read_state(
        &self,
        node_id: &str,
        request: &ReadStateRequest,
    ) -> Result<ReadStateResponse, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/state/read"),
            encode(request),
            self.timeout,
        )
        .await
    }

    /// Fenced state commit.
    pub async fn commit_state(
        &self,
        node_id: &str,
        request: &CommitRequest,
    ) -> Result<CommitResponse, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/state/commit"),
            encode(request),
            self.timeout,
        )
        .await
    }

    /// Several activations' fenced state commits in one request (one transaction).
    pub async fn commit_batch(
        &self,
        node_id: &str,
        request: &CommitBatchRequest,
    ) -> Result<CommitBatchResponse, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/state/commit-batch"),
            encode(request),
            self.timeout,
        )
        .await
    }

    /// Switches an activation to a new version (with its upgrade hook's writes).
    pub async fn upgrade_activation(
        &self,
        node_id: &str,
        request: &UpgradeRequest,
    ) -> Result<Activation, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/activations/upgrade"),
            encode(request),
            self.timeout,
        )
        .await
    }

    /// Reports call outcomes per version.
    pub async fn report_outcomes(
        &self,
        node_id: &str,
        report: &OutcomeReport,
    ) -> Result<OutcomeAck, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/outcomes"),
            encode(report),
            self.timeout,
        )
        .await
    }

    /// A capability for the actor an activation holds.
    pub async fn self_token(&self, node_id: &str, fence: &Fence) -> Result<SelfToken, ClientError> {
        self.node(
            Method::POST,
            &format!("/v1/nodes/{node_id}/self-token"),
            encode(fence),
            self.timeout,
        )
        .await
    }

    /// A module's bytes.
    pub async fn fetch_module(
        &self,
        node_id: &str,
        content_id: &str,
    ) -> Result<Bytes, ClientError> {
        self.send(
            Method::GET,
            &format!("/v1/nodes/{node_id}/modules/{content_id}"),
            NODE_CONTENT_TYPE,
            Vec::new(),
            self.timeout,
        )
        .await
    }

    /// Everything a node follows.
    pub async fn sync(&self, node_id: &str) -> Result<SyncSnapshot, ClientError> {
        self.node(
            Method::GET,
            &format!("/v1/nodes/{node_id}/sync"),
            Vec::new(),
            self.timeout,
        )
        .await
    }

    /// Changes after `cursor`, waiting up to `wait` for some.
    pub async fn watch(
        &self,
        node_id: &str,
        cursor: &str,
        wait: Duration,
    ) -> Result<Changes, ClientError> {
        let path = format!(
            "/v1/nodes/{node_id}/watch?after={cursor}&wait_ms={}",
            wait.as_millis()
        );
        self.node(
            Method::GET,
            &path,
            Vec::new(),
            wait + Duration::from_secs(5),
        )
        .await
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
    message
}
