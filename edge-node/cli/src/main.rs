//! The `latchkey` command: `latchkey dev` runs a control plane and an edge node in one process
//! with the example actors deployed; `latchkey control-plane` / `latchkey edge-node` run one
//! role; the other subcommands drive a control plane and call actors.

mod admin;
mod dev;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use latchkey_control_plane::cli::{ServeArgs, init_logging};
use latchkey_edge_node::NodeArgs;

/// Latchkey: capability-secured per-key WASM actors.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log as JSON lines instead of text (for the long-running commands).
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a control plane (embedded store) and one edge node in this process, with the example
    /// actors deployed, and print how to call them.
    Dev(dev::DevArgs),
    /// Run a control plane.
    ControlPlane(ServeArgs),
    /// Run an edge node.
    EdgeNode(NodeArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => {
            init_logging(cli.log_json);
            dev::run(args).await
        }
        Command::ControlPlane(mut args) => {
            init_logging(cli.log_json);
            args.data_dir = absolute(&args.data_dir)?;
            latchkey_control_plane::cli::serve(args, shutdown_signal()).await
        }
        Command::EdgeNode(mut args) => {
            init_logging(cli.log_json);
            args.data_dir = absolute(&args.data_dir)?;
            let node = latchkey_edge_node::EdgeNode::start(args.into_config()?).await?;
            shutdown_signal().await;
            node.shutdown().await;
            Ok(())
        }
        Command::Admin(command) => admin::run(command).await,
    }
}

/// `path` made absolute against the working directory, once, where the command line is read
/// (libraries and messages then see one unambiguous path).
fn absolute(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("resolving {} against the working directory", path.display()))
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
