//! The `edge-node` binary: runs one edge node.

use clap::Parser;
use latchkey_edge_node::{EdgeNode, NodeArgs};

/// Latchkey edge node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let node = EdgeNode::start(args.node.into_config()?).await?;
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
