//! `latchkey dev`: a control plane on the embedded store and one edge node in one process. Run in
//! an actor project (or with `--actor PATH`), it builds the actor, deploys it, prints its URL and
//! a token, shows the actors' log lines and call outcomes as they happen, and redeploys the actor
//! whenever its sources change (`watch.rs`): live actors switch to the new code between calls and
//! keep their state. With no project it deploys the example actors instead. With `--tls` both
//! listeners serve HTTPS with a throwaway CA and a `localhost` certificate made in
//! `<data-dir>/tls/`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use latchkey_control_plane::compile_check::CompileCheck;
use latchkey_control_plane::{Config, ControlPlane};
use latchkey_edge_node::compile::{ChildProcess, CompileLimits};
use latchkey_edge_node::tail::LocalTail;
use latchkey_edge_node::{EdgeNode, NodeConfig};
use latchkey_wire::admin::MintRequest;
use latchkey_wire::client::Client;
use latchkey_wire::server::ServerOptions;
use latchkey_wire::tail::{TailLine, TailMessage};
use latchkey_wire::tls::{ServerTls, Trust, dev_certs};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::project::Project;
use crate::watch;

/// The node's id in a dev deployment.
const NODE_ID: &str = "dev-node";

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
    /// An actor project (a directory with a `latchkey.toml`) to build, deploy and redeploy when
    /// its sources change; repeatable. Default: the working directory, if it is one.
    #[arg(long = "actor", value_name = "PATH")]
    actors: Vec<PathBuf>,
    /// Deploy the example actors too (they are deployed by default when there is no project).
    #[arg(long, conflicts_with = "no_examples")]
    examples: bool,
    /// Do not deploy the example actors.
    #[arg(long)]
    no_examples: bool,
    /// Deploy the projects once; do not watch their sources.
    #[arg(long)]
    no_watch: bool,
    /// Serve both listeners over HTTPS, with a CA and a certificate for localhost and 127.0.0.1
    /// made in <data-dir>/tls/ (kept across runs; trust its ca.pem).
    #[arg(long)]
    tls: bool,
}

/// How `dev` reports what happens: lines for a person on stdout, or one JSON object per line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Report {
    pub(crate) json: bool,
}

impl Report {
    /// A status line (`{"event": name, …fields}` in JSON).
    pub(crate) fn status(&self, text: &str, name: &str, fields: serde_json::Value) {
        if self.json {
            let mut object = json!({ "event": name });
            if let (Some(o), serde_json::Value::Object(f)) = (object.as_object_mut(), fields) {
                o.extend(f);
            }
            println!("{object}");
        } else {
            println!("{text}");
        }
    }
}

