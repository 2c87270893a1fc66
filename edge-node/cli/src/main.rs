//! The `latchkey` command: `latchkey dev` runs a control plane and an edge node in one process
//! (with the actor project in the working directory, or the example actors) and redeploys actors
//! as their sources change; `latchkey new` scaffolds an actor; `latchkey tail` follows actors'
//! logs; `latchkey control-plane` / `latchkey edge-node` run one role; the other subcommands
//! drive a control plane and call actors. Output is text for people, `--json` for scripts.
//! `latchkey compile-module` (hidden) is the child process nodes compile module versions in, and
//! the control plane's upload compile check (`--check`).

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
use latchkey_edge_node::compile::{ChildProcess, CompileArgs};

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
    /// Run a control plane. Uploads are compile-checked by this executable's `compile-module
    /// --check` unless --compile-check-command names another checker.
    ControlPlane(ServeArgs),
    /// Run an edge node.
    EdgeNode(EdgeNodeArgs),
    /// Compile a module read from stdin (the child process of nodes and of the upload check).
    #[command(hide = true, disable_help_flag = true)]
    CompileModule {
        /// `compile-module`'s own arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

/// `latchkey edge-node`'s arguments: the node's, and the bounds of compiling modules.
#[derive(Debug, clap::Args)]
struct EdgeNodeArgs {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    compile: CompileArgs,
}

fn main() -> anyhow::Result<()> {
    // The compile child starts no async runtime: its address-space limit is for compiling.
    if let Some(code) = latchkey_edge_node::compile::child_if_asked() {
        std::process::exit(i32::from(code));
    }
    run()
}

/// This executable's `compile-module --check` as the control plane's upload check.
fn own_compile_check(args: &mut ServeArgs) -> anyhow::Result<()> {
    if args.quotas.compile_check_command.is_none() {
        let exe = std::env::current_exe().context("finding this executable")?;
        let exe = exe.to_str().filter(|e| !e.contains(char::is_whitespace));
        let exe = exe.context(
            "this executable's path has spaces or is not UTF-8: give --compile-check-command",
        )?;
        args.quotas.compile_check_command = Some(format!("{exe} compile-module --check"));
    }
    Ok(())
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
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
            own_compile_check(&mut args)?;
            latchkey_control_plane::cli::serve(args, shutdown_signal()).await
        }
        Command::EdgeNode(EdgeNodeArgs {
            node: mut args,
            compile,
        }) => {
            init_logging(cli.log_json);
            args.data_dir = absolute(&args.data_dir)?;
            let mut config = args.into_config()?;
            let cache = config.runtime.cache_dir.clone();
            config.runtime.compiler =
                std::sync::Arc::new(ChildProcess::this_executable(compile.limits(), cache)?);
            let node = latchkey_edge_node::EdgeNode::start(config).await?;
            shutdown_signal().await;
            node.shutdown().await;
            Ok(())
        }
        Command::Admin(command) => admin::run(command, cli.json).await,
        // Served by `child_if_asked` before parsing; here only if it came after a global flag.
        Command::CompileModule { args } => {
            std::process::exit(i32::from(latchkey_edge_node::compile::child_main(args)))
        }
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
