//! The `latchkey` command: `latchkey dev` runs a control plane and an edge node in one process
//! (with the actor project in the working directory, or the example actors) and redeploys actors
//! as their sources change; `latchkey new` scaffolds an actor; `latchkey tail` follows actors'
//! logs; `latchkey control-plane` / `latchkey edge-node` run one role; the other subcommands
//! drive a control plane and call actors. Output is text for people, `--json` for scripts.

mod admin;
mod dev;
mod new;
mod output;
mod project;
mod show;
mod tail;
mod watch;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use latchkey_control_plane::cli::{ServeArgs, init_logging, init_logging_with};
use latchkey_edge_node::NodeArgs;

/// Latchkey: capability-secured per-key WASM actors.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of text (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// Log as JSON lines instead of text (for the long-running commands).
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a control plane (embedded store) and one edge node in this process. Deploys the actor
    /// project in the working directory (or each --actor) and redeploys it when its sources
    /// change, or deploys the example actors; prints how to call them and the actors' logs.
    Dev(dev::DevArgs),
    /// Create an actor project (a Rust crate and its `latchkey.toml`) in a new directory.
    New(new::NewArgs),
    /// Follow actors' log lines and call outcomes on every node, as they happen.
    Tail(tail::TailArgs),
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
            // The dev command prints what happens itself; the log shows only what goes wrong.
            init_logging_with(cli.log_json, "warn");
            dev::run(args, cli.json, shutdown_signal()).await
        }
        Command::New(args) => new::run(&args, cli.json),
        Command::Tail(args) => tail::run(args, cli.json).await,
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
        Command::Admin(command) => admin::run(command, cli.json).await,
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
