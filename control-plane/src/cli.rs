//! The control plane's command line: arguments and the serve loop, shared by the
//! `control-plane` binary and `latchkey control-plane`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use latchkey_store::{StoreSpec, VERSIONS_PER_SECOND};
use latchkey_wire::server::ListenerArgs;

use crate::{Config, ControlPlane};

/// Arguments of a control plane.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Directory for issuer keys, the admin token and (by default) the embedded store.
    #[arg(long, env = "LATCHKEY_DATA_DIR", default_value = "./latchkey-data")]
    pub data_dir: PathBuf,
    /// Store: `embedded:PATH`, `memory`, `memory:PATH` or `fdb:CLUSTER_FILE`
    /// (default: embedded:<data-dir>/store.redb).
    #[arg(long, env = "LATCHKEY_STORE")]
    pub store: Option<StoreSpec>,
    /// Node lease TTL in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub lease_ttl_ms: u64,
    /// How often nodes heartbeat, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub heartbeat_interval_ms: u64,
    /// Successive heartbeats before a node receives placements.
    #[arg(long, default_value_t = 3)]
    pub min_heartbeats: u32,
    /// Lifetime of node certificates, in seconds (nodes renew them at half-life; a node stopped
    /// longer than this must be enrolled again).
    #[arg(long, default_value_t = 12 * 3600)]
    pub node_certificate_ttl_secs: u64,
    /// TLS and the listener's limits.
    #[command(flatten)]
    pub listener: ListenerArgs,
    /// Quotas, rate limits and record retention.
    #[command(flatten)]
    pub quotas: QuotaArgs,
}

/// Quotas, rate limits and record retention of a control plane (`Default` is the command line's defaults).
#[derive(Clone, Debug, clap::Args)]
pub struct QuotaArgs {
    /// Most bytes one actor may store (keys plus values); a commit that would grow an actor
    /// past it is refused with `quota_exceeded` (507).
    #[arg(long, default_value_t = crate::registry::DEFAULT_MAX_ACTOR_STORAGE_BYTES)]
    pub max_actor_storage_bytes: u64,
    /// New actors one token id may create per second, on this instance (0: unlimited);
    /// beyond it a placement is refused with `rate_limited` (429).
    #[arg(long, default_value_t = crate::registry::DEFAULT_NEW_ACTORS_PER_SECOND)]
    pub new_actors_per_second: u64,
    /// New actors one token id may create at once after a quiet period.
    #[arg(long, default_value_t = crate::registry::DEFAULT_NEW_ACTOR_BURST)]
    pub new_actor_burst: u64,
    /// Seconds after its placement ended that the activation record of an actor storing
    /// nothing is deleted.
    #[arg(long, default_value_t = crate::DEFAULT_ACTIVATION_RETENTION.as_secs())]
    pub activation_retention_secs: u64,
    /// A command that checks an uploaded module compiles (program and arguments separated by
    /// spaces; the module on stdin), e.g. `latchkey compile-module --check`; run under the
    /// compile limits below. Unset: uploads are validated but not compile-checked.
    #[arg(long)]
    pub compile_check_command: Option<String>,
    /// Address space the compile check may use, in bytes (`RLIMIT_AS`).
    #[arg(long, default_value_t = crate::compile_check::DEFAULT_COMPILE_MEMORY_BYTES)]
    pub compile_memory_limit: u64,
    /// Wall-clock time the compile check may take, in milliseconds (then it is killed).
    #[arg(long, default_value_t = crate::compile_check::DEFAULT_COMPILE_TIMEOUT.as_millis() as u64)]
    pub compile_timeout_ms: u64,
}

impl Default for QuotaArgs {
    fn default() -> Self {
        QuotaArgs {
            max_actor_storage_bytes: crate::registry::DEFAULT_MAX_ACTOR_STORAGE_BYTES,
            new_actors_per_second: crate::registry::DEFAULT_NEW_ACTORS_PER_SECOND,
            new_actor_burst: crate::registry::DEFAULT_NEW_ACTOR_BURST,
            activation_retention_secs: crate::DEFAULT_ACTIVATION_RETENTION.as_secs(),
            compile_check_command: None,
            compile_memory_limit: crate::compile_check::DEFAULT_COMPILE_MEMORY_BYTES,
            compile_timeout_ms: crate::compile_check::DEFAULT_COMPILE_TIMEOUT.as_millis() as u64,
        }
    }
}

impl QuotaArgs {
    /// Applies these settings to `config`.
    pub fn apply(&self, config: &mut Config) {
        config.limits.max_actor_storage_bytes = self.max_actor_storage_bytes;
        config.limits.new_actors_per_second = self.new_actors_per_second;
        config.limits.new_actor_burst = self.new_actor_burst;
        config.activation_retention =
            std::time::Duration::from_secs(self.activation_retention_secs);
        config.compile_check = self.compile_check_command.as_deref().map(|command| {
            crate::compile_check::CompileCheck {
                command: command.split_whitespace().map(str::to_owned).collect(),
                memory_bytes: self.compile_memory_limit,
                timeout: std::time::Duration::from_millis(self.compile_timeout_ms),
            }
        });
    }
}

impl ServeArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> Config {
        let mut config = Config::new(&self.data_dir);
        if let Some(store) = &self.store {
            config.store = store.clone();
        }
        config.lease.ttl_versions = self.lease_ttl_ms * VERSIONS_PER_SECOND / 1000;
        config.lease.heartbeat_interval_ms = self.heartbeat_interval_ms;
        config.lease.min_heartbeats = self.min_heartbeats;
        config.node_certificate_ttl =
            std::time::Duration::from_secs(self.node_certificate_ttl_secs);
        self.quotas.apply(&mut config);
        config
    }
}

/// Opens the control plane the arguments describe and serves until `shutdown` completes.
pub async fn serve(args: ServeArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = args.config();
    let options = args
        .listener
        .options()
        .context("loading the TLS certificate and key")?;
    match &config.compile_check {
        Some(check) => tracing::info!(
            command = %check.command.join(" "),
            memory_bytes = check.memory_bytes,
            timeout_ms = check.timeout.as_millis() as u64,
            "uploads are validated and compile-checked"
        ),
        None => tracing::warn!(
            "uploads are validated but not compile-checked (no --compile-check-command): a module that compiles too slowly or too hugely is refused only by the nodes"
        ),
    }
    let store = config.store.to_string();
    let opened = tokio::task::spawn_blocking(move || ControlPlane::open(config))
        .await?
        .with_context(|| format!("opening the control plane on {store}"))?;
    if opened.new_admin_token.is_some() {
        tracing::info!(
            path = %args.data_dir.join(crate::authority::ADMIN_TOKEN_FILE).display(),
            "created the root issuer key and an admin token"
        );
    }
    let cp = opened.control_plane;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let tls = options.tls.is_some();
    tracing::info!(address = %listener.local_addr()?, store = %store, tls, "control plane listening");
    let maintenance = cp.spawn_maintenance();
    crate::api::serve_with(cp, listener, options, shutdown).await;
    maintenance.abort();
    Ok(())
}

/// Installs the `tracing` subscriber (level from `RUST_LOG`, default `info`).
pub fn init_logging(json: bool) {
    init_logging_with(json, "info");
}

/// Installs the `tracing` subscriber (level from `RUST_LOG`, else `default`).
pub fn init_logging_with(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
