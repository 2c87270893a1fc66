//! The admin CLI: modules, deployments, tokens, nodes and activations through the control
//! plane's admin API, offline token attenuation, and calling actors through an edge node.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use latchkey_caps::{Capability, KeyScope, Rights, Token};
use latchkey_wire::admin::{MintRequest, RevokeRequest, RollbackPolicy};
use latchkey_wire::client::{Client, Progress};
use latchkey_wire::path::segment;
use latchkey_wire::tls::Trust;
use serde_json::Value;

use crate::output::{self, Times};
use crate::show;

/// Where the dev deployment keeps its admin token.
const DEV_TOKEN: &str = "./latchkey-dev/control-plane/admin.token";

/// Where to send admin requests, and the token to present.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Target {
    /// Control plane base URL.
    #[arg(
        long,
        env = "LATCHKEY_CONTROL_PLANE",
        default_value = "http://127.0.0.1:7070"
    )]
    pub(crate) control_plane: String,
    /// Token to present (default: `--token-file`, else the dev deployment's admin token).
    #[arg(long, env = "LATCHKEY_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// File holding the token to present.
    #[arg(long, env = "LATCHKEY_TOKEN_FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for https:// URLs (default: the platform's trust store).
    #[arg(long, env = "LATCHKEY_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
}

impl Target {
    pub(crate) fn token(&self) -> anyhow::Result<String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let path = self
            .token_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEV_TOKEN));
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_owned())
            .with_context(|| {
                format!(
                    "no token given: use --token, --token-file or LATCHKEY_TOKEN (tried {})",
                    path.display()
                )
            })
    }

    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        self.client_for(&self.control_plane)
    }

    /// A client for `url` (the control plane or an edge node) with the token and the CA file.
    pub(crate) fn client_for(&self, url: &str) -> anyhow::Result<Client> {
        let trust = match &self.ca_file {
            Some(path) => Trust::ca_file(path)
                .with_context(|| format!("loading the CA file {}", path.display()))?,
            None => Trust::for_url(url),
        };
        Ok(Client::with_trust(url, &self.token()?, &trust))
    }
}

/// Which actors and methods: part of what a token may do (`mint`, `attenuate`), and what
/// `tail` follows.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct Scope {
    /// Only this actor type.
    #[arg(long)]
    pub(crate) actor_type: Option<String>,
    /// Only this key.
    #[arg(long, conflicts_with = "key_prefix")]
    pub(crate) key: Option<String>,
    /// Only keys starting with this.
    #[arg(long)]
    pub(crate) key_prefix: Option<String>,
    /// Only these methods (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) methods: Option<Vec<String>>,
}

