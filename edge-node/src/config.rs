//! An edge node's configuration, and its command-line form.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::identity::IdentityConfig;
use latchkey_wire::server::{ListenerArgs, ServerOptions};

use crate::runtime::RuntimeConfig;

/// The node's defaults: [`NodeConfig::new`], [`RuntimeConfig::default`] and the command line
/// ([`NodeArgs`]) all take them from here.
pub(crate) mod defaults {
    /// Longest a call may take end to end, in milliseconds.
    pub(crate) const CALL_TIMEOUT_MS: u64 = 30_000;
    /// Calls waiting per actor before new ones are refused.
    pub(crate) const MAILBOX: usize = 256;
    /// Most activations held at once.
    pub(crate) const MAX_ACTIVATIONS: usize = 10_000;
    /// Seconds an idle activation is kept.
    pub(crate) const IDLE_TIMEOUT_SECS: u64 = 300;
    /// Largest request payload, in KiB.
    pub(crate) const MAX_PAYLOAD_KB: usize = 1024;
    /// Most activations' commits sent to the control plane in one request.
    pub(crate) const MAX_COMMIT_BATCH: usize = 512;
    /// Linear memory limit per actor instance, in MiB.
    pub(crate) const MEMORY_LIMIT_MB: usize = 64;
    /// CPU time a call may use, in milliseconds.
    pub(crate) const CPU_LIMIT_MS: u64 = 2_000;
}

/// How to run an edge node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Unique node id (`A-Z a-z 0-9 . _ -`).
    pub node_id: String,
    /// Region the node runs in.
    pub region: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address other nodes forward calls to: `host:port` (plain HTTP) or `https://host:port`
    /// (default: the bound listen address, with `https://` when serving TLS).
    pub advertise: Option<String>,
    /// Control plane base URL, e.g. `http://10.0.0.1:7070` or `https://…`.
    pub control_plane: String,
    /// Where the node keeps its key and certificate, and how it enrols.
    pub identity: IdentityConfig,
    /// CA certificates (PEM) trusted for `https://` to the control plane and other nodes
    /// (default: the platform's store).
    pub ca_file: Option<PathBuf>,
    /// The listener's limits and TLS (public ingress and forwarded calls alike).
    pub server: ServerOptions,
    /// wasmtime limits and the compiled-module cache.
    pub runtime: RuntimeConfig,
    /// Longest a call may take end to end.
    pub call_timeout: Duration,
    /// Calls waiting per actor before new ones are refused as overloaded.
    pub mailbox_size: usize,
    /// Most activations held (idle ones beyond it are evicted, least recently used first).
    pub max_activations: usize,
    /// Activations idle this long are evicted.
    pub idle_timeout: Duration,
    /// Largest request payload, in bytes.
    pub max_payload: usize,
    /// Most activations' commits sent to the control plane in one request (1: each alone).
    pub max_commit_batch: usize,
}

impl NodeConfig {
    /// Defaults for a node that talks to `control_plane`, with a key in memory and
    /// `enrolment_token` to enrol it (see [`IdentityConfig`]).
    pub fn new(node_id: &str, control_plane: &str, enrolment_token: &str) -> Self {
        NodeConfig {
            node_id: node_id.to_owned(),
            region: "local".into(),
            listen: "127.0.0.1:0".parse().expect("valid address"),
            advertise: None,
            control_plane: control_plane.to_owned(),
            identity: IdentityConfig {
                dir: None,
                enrolment_token: Some(enrolment_token.to_owned()).filter(|t| !t.is_empty()),
            },
            ca_file: None,
            server: ServerOptions::default(),
            runtime: RuntimeConfig::default(),
            call_timeout: Duration::from_millis(defaults::CALL_TIMEOUT_MS),
            mailbox_size: defaults::MAILBOX,
            max_activations: defaults::MAX_ACTIVATIONS,
            idle_timeout: Duration::from_secs(defaults::IDLE_TIMEOUT_SECS),
            max_payload: defaults::MAX_PAYLOAD_KB << 10,
            max_commit_batch: defaults::MAX_COMMIT_BATCH,
        }
    }
}

