//! The `control-plane` binary: serves the admin and node APIs over a store.

use clap::Parser;
use latchkey_control_plane::cli::{ServeArgs, init_logging, serve};

/// Latchkey control plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_json);
    serve(args.serve, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await
}