/// What a token may do: used by `mint` and `attenuate`.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct Restrict {
    #[command(flatten)]
    scope: Scope,
    /// Only these rights (comma-separated: invoke, deploy, mint, revoke, admin, read-state, tail).
    #[arg(long, value_delimiter = ',')]
    rights: Option<Vec<String>>,
    /// Expires this many seconds from now.
    #[arg(long)]
    expires_in: Option<u64>,
    /// Only this principal may present it.
    #[arg(long)]
    audience: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Upload a WASM component; prints its content id (progress on stderr).
    Upload {
        /// The component file.
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Deploy a version to an actor type (or a canary with --canary PERCENT).
    Deploy {
        /// Actor type.
        actor_type: String,
        /// Content id of an uploaded module (or a unique prefix of it).
        version: String,
        /// Run it on this percentage of keys only.
        #[arg(long)]
        canary: Option<f64>,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Promote a canary, abort it, or roll back.
    Rollout {
        /// `promote`, `abort` or `rollback`.
        #[arg(value_parser = ["promote", "abort", "rollback"])]
        action: String,
        /// Actor type.
        actor_type: String,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Set an actor type's automatic rollback policy: roll the version on trial back when more
    /// than --max-error-rate of at least --min-calls calls within --window seconds fail.
    Policy {
        /// Actor type.
        actor_type: String,
        /// Fraction of failed calls (guest errors, traps, limits, failed upgrades), 0 to 1.
        #[arg(long)]
        max_error_rate: f64,
        /// Window, in seconds.
        #[arg(long)]
        window: u64,
        /// Fewest calls in the window to judge by.
        #[arg(long)]
        min_calls: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Stop running an actor type: its actors end and are not placed until a version is deployed
    /// again (their stored state is kept).
    Undeploy {
        /// Actor type.
        actor_type: String,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Declare a region (or change it); with --delete, remove the declaration. Without a name,
    /// list the declared regions.
    Region {
        /// Region name (what its nodes pass as --region).
        name: Option<String>,
        /// Relative share of new placements (0 drains the region; default 100).
        #[arg(long, default_value_t = latchkey_wire::admin::DEFAULT_REGION_WEIGHT)]
        weight: u32,
        /// Jurisdiction tag.
        #[arg(long)]
        jurisdiction: Option<String>,
        /// Remove the declaration instead.
        #[arg(long, conflicts_with_all = ["weight", "jurisdiction"])]
        delete: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Show an actor type's deployment and history.
    Deployment {
        /// Actor type.
        actor_type: String,
        #[command(flatten)]
        target: Target,
    },
    /// List uploaded modules.
    Modules {
        #[command(flatten)]
        target: Target,
    },
    /// List nodes.
    Nodes {
        #[command(flatten)]
        target: Target,
    },
    /// List activations.
    Activations {
        /// Only of this actor type.
        #[arg(long)]
        actor_type: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Mint a token no wider than yours; prints the token (its id and expiry on stderr).
    Mint {
        #[command(flatten)]
        restrict: Restrict,
        #[command(flatten)]
        target: Target,
    },
    /// Narrow a token offline (no control plane needed).
    Attenuate {
        /// The token to narrow.
        token: String,
        #[command(flatten)]
        restrict: Restrict,
    },
    /// Revoke a token (give the token itself, or its id).
    Revoke {
        /// A token (`lk1.…`) or a token id (32 hex digits).
        token_or_id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Make a single-use capability that enrols one edge node's key; prints it (for
    /// `latchkey edge-node --enrolment-token-file`).
    NodeEnrolment {
        /// Node id.
        node_id: String,
        /// Seconds the capability stays usable (default 3600).
        #[arg(long)]
        expires_in: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Remove an edge node's identity: its key is revoked everywhere, so it can no longer
    /// talk to the control plane or other nodes until enrolled again with a new key.
    NodeRemove {
        /// Node id.
        node_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Call an actor through an edge node; prints its answer.
    Call {
        /// Actor type.
        actor_type: String,
        /// Actor key.
        key: String,
        /// Method.
        method: String,
        /// JSON payload.
        payload: Option<String>,
        /// Edge node base URL.
        #[arg(long, env = "LATCHKEY_NODE", default_value = "http://127.0.0.1:8080")]
        node: String,
        #[command(flatten)]
        target: Target,
    },
}

fn mint_request(r: Restrict) -> MintRequest {
    MintRequest {
        actor_type: r.scope.actor_type,
        key: r.scope.key,
        key_prefix: r.scope.key_prefix,
        methods: r.scope.methods,
        rights: r.rights,
        expires_in_secs: r.expires_in,
        audience: r.audience,
    }
}

fn capability(r: Restrict) -> anyhow::Result<Capability> {
    let scope = r.scope;
    let mut cap = Capability {
        actor_type: scope.actor_type,
        audience: r.audience,
        methods: scope.methods.map(|m| m.into_iter().collect()),
        ..Capability::default()
    };
    cap.keys = scope
        .key
        .map(KeyScope::Exact)
        .or(scope.key_prefix.map(KeyScope::Prefix));
    if let Some(names) = r.rights {
        cap.rights = Some(
            names
                .join(",")
                .parse::<Rights>()
                .map_err(anyhow::Error::msg)?,
        );
    }
    cap.expires_at = r
        .expires_in
        .map(|s| latchkey_edge_node::auth::unix_now() + s);
    Ok(cap)
}

/// A content id given in full, or a prefix of one (as tables show them), resolved against the
/// uploaded modules.
async fn resolve_version(client: &Client, given: &str) -> anyhow::Result<String> {
    // A prefix this short would match by accident (an empty one, every module).
    const SHORTEST_PREFIX: usize = 4;
    let prefix = given.len() >= SHORTEST_PREFIX && given.bytes().all(|b| b.is_ascii_hexdigit());
    if given.len() == 64 || !prefix {
        return Ok(given.to_owned());
    }
    let matching: Vec<String> = client
        .modules()
        .await?
        .into_iter()
        .map(|m| m.content_id)
        .filter(|id| id.starts_with(given))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("no uploaded module's content id starts with `{given}`"),
        many => anyhow::bail!(
            "`{given}` is the start of {} content ids ({}); give more of it",
            many.len(),
            many.iter()
                .map(|id| output::short(id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The control plane's clock, to show store versions as dates.
async fn times(client: &Client) -> anyhow::Result<Times> {
    Ok(Times(
        client
            .clock()
            .await
            .context("reading the control plane's clock")?,
    ))
}

/// Runs an admin command; `json`: print JSON instead of text.
pub(crate) async fn run(command: AdminCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::Upload { file, target } => upload(&file, &target, json).await,
        AdminCommand::Deploy {
            actor_type,
            version,
            canary,
            reason,
            target,
        } => {
            let client = target.client()?;
            let version = resolve_version(&client, &version).await?;
            let info = match canary {
                Some(percent) => client.canary(&actor_type, &version, percent).await?,
                None => {
                    client
                        .deploy(&actor_type, &version, reason.as_deref())
                        .await?
                }
            };
            show_or_json(json, &info, show::deployment)
        }
        AdminCommand::Undeploy {
            actor_type,
            reason,
            target,
        } => {
            let info = target
                .client()?
                .remove_deployment(&actor_type, reason.as_deref())
                .await?;
            show_or_json(json, &info, show::deployment)
        }
        AdminCommand::Region {
            name,
            weight,
            jurisdiction,
            delete,
            target,
        } => region(name, weight, jurisdiction, delete, &target, json).await,
        AdminCommand::Rollout {
            action,
            actor_type,
            reason,
            target,
        } => {
            let info = target
                .client()?
                .deployment_action(&actor_type, &action, reason.as_deref())
                .await?;
            show_or_json(json, &info, show::deployment)
        }
        AdminCommand::Policy {
            actor_type,
            max_error_rate,
            window,
            min_calls,
            target,
        } => {
            let policy = RollbackPolicy {
                max_error_rate,
                window_secs: window,
                min_calls,
            };
            let info = target.client()?.set_policy(&actor_type, &policy).await?;
            show_or_json(json, &info, show::deployment)
        }
        AdminCommand::Deployment { actor_type, target } => {
            let client = target.client()?;
            let detail = client.deployment(&actor_type).await?;
            if json {
                return output::json(&detail);
            }
            println!(
                "{}",
                show::deployment_detail(&detail, &times(&client).await?)
            );
            Ok(())
        }
        AdminCommand::Modules { target } => {
            let client = target.client()?;
            let modules = client.modules().await?;
            if json {
                return output::json(&modules);
            }
            println!("{}", show::modules(&modules, &times(&client).await?));
            Ok(())
        }
        AdminCommand::Nodes { target } => {
            let client = target.client()?;
            let nodes = client.nodes().await?;
            if json {
                return output::json(&nodes);
            }
            println!("{}", show::nodes(&nodes, &times(&client).await?));
            Ok(())
        }
        AdminCommand::Activations { actor_type, target } => {
            let list = target.client()?.activations(actor_type.as_deref()).await?;
            show_or_json(json, &list, |l| show::activations(l))
        }
        AdminCommand::Mint { restrict, target } => {
            let minted = target.client()?.mint(&mint_request(restrict)).await?;
            if json {
                return output::json(&minted);
            }
            println!("{}", minted.token);
            note(&show::minted(&minted));
            Ok(())
        }
        AdminCommand::Attenuate { token, restrict } => {
            let narrowed = Token::from_text(&token)
                .context("reading the token")?
                .attenuate(&capability(restrict)?)
                .context("narrowing the token")?;
            if json {
                return output::json(&serde_json::json!({ "token": narrowed.to_string() }));
            }
            println!("{narrowed}");
            Ok(())
        }
        AdminCommand::Revoke {
            token_or_id,
            reason,
            target,
        } => {
            let request = if token_or_id.starts_with("lk") {
                RevokeRequest {
                    token: Some(token_or_id),
                    reason,
                    ..RevokeRequest::default()
                }
            } else {
                RevokeRequest {
                    token_id: Some(token_or_id),
                    reason,
                    ..RevokeRequest::default()
                }
            };
            let revoked = target.client()?.revoke(&request).await?;
            show_or_json(json, &revoked, |r| format!("revoked token {}", r.token_id))
        }
        AdminCommand::NodeEnrolment {
            node_id,
            expires_in,
            target,
        } => {
            let minted = target
                .client()?
                .enrolment_token(&node_id, expires_in)
                .await?;
            if json {
                return output::json(&minted);
            }
            println!("{}", minted.token);
            note(&format!(
                "single-use enrolment capability for node {node_id} (token id {}); give it to `latchkey edge-node --node-id {node_id} --enrolment-token-file <file>`",
                minted.token_id
            ));
            Ok(())
        }
        AdminCommand::NodeRemove { node_id, target } => {
            let revoked = target.client()?.remove_node(&node_id).await?;
            show_or_json(json, &revoked, |r| {
                format!(
                    "removed node {node_id}: its key is revoked ({})",
                    r.token_id
                )
            })
        }
        AdminCommand::Call {
            actor_type,
            key,
            method,
            payload,
            node,
            target,
        } => call(&actor_type, &key, &method, payload, &node, &target).await,
    }
}

/// Prints `value` as JSON, or `show(value)` as text.
fn show_or_json<T: serde::Serialize>(
    json: bool,
    value: &T,
    show: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        return output::json(value);
    }
    println!("{}", show(value));
    Ok(())
}

/// A remark for the person at the terminal (stderr, so that stdout stays what scripts read).
#[allow(clippy::print_stderr)]
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

async fn upload(file: &Path, target: &Target, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let size = bytes.len() as u64;
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("uploading {bytes}/{total_bytes} {wide_bar} {msg}")
            .expect("valid template"),
    );
    let progress = bar.clone();
    let reported: Progress = Arc::new(move |sent| {
        progress.set_position(sent);
        if sent == size {
            progress.set_message("validating");
        }
    });
    let client = target.client()?.with_timeout(Duration::from_secs(300));
    let module = client
        .upload_module_with_progress(bytes, Some(reported))
        .await
        .with_context(|| format!("uploading {}", file.display()));
    bar.finish_and_clear();
    let module = module?;
    if json {
        return output::json(&module);
    }
    println!("{}", module.content_id);
    note(&format!(
        "uploaded {} ({}); deploy it with `latchkey deploy <actor-type> {}`",
        file.display(),
        output::bytes(module.size),
        output::short(&module.content_id)
    ));
    Ok(())
}

async fn region(
    name: Option<String>,
    weight: u32,
    jurisdiction: Option<String>,
    delete: bool,
    target: &Target,
    json: bool,
) -> anyhow::Result<()> {
    let client = target.client()?;
    match name {
        None => {
            let regions = client.regions().await?;
            if json {
                return output::json(&regions);
            }
            println!("{}", show::regions(&regions, &times(&client).await?));
            Ok(())
        }
        Some(name) if delete => {
            client.delete_region(&name).await?;
            if json {
                return output::json(&serde_json::json!({ "removed": name }));
            }
            println!("region {name} removed");
            Ok(())
        }
        Some(name) => {
            let request = latchkey_wire::admin::RegionRequest {
                placement_weight: weight,
                jurisdiction,
            };
            let region = client.put_region(&name, &request).await?;
            show_or_json(json, &region, show::region)
        }
    }
}

async fn call(
    actor_type: &str,
    key: &str,
    method: &str,
    payload: Option<String>,
    node: &str,
    target: &Target,
) -> anyhow::Result<()> {
    let path = format!(
        "/v1/actors/{}/{}/{}",
        segment(actor_type),
        segment(key),
        segment(method)
    );
    let body = payload.unwrap_or_default().into_bytes();
    let client = target.client_for(node)?;
    let answer = client
        .send(
            http::Method::POST,
            &path,
            "application/json",
            body,
            Duration::from_secs(60),
        )
        .await?;
    match serde_json::from_slice::<Value>(&answer) {
        Ok(json) => output::json(&json),
        Err(_) => {
            println!("{}", output::clean(&String::from_utf8_lossy(&answer)));
            Ok(())
        }
    }
}