/// A control plane and a node running in this process.
struct Running {
    admin: Client,
    admin_token_file: PathBuf,
    node: EdgeNode,
    cp_url: String,
    /// The CA certificate clients trust (with `--tls`).
    ca: Option<PathBuf>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    maintenance: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(args: &DevArgs) -> anyhow::Result<Running> {
        // Owner-only (0700), like the control plane's and the node's directories inside it.
        latchkey_control_plane::create_private_dir(&args.data_dir)
            .context("creating the data directory")?;
        let mut config = Config::new(args.data_dir.join("control-plane"));
        config.lease.heartbeat_interval_ms = 500;
        config.lease.min_heartbeats = 1;
        let limits = CompileLimits::default();
        let exe = std::env::current_exe().context("finding this executable")?;
        config.compile_check = Some(CompileCheck {
            command: vec![
                exe.to_string_lossy().into_owned(),
                "compile-module".into(),
                "--check".into(),
            ],
            memory_bytes: limits.memory_bytes,
            timeout: limits.timeout,
        });
        let opened = tokio::task::spawn_blocking(move || ControlPlane::open(config))
            .await?
            .context("opening the control plane")?;
        let admin_token_file = args.data_dir.join("control-plane").join("admin.token");
        let admin_token = match opened.new_admin_token {
            Some(t) => t,
            None => std::fs::read_to_string(&admin_token_file)
                .with_context(|| format!("reading {}", admin_token_file.display()))?,
        };
        let cp = opened.control_plane;
        let (server_tls, trust, ca) = if args.tls {
            let dir = args.data_dir.join("tls");
            let certs = dev_certs(&dir)
                .with_context(|| format!("making TLS certificates in {}", dir.display()))?;
            let server_tls = ServerTls::from_pem_files(&certs.cert, &certs.key)
                .with_context(|| format!("loading {}", certs.cert.display()))?;
            let trust = Trust::ca_file(&certs.ca)
                .with_context(|| format!("loading {}", certs.ca.display()))?;
            (Some(server_tls), trust, Some(certs.ca))
        } else {
            (None, Trust::for_url("http://"), None)
        };
        let scheme = if args.tls { "https" } else { "http" };
        let listener = tokio::net::TcpListener::bind(args.control_plane)
            .await
            .with_context(|| format!("binding the control plane to {}", args.control_plane))?;
        let cp_url = format!("{scheme}://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let maintenance = cp.spawn_maintenance();
        let options = ServerOptions {
            tls: server_tls.clone(),
            ..ServerOptions::default()
        };
        let server = tokio::spawn(latchkey_control_plane::api::serve_with(
            cp,
            listener,
            options,
            async {
                let _ = stopped.await;
            },
        ));
        let admin = Client::with_trust(&cp_url, &admin_token, &trust);
        // The node's key lives in memory: every start enrols it afresh with a single-use
        // capability, which also revokes the key of the previous run.
        let enrolment = admin
            .enrolment_token(NODE_ID, Some(300))
            .await
            .context("making the node's enrolment capability")?;
        let mut node_config = NodeConfig::new(NODE_ID, &cp_url, &enrolment.token);
        node_config.listen = args.node;
        node_config.region = "dev".into();
        node_config.runtime.cache_dir = Some(args.data_dir.join("node").join("compiled"));
        node_config.ca_file.clone_from(&ca);
        node_config.server.tls = server_tls;
        node_config.runtime.compiler = std::sync::Arc::new(ChildProcess::new(
            exe,
            ["compile-module"],
            limits,
            node_config.runtime.cache_dir.clone(),
        ));
        let node = EdgeNode::start(node_config).await?;
        node.wait_ready(Duration::from_secs(30)).await?;
        Ok(Running {
            admin,
            admin_token_file,
            node,
            cp_url,
            ca,
            stop,
            server,
            maintenance,
        })
    }

    fn node_url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.node.address())
    }

    /// How the banner's commands start: `curl`, with `--cacert` when serving TLS.
    fn curl(&self) -> String {
        match &self.ca {
            Some(ca) => format!("curl --cacert {}", shell_word(&ca.display().to_string())),
            None => "curl".to_owned(),
        }
    }

    async fn stop(self) {
        self.node.shutdown().await;
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.maintenance.abort();
    }
}

/// Runs `latchkey dev` until `shutdown` completes.
pub(crate) async fn run(
    mut args: DevArgs,
    json: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    args.data_dir = crate::absolute(&args.data_dir)?;
    let report = Report { json };
    let projects = projects(&args)?;
    let examples = args.examples || (projects.is_empty() && !args.no_examples);
    let running = Running::start(&args).await?;
    let logs = tokio::spawn(print_logs(running.node.tail().subscribe(), report));
    if examples {
        deploy_examples(&running.admin).await?;
    }
    let deployer = Arc::new(watch::Deployer::new(
        &running.admin,
        report,
        running.node.deployments_in_effect(),
    ));
    for project in &projects {
        deployer.deploy(project).await;
    }
    let token = mint_token(&running.admin, &projects, examples).await?;
    welcome(&running, &projects, examples, &token, report);
    let watching = if projects.is_empty() || args.no_watch {
        None
    } else {
        Some(watch::start(&projects, Arc::clone(&deployer))?)
    };
    shutdown.await;
    drop(watching);
    logs.abort();
    running.stop().await;
    Ok(())
}

/// The projects to run: every `--actor`, else the working directory if it is one.
fn projects(args: &DevArgs) -> anyhow::Result<Vec<Project>> {
    if args.actors.is_empty() {
        let here = std::env::current_dir().context("reading the working directory")?;
        return Ok(Project::find(&here)?.into_iter().collect());
    }
    let mut projects: Vec<Project> = Vec::new();
    for path in &args.actors {
        let project = Project::open(&crate::absolute(path)?)?;
        if let Some(other) = projects.iter().find(|p| p.actor_type == project.actor_type) {
            anyhow::bail!(
                "{} and {} both deploy actor type `{}`",
                other.dir.display(),
                project.dir.display(),
                project.actor_type
            );
        }
        projects.push(project);
    }
    Ok(projects)
}

async fn deploy_examples(admin: &Client) -> anyhow::Result<()> {
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
    Ok(())
}