/// Command-line arguments of an edge node.
#[derive(Clone, Debug, clap::Args)]
pub struct NodeArgs {
    /// Unique node id.
    #[arg(long, env = "LATCHKEY_NODE_ID")]
    pub node_id: String,
    /// Region the node runs in.
    #[arg(long, env = "LATCHKEY_REGION", default_value = "local")]
    pub region: String,
    /// Address to listen on.
    #[arg(long, env = "LATCHKEY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address other nodes forward calls to: `host:port`, or `https://host:port` when serving
    /// TLS (default: the listen address, with `https://` when serving TLS).
    #[arg(long, env = "LATCHKEY_ADVERTISE")]
    pub advertise: Option<String>,
    /// Control plane base URL.
    #[arg(
        long,
        env = "LATCHKEY_CONTROL_PLANE",
        default_value = "http://127.0.0.1:7070"
    )]
    pub control_plane: String,
    /// A single-use enrolment capability (from `latchkey node-enrolment <node-id>`), needed
    /// while the node holds no valid certificate (first start, or stopped past its expiry).
    #[arg(long, env = "LATCHKEY_ENROLMENT_TOKEN", hide_env_values = true)]
    pub enrolment_token: Option<String>,
    /// File holding the enrolment capability.
    #[arg(long, env = "LATCHKEY_ENROLMENT_TOKEN_FILE")]
    pub enrolment_token_file: Option<PathBuf>,
    /// CA certificates (PEM) to trust for https:// to the control plane and to other nodes
    /// (default: the platform's trust store).
    #[arg(long, env = "LATCHKEY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// TLS (public ingress and node-to-node calls share the one listener) and its limits.
    #[command(flatten)]
    pub listener: ListenerArgs,
    /// Directory for the node's key and certificate (`identity/`, mode 0700) and the
    /// compiled-module cache.
    #[arg(long, env = "LATCHKEY_DATA_DIR", default_value = "./latchkey-node")]
    pub data_dir: PathBuf,
    /// Linear memory limit per actor instance, in MiB.
    #[arg(long, default_value_t = defaults::MEMORY_LIMIT_MB)]
    pub memory_limit_mb: usize,
    /// CPU time limit per call, in milliseconds.
    #[arg(long, default_value_t = defaults::CPU_LIMIT_MS)]
    pub cpu_limit_ms: u64,
    /// Wall-clock limit per call, in milliseconds.
    #[arg(long, default_value_t = defaults::CALL_TIMEOUT_MS)]
    pub call_timeout_ms: u64,
    /// Calls waiting per actor before new ones are refused.
    #[arg(long, default_value_t = defaults::MAILBOX)]
    pub mailbox: usize,
    /// Most activations held at once.
    #[arg(long, default_value_t = defaults::MAX_ACTIVATIONS)]
    pub max_activations: usize,
    /// Seconds an idle activation is kept.
    #[arg(long, default_value_t = defaults::IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,
    /// Largest request payload, in KiB.
    #[arg(long, default_value_t = defaults::MAX_PAYLOAD_KB)]
    pub max_payload_kb: usize,
    /// Most activations' commits sent to the control plane in one request (1: each alone).
    #[arg(long, default_value_t = defaults::MAX_COMMIT_BATCH)]
    pub max_commit_batch: usize,
}

impl NodeArgs {
    /// The configuration these arguments describe.
    pub fn into_config(self) -> anyhow::Result<NodeConfig> {
        let enrolment_token = match (self.enrolment_token, &self.enrolment_token_file) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "reading the enrolment capability from {}: {e}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        }
        .filter(|t| !t.is_empty());
        let mut config = NodeConfig::new(&self.node_id, &self.control_plane, "");
        config.identity = IdentityConfig {
            dir: Some(self.data_dir.join("identity")),
            enrolment_token,
        };
        config.region = self.region;
        config.listen = self.listen;
        config.advertise = self.advertise;
        config.ca_file = self.ca_file;
        config.server = self
            .listener
            .options()
            .map_err(|e| anyhow::anyhow!("loading the TLS certificate and key: {e}"))?;
        config.runtime.memory_limit = self.memory_limit_mb << 20;
        config.runtime.cpu_limit = Duration::from_millis(self.cpu_limit_ms);
        config.runtime.cache_dir = Some(self.data_dir.join("compiled"));
        config.call_timeout = Duration::from_millis(self.call_timeout_ms);
        config.mailbox_size = self.mailbox;
        config.max_activations = self.max_activations;
        config.idle_timeout = Duration::from_secs(self.idle_timeout_secs);
        config.max_payload = self.max_payload_kb << 10;
        config.max_commit_batch = self.max_commit_batch;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    /// The command line's defaults are the configuration's: a node started with no flags runs as
    /// one built with `NodeConfig::new`.
    #[test]
    fn the_command_line_defaults_are_the_configuration_defaults() {
        let args = Cli::parse_from(["edge-node", "--node-id", "n1"]).node;
        let from_cli = args.into_config().expect("defaults are valid");
        let built = NodeConfig::new("n1", "http://127.0.0.1:7070", "");
        assert_eq!(from_cli.call_timeout, built.call_timeout);
        assert_eq!(from_cli.mailbox_size, built.mailbox_size);
        assert_eq!(from_cli.max_activations, built.max_activations);
        assert_eq!(from_cli.idle_timeout, built.idle_timeout);
        assert_eq!(from_cli.max_payload, built.max_payload);
        assert_eq!(from_cli.max_commit_batch, built.max_commit_batch);
        assert_eq!(from_cli.runtime.memory_limit, built.runtime.memory_limit);
        assert_eq!(from_cli.runtime.cpu_limit, built.runtime.cpu_limit);
        assert_eq!(from_cli.region, built.region);
        assert_eq!(from_cli.control_plane, built.control_plane);
    }
}
