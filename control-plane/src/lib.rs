//! The Latchkey control plane: the single source of truth for which edge nodes are alive, where
//! each actor is activated, which code each actor type runs, and which tokens are revoked.
//!
//! - [`fencing`]: the activation-fencing protocol's decisions, as pure functions.
//! - [`registry`]: every operation as one store transaction over [`latchkey_store`].
//! - [`authority`]: issuer keys, trusted keys, revocations, token checks.
//! - [`tail`]: tail sessions (actors' log lines and call outcomes as they happen).
//! - [`ratelimit`]: token buckets (new actors per token id).
//! - [`api`]: the admin (JSON) and node (postcard) HTTP APIs.
//!
//! [`ControlPlane`] puts them together; the `control-plane` binary and the `latchkey dev`
//! command run one.

pub mod api;
pub mod authority;
pub mod cli;
pub mod compile_check;
pub mod error;
pub mod fencing;
pub mod keys;
pub mod ratelimit;
pub mod records;
pub mod registry;
pub mod rollout;
pub mod tail;
pub mod validate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use latchkey_store::{Store, StoreSpec, VERSIONS_PER_SECOND};
use latchkey_wire::lease::LeaseSettings;

pub use error::RegistryError;
pub use registry::{Limits, Registry};

use authority::Authority;

/// Tail sessions one control plane instance serves at once.
pub const MAX_TAIL_SESSIONS: usize = 64;

/// How to run a control plane.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where issuer keys and the admin token live (and the embedded store, by default).
    pub data_dir: PathBuf,
    /// Which store holds the registry.
    pub store: StoreSpec,
    /// Lease settings handed to nodes.
    pub lease: LeaseSettings,
    /// Size limits.
    pub limits: Limits,
    /// How long the change feed keeps events for followers.
    pub feed_retention: Duration,
    /// Lifetime of the certificates issued to nodes (they renew at half-life).
    pub node_certificate_ttl: Duration,
    /// How long after its placement ended the activation record of an actor that stores
    /// nothing is kept (then maintenance deletes it).
    pub activation_retention: Duration,
    /// What checks that an upload compiles within bounds (`None`: uploads are validated but
    /// not compile-checked).
    pub compile_check: Option<compile_check::CompileCheck>,
}

/// Default [`Config::activation_retention`]: 7 days.
pub const DEFAULT_ACTIVATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Config {
    /// Defaults for a data directory: the embedded store at `<data_dir>/store.redb`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Config {
            store: StoreSpec::Embedded(data_dir.join("store.redb")),
            data_dir,
            lease: LeaseSettings::default(),
            limits: Limits::default(),
            feed_retention: Duration::from_secs(3600),
            node_certificate_ttl: Duration::from_secs(12 * 3600),
            activation_retention: DEFAULT_ACTIVATION_RETENTION,
            compile_check: None,
        }
    }
}

/// Creates `dir` and any missing parents with mode 0700 (owner only: it holds issuer keys, the
/// admin token and, by default, the store). An existing directory is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> Result<(), RegistryError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| RegistryError::Unavailable(format!("creating {}: {e}", dir.display())))
}

/// A running control plane's state.
pub struct ControlPlane {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Keys, revocations and token checks.
    pub authority: Arc<Authority>,
    /// Tail sessions open on this instance.
    pub tail: Arc<tail::TailHub>,
    /// Bumped after this instance writes to the change feed, to wake long-polls.
    feed: tokio::sync::watch::Sender<u64>,
    config: Config,
}

/// A control plane just opened.
pub struct Opened {
    /// The control plane.
    pub control_plane: Arc<ControlPlane>,
    /// The admin token, if this start created the root key (it is also in `admin.token`).
    pub new_admin_token: Option<String>,
}

impl ControlPlane {
    /// Opens the store the config names and the authority in its data directory (created
    /// owner-only, mode 0700, if missing).
    pub fn open(config: Config) -> Result<Opened, RegistryError> {
        create_private_dir(&config.data_dir)?;
        let store = latchkey_store::open(&config.store)?;
        Self::open_with_store(store, config)
    }

    /// Opens with an already-open store (tests, simulation, benchmarks).
    pub fn open_with_store(store: Arc<dyn Store>, config: Config) -> Result<Opened, RegistryError> {
        create_private_dir(&config.data_dir)?;
        let registry = Arc::new(Registry::new(store, config.lease, config.limits));
        let opened = Authority::open(&config.data_dir, &registry)?;
        let (feed, _) = tokio::sync::watch::channel(0);
        Ok(Opened {
            control_plane: Arc::new(ControlPlane {
                registry,
                authority: Arc::new(opened.authority),
                tail: tail::TailHub::new(MAX_TAIL_SESSIONS),
                feed,
                config,
            }),
            new_admin_token: opened.new_admin_token,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Wakes long-polls after a feed write.
    pub fn feed_changed(&self) {
        self.feed.send_modify(|n| *n += 1);
    }

    /// Background upkeep until the returned task is aborted: reloads keys and revocations other
    /// instances may have written (every 2 s), trims the change feed and collects idle
    /// activation records (every minute).
    pub fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let cp = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            let mut ticks = 0u64;
            loop {
                tick.tick().await;
                ticks += 1;
                let cp2 = Arc::clone(&cp);
                let trim = ticks.is_multiple_of(30);
                let result = tokio::task::spawn_blocking(move || {
                    cp2.authority.refresh(&cp2.registry)?;
                    if trim {
                        let keep = cp2.config.feed_retention.as_secs() * VERSIONS_PER_SECOND;
                        let mut tx = cp2.registry.store().begin()?;
                        let now = tx.read_version()?;
                        drop(tx);
                        cp2.registry.trim_feed(now.saturating_sub(keep))?;
                        let idle = cp2.config.activation_retention.as_secs() * VERSIONS_PER_SECOND;
                        let collected = cp2.registry.collect_idle_activations(now, idle)?;
                        if collected > 0 {
                            tracing::info!(collected, "deleted idle activation records");
                        }
                    }
                    Ok::<_, RegistryError>(())
                })
                .await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "maintenance failed; retrying"),
                    Err(e) => tracing::error!(error = %e, "maintenance task panicked"),
                }
            }
        })
    }
}
