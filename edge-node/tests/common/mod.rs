//! A control plane and edge nodes in one test process, talking over real HTTP on loopback, with
//! the example actors: the harness of the edge node's end-to-end tests.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_edge_node::{EdgeNode, NodeConfig};
use latchkey_wire::ApiError;
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::{Client, ClientError};
use latchkey_wire::lease::LeaseSettings;
use latchkey_wire::server::ServerOptions;
use latchkey_wire::tls::{ServerTls, Trust};

/// Short leases so tests that need one to lapse do not wait long.
pub const LEASE: LeaseSettings = LeaseSettings {
    ttl_versions: 2_000_000,
    heartbeat_interval_ms: 100,
    min_heartbeats: 1,
};

pub struct Cluster {
    pub cp_url: String,
    pub admin: Client,
    pub nodes: Vec<EdgeNode>,
    /// With TLS: the CA file, the servers' certificate and what clients trust.
    pub tls: Option<Tls>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A cluster's TLS: a throwaway CA and a certificate for localhost and 127.0.0.1.
pub struct Tls {
    pub ca: std::path::PathBuf,
    pub server: ServerTls,
    pub trust: Trust,
}

impl Cluster {
    /// A control plane (embedded store) and `n` edge nodes, each tuned by `tune`.
    pub async fn start(n: usize, tune: impl Fn(&mut NodeConfig)) -> Cluster {
        Self::start_with(n, |_| {}, tune).await
    }

    /// The same, every listener serving HTTPS (the nodes trust the CA file).
    pub async fn start_tls(n: usize, tune: impl Fn(&mut NodeConfig)) -> Cluster {
        Self::start_full(n, true, |_| {}, tune).await
    }

    /// [`Cluster::start`] with the control plane's configuration tuned by `tune_cp`.
    pub async fn start_with(
        n: usize,
        tune_cp: impl FnOnce(&mut Config),
        tune: impl Fn(&mut NodeConfig),
    ) -> Cluster {
        Self::start_full(n, false, tune_cp, tune).await
    }

    async fn start_full(
        n: usize,
        tls: bool,
        tune_cp: impl FnOnce(&mut Config),
        tune: impl Fn(&mut NodeConfig),
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls.then(|| {
            let certs = latchkey_wire::tls::dev_certs(&dir.path().join("tls")).unwrap();
            Tls {
                server: ServerTls::from_pem_files(&certs.cert, &certs.key).unwrap(),
                trust: Trust::ca_file(&certs.ca).unwrap(),
                ca: certs.ca,
            }
        });
        let mut config = Config::new(dir.path().join("cp"));
        config.lease = LEASE;
        // Tests place hundreds of actors with one token at once; the rate of new actors is
        // limited only where a test sets it (tests/quotas.rs).
        config.limits.new_actors_per_second = 0;
        tune_cp(&mut config);
        let opened = tokio::task::spawn_blocking(move || ControlPlane::open(config))
            .await
            .unwrap()
            .unwrap();
        let admin_token = opened.new_admin_token.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let cp_url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = ServerOptions {
            tls: tls.as_ref().map(|t| t.server.clone()),
            ..ServerOptions::default()
        };
        tokio::spawn(latchkey_control_plane::api::serve_with(
            opened.control_plane,
            listener,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        let admin = match &tls {
            Some(t) => Client::with_trust(&cp_url, &admin_token, &t.trust),
            None => Client::new(&cp_url, &admin_token),
        };
        let mut cluster = Cluster {
            cp_url,
            admin,
            nodes: Vec::new(),
            tls,
            dir,
            stop: Some(stop),
        };
        for i in 0..n {
            cluster.add_node(&format!("node-{i}"), &tune).await;
        }
        cluster
    }

    pub async fn add_node(&mut self, id: &str, tune: impl Fn(&mut NodeConfig)) {
        let token = self.admin.enrolment_token(id, None).await.unwrap().token;
        let mut config = NodeConfig::new(id, &self.cp_url, &token);
        config.runtime.cache_dir = Some(self.dir.path().join("compiled"));
        // Several nodes share this test process, and each pooled instance slot costs memory
        // mappings (the stack's guard page): keep the pools small enough for vm.max_map_count.
        config.max_activations = 1_000;
        config.runtime.max_instances = 1_000;
        if let Some(tls) = &self.tls {
            config.ca_file = Some(tls.ca.clone());
            config.server.tls = Some(tls.server.clone());
        }
        tune(&mut config);
        let node = EdgeNode::start(config).await.unwrap();
        node.wait_ready(Duration::from_secs(20)).await.unwrap();
        self.nodes.push(node);
    }

    pub fn node_url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.nodes[i].address())
    }

