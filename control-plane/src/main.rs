//! The `control-plane` binary: serves the admin and node APIs over a store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_store::{StoreSpec, VERSIONS_PER_SECOND};

/// Latchkey control plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_LISTEN", default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Directory for issuer keys, the admin token and (by default) the embedded store.
    #[arg(long, env = "LATCHKEY_DATA_DIR", default_value = "./latchkey-data")]
    data_dir: PathBuf,
    /// Store: `embedded:PATH`, `memory`, `memory:PATH` or `fdb:CLUSTER_FILE`
    /// (default: embedded:<data-dir>/store.redb).
    #[arg(long, env = "LATCHKEY_STORE")]
    store: Option<StoreSpec>,
    /// Node lease TTL in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    lease_ttl_ms: u64,
    /// How often nodes heartbeat, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    heartbeat_interval_ms: u64,
    /// Successive heartbeats before a node receives placements.
    #[arg(long, default_value_t = 3)]
    min_heartbeats: u32,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_json);
    let mut config = Config::new(&args.data_dir);
    if let Some(store) = args.store {
        config.store = store;
    }
    config.lease.ttl_versions = args.lease_ttl_ms * VERSIONS_PER_SECOND / 1000;
    config.lease.heartbeat_interval_ms = args.heartbeat_interval_ms;
    config.lease.min_heartbeats = args.min_heartbeats;
    let store = config.store.to_string();
    let opened = tokio::task::spawn_blocking(move || ControlPlane::open(config))
        .await?
        .with_context(|| format!("opening the control plane on {store}"))?;
    let cp = opened.control_plane;
    if opened.new_admin_token.is_some() {
        tracing::info!(
            path = %args.data_dir.join(latchkey_control_plane::authority::ADMIN_TOKEN_FILE).display(),
            "created the root issuer key and an admin token"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, store = %store, "control plane listening");
    let maintenance = cp.spawn_maintenance();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    latchkey_control_plane::api::serve(cp, listener, shutdown).await;
    maintenance.abort();
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
