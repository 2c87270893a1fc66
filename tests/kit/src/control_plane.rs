//! A real control plane serving its APIs on a free loopback port, in this process: the store it
//! runs on, plain HTTP or HTTPS with a throwaway CA, and its admin client. Stopped when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use latchkey_caps::node::{NodeCertificate, NodeKey};
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_store::{EmbeddedStore, EngineOptions, MemoryStore, Store};
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::Client;
use latchkey_wire::identity::NodeCredentials;
use latchkey_wire::server::ServerOptions;
use latchkey_wire::tls::{ServerTls, Trust, dev_certs};
use tokio::sync::oneshot;

/// Which store the control plane runs on.
#[derive(Default)]
pub enum StoreChoice {
    /// The one its configuration names (the embedded store in its data directory).
    #[default]
    Configured,
    /// redb in the data directory, with these engine options (commit mode, clock).
    Embedded(EngineOptions),
    /// In memory, no log.
    Memory(EngineOptions),
    /// A store the test made (for instance one that fails on demand).
    Given(Arc<dyn Store>),
}

/// How to start a control plane.
#[derive(Default)]
pub struct Launch {
    /// The store it runs on.
    pub store: StoreChoice,
    /// Serve HTTPS with a throwaway CA (clients made by [`ServedControlPlane::client`] trust it).
    pub tls: bool,
    /// The server's limits; its `tls` is set from [`Launch::tls`].
    pub server: ServerOptions,
}

/// A cluster's TLS: a throwaway CA and a certificate for localhost and 127.0.0.1.
pub struct Tls {
    /// The CA certificate file (what nodes and clients trust).
    pub ca: PathBuf,
    /// What every listener serves.
    pub server: ServerTls,
    /// What clients trust.
    pub trust: Trust,
}

/// A control plane serving on loopback until dropped (or [`ServedControlPlane::stop`]).
pub struct ServedControlPlane {
    /// Its base URL, `http://` or `https://`.
    pub url: String,
    /// The address it listens on.
    pub address: SocketAddr,
    /// The admin token this start created.
    pub admin_token: String,
    /// A client presenting the admin token.
    pub admin: Client,
    /// With HTTPS: the CA and what the server serves.
    pub tls: Option<Tls>,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl ServedControlPlane {
    /// Opens a control plane in a fresh temporary directory, its configuration tuned by `tune`,
    /// and serves it.
    pub async fn start(launch: Launch, tune: impl FnOnce(&mut Config)) -> ServedControlPlane {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tls = launch.tls.then(|| make_tls(&dir.path().join("tls")));
        let mut config = Config::new(dir.path().join("cp"));
        tune(&mut config);
        let store_path = dir.path().join("store.redb");
        let opened = tokio::task::spawn_blocking(move || {
            let store: Arc<dyn Store> = match launch.store {
                StoreChoice::Configured => return ControlPlane::open(config),
                StoreChoice::Embedded(engine) => Arc::new(
                    EmbeddedStore::open_with(store_path, &engine).expect("the embedded store"),
                ),
                StoreChoice::Memory(engine) => Arc::new(MemoryStore::volatile_with(&engine)),
                StoreChoice::Given(store) => store,
            };
            ControlPlane::open_with_store(store, config)
        })
        .await
        .expect("the opening task")
        .expect("the control plane opens");
        let admin_token = opened.new_admin_token.expect("a new admin token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{address}");
        let (stop, stopped) = oneshot::channel::<()>();
        let options = ServerOptions {
            tls: tls.as_ref().map(|t| t.server.clone()),
            ..launch.server
        };
        tokio::spawn(latchkey_control_plane::api::serve_with(
            opened.control_plane,
            listener,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        let admin = client_for(tls.as_ref(), &url, &admin_token);
        ServedControlPlane {
            url,
            address,
            admin_token,
            admin,
            tls,
            dir,
            stop: Some(stop),
        }
    }

    /// A client for `url` presenting `token`, trusting the CA when serving HTTPS.
    pub fn client(&self, url: &str, token: &str) -> Client {
        client_for(self.tls.as_ref(), url, token)
    }

    /// The control plane's data directory (its key files; the configured store).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("cp")
    }

    /// The temporary directory everything of this control plane lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the HTTP server (what it served keeps its state).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// A single-use enrolment capability for node `id`.
    pub async fn enrolment_token(&self, id: &str) -> String {
        self.admin
            .enrolment_token(id, None)
            .await
            .expect("an enrolment capability")
            .token
    }

    /// A client for node `id` with a fresh key, enrolled: every request it sends is signed by
    /// that key.
    pub async fn enrolled_node(&self, id: &str) -> Client {
        Client::for_node(&self.url, self.enrolled_credentials(id).await)
    }

    /// Credentials of node `id` with a fresh key, enrolled.
    pub async fn enrolled_credentials(&self, id: &str) -> Arc<NodeCredentials> {
        let token = self.enrolment_token(id).await;
        let credentials = Arc::new(NodeCredentials::new(id, NodeKey::generate()));
        let answer = self
            .admin
            .enrol(&credentials, &token)
            .await
            .expect("enrolment");
        let certificate = NodeCertificate::from_text(&answer.certificate).expect("a certificate");
        credentials.set_certificate(certificate);
        credentials
    }

    /// Uploads and deploys `component` as `actor_type`; returns its content id.
    pub async fn deploy(&self, actor_type: &str, component: &[u8]) -> String {
        deploy(&self.admin, actor_type, component).await
    }

    /// A token (narrowed from the admin token) to invoke every actor of `actor_type`.
    pub async fn invoke_token(&self, actor_type: &str) -> String {
        invoke_token(&self.admin, actor_type).await
    }
}

impl Drop for ServedControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Uploads and deploys `component` as `actor_type` through `admin`; returns its content id.
pub async fn deploy(admin: &Client, actor_type: &str, component: &[u8]) -> String {
    let module = admin
        .upload_module(component.to_vec())
        .await
        .expect("the upload");
    admin
        .deploy(actor_type, &module.content_id, None)
        .await
        .expect("the deployment");
    module.content_id
}

/// A token minted by `admin` to invoke every actor of `actor_type`.
pub async fn invoke_token(admin: &Client, actor_type: &str) -> String {
    mint(
        admin,
        &MintRequest {
            actor_type: Some(actor_type.into()),
            rights: Some(vec!["invoke".into()]),
            ..MintRequest::default()
        },
    )
    .await
}

/// A token minted by `admin`.
pub async fn mint(admin: &Client, request: &MintRequest) -> String {
    admin.mint(request).await.expect("minting").token
}

fn make_tls(dir: &Path) -> Tls {
    let certs = dev_certs(dir).expect("dev certificates");
    Tls {
        server: ServerTls::from_pem_files(&certs.cert, &certs.key).expect("the dev certificate"),
        trust: Trust::ca_file(&certs.ca).expect("the dev CA"),
        ca: certs.ca,
    }
}

fn client_for(tls: Option<&Tls>, url: &str, token: &str) -> Client {
    match tls {
        Some(t) => Client::with_trust(url, token, &t.trust),
        None => Client::new(url, token),
    }
}