/// An invoke token for the one project's type, else for every counter (examples), else for
/// every actor type.
async fn mint_token(
    admin: &Client,
    projects: &[Project],
    examples: bool,
) -> anyhow::Result<String> {
    let actor_type = match projects {
        [one] => Some(one.actor_type.clone()),
        [] if examples => Some("counter".to_owned()),
        _ => None,
    };
    let minted = admin
        .mint(&MintRequest {
            actor_type,
            rights: Some(vec!["invoke".into()]),
            expires_in_secs: Some(24 * 3600),
            ..MintRequest::default()
        })
        .await
        .context("minting a token to call the actors with")?;
    Ok(minted.token)
}

/// Prints the node's log lines and call outcomes until aborted.
async fn print_logs(mut tail: LocalTail, report: Report) {
    loop {
        match tail.events.recv().await {
            Ok(event) => {
                let line = TailLine::from_event(NODE_ID, (*event).clone());
                if report.json {
                    let message = TailMessage::Line(line);
                    println!(
                        "{}",
                        serde_json::to_string(&message).expect("tail messages serialise")
                    );
                } else {
                    println!("{}", crate::tail::format_line(&line));
                }
            }
            Err(RecvError::Lagged(missed)) => report.status(
                &format!("… {missed} log lines skipped (printing fell behind)"),
                "dropped",
                json!({ "at": "dev", "count": missed }),
            ),
            Err(RecvError::Closed) => return,
        }
    }
}

fn welcome(running: &Running, projects: &[Project], examples: bool, token: &str, report: Report) {
    let node = running.node_url();
    if report.json {
        let actors: Vec<_> = projects
            .iter()
            .map(|p| json!({ "actor_type": p.actor_type, "project": p.dir }))
            .collect();
        report.status(
            "",
            "ready",
            json!({
                "control_plane": running.cp_url,
                "node": node,
                "admin_token_file": running.admin_token_file,
                "ca_file": running.ca,
                "token": token,
                "actors": actors,
                "examples": examples,
            }),
        );
        return;
    }
    let mut text = format!(
        "\nLatchkey dev deployment is running.\n  control plane  {}   (admin token: {})\n  edge node      {node}\n",
        running.cp_url,
        running.admin_token_file.display()
    );
    let curl = running.curl();
    if examples {
        text.push_str(&examples_text(&node, token, &curl));
    }
    if !projects.is_empty() {
        text.push_str(&projects_text(&node, projects, token, &curl));
    }
    text.push_str("\nManage it with the CLI (it finds the dev admin token by itself):\n");
    if let Some(ca) = &running.ca {
        text.push_str(&format!(
            "  export LATCHKEY_CONTROL_PLANE={} LATCHKEY_CA_FILE={}\n",
            running.cp_url,
            shell_word(&ca.display().to_string())
        ));
    }
    text.push_str(
        "  latchkey modules; latchkey deployment <actor-type>; latchkey tail\n\nCtrl-C stops it; state is kept in the data directory.\n",
    );
    println!("{text}");
}

/// `word` as one shell word: as it is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn examples_text(node: &str, token: &str, curl: &str) -> String {
    format!(
        r#"
The example actors (counter, rate-limiter, chat-room, delegator) are deployed.
A token for every counter (invoke, 24 h):

  export TOKEN={token}

Call one:
  {curl} -X POST -H "Authorization: Bearer $TOKEN" {node}/v1/actors/counter/my-first/inc
  {curl} -X POST -H "Authorization: Bearer $TOKEN" -d 5 {node}/v1/actors/counter/my-first/inc
  {curl} -X POST -H "Authorization: Bearer $TOKEN" {node}/v1/actors/counter/my-first/get
"#
    )
}

fn projects_text(node: &str, projects: &[Project], token: &str, curl: &str) -> String {
    let mut text = String::from("\n");
    for p in projects {
        text.push_str(&format!(
            "Actor `{}` from {}: {node}/v1/actors/{}/<key>/<method>\n",
            p.actor_type,
            p.dir.display(),
            p.actor_type
        ));
    }
    let scope = match projects {
        [one] => format!("every `{}` actor", one.actor_type),
        _ => "every actor type".to_owned(),
    };
    let first = &projects[0].actor_type;
    text.push_str(&format!(
        r#"Its sources are watched: a change is built and deployed, and live actors switch to it
between calls, keeping their state. Their log lines and calls show below.
A token for {scope} (invoke, 24 h):

  export TOKEN={token}

Call one (a method of its `export_actor!` table, a JSON body as its argument):
  {curl} -X POST -H "Authorization: Bearer $TOKEN" {node}/v1/actors/{first}/my-first/<method>
"#
    ));
    text
}

/// `path` shortened for messages: relative to the working directory when inside it.
pub(crate) fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|here| path.strip_prefix(here).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
