//! The `edge-node` binary: runs one edge node. `edge-node compile-module` (hidden) is the child
//! process the node compiles module versions in (`latchkey_edge_node::compile`).

use std::sync::Arc;

use clap::Parser;
use latchkey_edge_node::compile::{ChildProcess, CompileArgs};
use latchkey_edge_node::{EdgeNode, NodeArgs};

/// Latchkey edge node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    compile: CompileArgs,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> anyhow::Result<()> {
    // The compile child starts no async runtime: its address-space limit is for compiling.
    if let Some(code) = latchkey_edge_node::compile::child_if_asked() {
        std::process::exit(i32::from(code));
    }
    run()
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let mut config = args.node.into_config()?;
    let cache = config.runtime.cache_dir.clone();
    config.runtime.compiler =
        Arc::new(ChildProcess::this_executable(args.compile.limits(), cache)?);
    let node = EdgeNode::start(config).await?;
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