    /// A client for `url` presenting `token`, trusting the cluster's CA.
    pub fn client(&self, url: &str, token: &str) -> Client {
        match &self.tls {
            Some(t) => Client::with_trust(url, token, &t.trust),
            None => Client::new(url, token),
        }
    }

    /// Uploads and deploys a component as `actor_type`; returns its content id.
    pub async fn deploy(&self, actor_type: &str, component: &[u8]) -> String {
        let module = self.admin.upload_module(component.to_vec()).await.unwrap();
        self.admin
            .deploy(actor_type, &module.content_id, None)
            .await
            .unwrap();
        module.content_id
    }

    /// Mints a token (narrowed from the admin token).
    pub async fn token(&self, request: MintRequest) -> String {
        self.admin.mint(&request).await.unwrap().token
    }

    /// A token to invoke every method of every actor of `actor_type`.
    pub async fn invoke_token(&self, actor_type: &str) -> String {
        self.token(MintRequest {
            actor_type: Some(actor_type.into()),
            rights: Some(vec!["invoke".into()]),
            ..MintRequest::default()
        })
        .await
    }

    /// Calls `method` on `(actor_type, key)` through node `i` over HTTP.
    pub async fn call(
        &self,
        i: usize,
        token: &str,
        actor_type: &str,
        key: &str,
        method: &str,
        payload: &str,
    ) -> Result<Bytes, ApiError> {
        call_with(
            &self.client(&self.node_url(i), token),
            actor_type,
            key,
            method,
            payload.as_bytes().to_vec(),
        )
        .await
    }

    /// Stops the control plane's HTTP server (the nodes keep running).
    pub fn stop_control_plane(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Calls an actor through the node at `url`.
pub async fn call_url(
    url: &str,
    token: &str,
    actor_type: &str,
    key: &str,
    method: &str,
    payload: Vec<u8>,
) -> Result<Bytes, ApiError> {
    call_with(&Client::new(url, token), actor_type, key, method, payload).await
}

/// Calls an actor with `client` (a node's URL and a token).
pub async fn call_with(
    client: &Client,
    actor_type: &str,
    key: &str,
    method: &str,
    payload: Vec<u8>,
) -> Result<Bytes, ApiError> {
    let enc = latchkey_wire::path::segment;
    let path = format!(
        "/v1/actors/{}/{}/{}",
        enc(actor_type),
        enc(key),
        enc(method)
    );
    client
        .send(
            Method::POST,
            &path,
            "application/json",
            payload,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| match e {
            ClientError::Api(api) => api,
            other => panic!("transport failure: {other}"),
        })
}

/// The JSON value of an answer.
pub fn json(answer: Result<Bytes, ApiError>) -> serde_json::Value {
    match answer {
        Ok(body) => {
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
        }
        Err(e) => panic!("call failed: {e}"),
    }
}

/// Polls `check` until it returns `Some`, for effects that propagate asynchronously (such as a
/// revocation reaching a node through the change feed); fails after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, 10, check).await
}

/// [`eventually`] with a bound of `secs` seconds.
pub async fn eventually_within<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
