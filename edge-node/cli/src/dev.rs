//! `latchkey dev`: a control plane on the embedded store and one edge node in one process, with
//! the example actors uploaded and deployed, and a token and commands printed to try them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_edge_node::{EdgeNode, NodeConfig};
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::Client;

/// Arguments of `latchkey dev`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Where the control plane's store and keys and the node's module cache live.
    #[arg(long, default_value = "./latchkey-dev")]
    data_dir: PathBuf,
    /// Control plane address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    control_plane: SocketAddr,
    /// Edge node address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    node: SocketAddr,
    /// Do not upload and deploy the example actors.
    #[arg(long)]
    no_examples: bool,
}

pub(crate) async fn run(mut args: DevArgs) -> anyhow::Result<()> {
    args.data_dir = crate::absolute(&args.data_dir)?;
    let mut config = Config::new(args.data_dir.join("control-plane"));
    config.lease.heartbeat_interval_ms = 500;
    config.lease.min_heartbeats = 1;
    let opened = tokio::task::spawn_blocking(move || ControlPlane::open(config))
        .await?
        .context("opening the control plane")?;
    let token_path = args.data_dir.join("control-plane").join("admin.token");
    let admin_token = match opened.new_admin_token {
        Some(t) => t,
        None => std::fs::read_to_string(&token_path)
            .with_context(|| format!("reading {}", token_path.display()))?,
    };
    let cp = opened.control_plane;
    let listener = tokio::net::TcpListener::bind(args.control_plane)
        .await
        .with_context(|| format!("binding {}", args.control_plane))?;
    let cp_url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let maintenance = cp.spawn_maintenance();
    let server = tokio::spawn(latchkey_control_plane::api::serve(cp, listener, async {
        let _ = stopped.await;
    }));

    let admin = Client::new(&cp_url, &admin_token);
    let node_token = admin
        .node_token("dev-node")
        .await
        .context("minting the node's token")?;
    let mut node_config = NodeConfig::new("dev-node", &cp_url, &node_token.token);
    node_config.listen = args.node;
    node_config.region = "dev".into();
    node_config.runtime.cache_dir = Some(args.data_dir.join("node").join("compiled"));
    let node = EdgeNode::start(node_config).await?;
    node.wait_ready(Duration::from_secs(30)).await?;
    let node_url = format!("http://{}", node.address());

    if !args.no_examples {
        for (actor_type, component) in latchkey_examples::all() {
            let module = admin
                .upload_module(component.to_vec())
                .await
                .with_context(|| format!("uploading the {actor_type} example"))?;
            admin
                .deploy(actor_type, &module.content_id, Some("latchkey dev"))
                .await
                .with_context(|| format!("deploying the {actor_type} example"))?;
        }
    }
    let counter = admin
        .mint(&MintRequest {
            actor_type: Some("counter".into()),
            rights: Some(vec!["invoke".into()]),
            expires_in_secs: Some(24 * 3600),
            ..MintRequest::default()
        })
        .await
        .context("minting a counter token")?;
    print_welcome(
        &cp_url,
        &node_url,
        &token_path,
        &counter.token,
        args.no_examples,
    );

    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    let _ = stop.send(());
    let _ = server.await;
    maintenance.abort();
    Ok(())
}

fn print_welcome(
    cp: &str,
    node: &str,
    admin_token: &std::path::Path,
    counter_token: &str,
    no_examples: bool,
) {
    let examples = if no_examples {
        String::new()
    } else {
        format!(
            r#"
The example actors (counter, rate-limiter, chat-room, delegator) are deployed.
A token for every counter (invoke, 24 h):

  export TOKEN={counter_token}

Call one:
  curl -X POST -H "Authorization: Bearer $TOKEN" {node}/v1/actors/counter/my-first/inc
  curl -X POST -H "Authorization: Bearer $TOKEN" -d 5 {node}/v1/actors/counter/my-first/inc
  curl -X POST -H "Authorization: Bearer $TOKEN" {node}/v1/actors/counter/my-first/get
"#
        )
    };
    println!(
        r#"
Latchkey dev deployment is running.
  control plane  {cp}   (admin token: {admin})
  edge node      {node}
{examples}
Manage it with the CLI (it finds the dev admin token by itself):
  latchkey upload my-actor.wasm
  latchkey deploy my-actor <content-id>
  latchkey mint --actor-type my-actor --rights invoke --expires-in 3600
  latchkey call counter my-first get

Ctrl-C stops it; state is kept in the data directory.
"#,
        admin = admin_token.display(),
    );
}
