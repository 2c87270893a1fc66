//! The admin CLI: modules, deployments, tokens, nodes and activations through the control
//! plane's admin API, offline token attenuation, and calling actors through an edge node.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use latchkey_caps::{Capability, KeyScope, Rights, Token};
use latchkey_wire::admin::{MintRequest, RevokeRequest, RollbackPolicy};
use latchkey_wire::client::Client;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

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
    control_plane: String,
    /// Token to present (default: `--token-file`, else the dev deployment's admin token).
    #[arg(long, env = "LATCHKEY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the token to present.
    #[arg(long, env = "LATCHKEY_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

impl Target {
    fn token(&self) -> anyhow::Result<String> {
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

    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.control_plane, &self.token()?))
    }
}

/// What a token may do: used by `mint` and `attenuate`.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct Restrict {
    /// Only this actor type.
    #[arg(long)]
    actor_type: Option<String>,
    /// Only this key.
    #[arg(long, conflicts_with = "key_prefix")]
    key: Option<String>,
    /// Only keys starting with this.
    #[arg(long)]
    key_prefix: Option<String>,
    /// Only these methods (comma-separated).
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<String>>,
    /// Only these rights (comma-separated: invoke, deploy, mint, revoke, admin, read-state).
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
    /// Upload a WASM component; prints its content id.
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
        /// Content id of an uploaded module.
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
    /// Mint a token no wider than yours.
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
    /// Mint a node's capability.
    NodeToken {
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

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn mint_request(r: Restrict) -> MintRequest {
    MintRequest {
        actor_type: r.actor_type,
        key: r.key,
        key_prefix: r.key_prefix,
        methods: r.methods,
        rights: r.rights,
        expires_in_secs: r.expires_in,
        audience: r.audience,
    }
}

fn capability(r: Restrict) -> anyhow::Result<Capability> {
    let mut cap = Capability {
        actor_type: r.actor_type,
        audience: r.audience,
        methods: r.methods.map(|m| m.into_iter().collect()),
        ..Capability::default()
    };
    cap.keys = r
        .key
        .map(KeyScope::Exact)
        .or(r.key_prefix.map(KeyScope::Prefix));
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

pub(crate) async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Upload { file, target } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            print(&target.client()?.upload_module(bytes).await?)
        }
        AdminCommand::Deploy {
            actor_type,
            version,
            canary,
            reason,
            target,
        } => {
            let client = target.client()?;
            let info = match canary {
                Some(percent) => client.canary(&actor_type, &version, percent).await?,
                None => {
                    client
                        .deploy(&actor_type, &version, reason.as_deref())
                        .await?
                }
            };
            print(&info)
        }
        AdminCommand::Undeploy {
            actor_type,
            reason,
            target,
        } => print(
            &target
                .client()?
                .remove_deployment(&actor_type, reason.as_deref())
                .await?,
        ),
        AdminCommand::Region {
            name,
            weight,
            jurisdiction,
            delete,
            target,
        } => {
            let client = target.client()?;
            match name {
                None => print(&client.regions().await?),
                Some(name) if delete => {
                    client.delete_region(&name).await?;
                    println!("region {name} removed");
                    Ok(())
                }
                Some(name) => {
                    let request = latchkey_wire::admin::RegionRequest {
                        placement_weight: weight,
                        jurisdiction,
                    };
                    print(&client.put_region(&name, &request).await?)
                }
            }
        }
        AdminCommand::Rollout {
            action,
            actor_type,
            reason,
            target,
        } => print(
            &target
                .client()?
                .deployment_action(&actor_type, &action, reason.as_deref())
                .await?,
        ),
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
            print(&target.client()?.set_policy(&actor_type, &policy).await?)
        }
        AdminCommand::Deployment { actor_type, target } => {
            print(&target.client()?.deployment(&actor_type).await?)
        }
        AdminCommand::Modules { target } => print(&target.client()?.modules().await?),
        AdminCommand::Nodes { target } => print(&target.client()?.nodes().await?),
        AdminCommand::Activations { actor_type, target } => {
            print(&target.client()?.activations(actor_type.as_deref()).await?)
        }
        AdminCommand::Mint { restrict, target } => {
            print(&target.client()?.mint(&mint_request(restrict)).await?)
        }
        AdminCommand::Attenuate { token, restrict } => {
            let narrowed = Token::from_text(&token)
                .context("reading the token")?
                .attenuate(&capability(restrict)?)
                .context("narrowing the token")?;
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
            print(&target.client()?.revoke(&request).await?)
        }
        AdminCommand::NodeToken { node_id, target } => {
            print(&target.client()?.node_token(&node_id).await?)
        }
        AdminCommand::Call {
            actor_type,
            key,
            method,
            payload,
            node,
            target,
        } => {
            let segment = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
            let path = format!(
                "/v1/actors/{}/{}/{}",
                segment(&actor_type),
                segment(&key),
                segment(&method)
            );
            let body = payload.unwrap_or_default().into_bytes();
            let client = Client::new(&node, &target.token()?);
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
                Ok(json) => print(&json),
                Err(_) => {
                    println!("{}", String::from_utf8_lossy(&answer));
                    Ok(())
                }
            }
        }
    }
}
