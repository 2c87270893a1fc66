//! The registry: every control-plane operation as one store transaction (run with retries),
//! reading records, deciding with the pure [`crate::fencing`] and [`deployments`] logic, and
//! writing the result. Synchronous; the HTTP layer calls it from blocking tasks.

mod activations;
mod alarms;
mod collect;
pub mod deployments;
mod feed;
mod identities;
mod modules;
mod nodes;

pub(crate) use nodes::check_node_id;
mod outcomes;
mod regions;
mod state;
mod usage;

use std::sync::Arc;

use latchkey_store::{Committed, Store, Transaction, run};
use latchkey_wire::lease::LeaseSettings;
use latchkey_wire::limits;

use crate::error::RegistryError;
use crate::ratelimit::{BucketSettings, CreationLimiter};

/// Size limits the registry enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest module (component) upload, in bytes.
    pub max_module_bytes: usize,
    /// Largest actor storage key, in bytes.
    pub max_state_key_bytes: usize,
    /// Largest actor storage value, in bytes.
    pub max_state_value_bytes: usize,
    /// Most bytes (keys and values) one commit may write.
    pub max_commit_bytes: usize,
    /// Most writes in one commit.
    pub max_commit_writes: usize,
    /// Longest actor type or key, in bytes.
    pub max_name_bytes: usize,
    /// Most bytes one actor may store: the sum over its stored entries of key length plus
    /// value length, checked in every commit's transaction.
    pub max_actor_storage_bytes: u64,
    /// New actors one token id may create per second (0: unlimited), on one control-plane
    /// instance.
    pub new_actors_per_second: u64,
    /// New actors one token id may create at once after a quiet period.
    pub new_actor_burst: u64,
}

/// Default rate of new actors per token id: 100 per second.
pub const DEFAULT_NEW_ACTORS_PER_SECOND: u64 = 100;
/// Default burst of new actors per token id.
pub const DEFAULT_NEW_ACTOR_BURST: u64 = 200;

/// Default storage quota per actor: 128 MiB.
pub const DEFAULT_MAX_ACTOR_STORAGE_BYTES: u64 = 128 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_module_bytes: 8 << 20,
            max_state_key_bytes: limits::MAX_STATE_KEY_BYTES,
            max_state_value_bytes: limits::MAX_STATE_VALUE_BYTES,
            max_commit_bytes: limits::MAX_COMMIT_BYTES,
            max_commit_writes: limits::MAX_COMMIT_WRITES,
            max_name_bytes: 512,
            max_actor_storage_bytes: DEFAULT_MAX_ACTOR_STORAGE_BYTES,
            new_actors_per_second: DEFAULT_NEW_ACTORS_PER_SECOND,
            new_actor_burst: DEFAULT_NEW_ACTOR_BURST,
        }
    }
}

/// The control plane's registry over a store.
pub struct Registry {
    store: Arc<dyn Store>,
    settings: LeaseSettings,
    limits: Limits,
    creations: CreationLimiter,
}

impl Registry {
    /// A registry over `store`.
    pub fn new(store: Arc<dyn Store>, settings: LeaseSettings, limits: Limits) -> Self {
        Registry {
            store,
            settings,
            limits,
            creations: CreationLimiter::new(BucketSettings {
                per_second: limits.new_actors_per_second,
                burst: limits.new_actor_burst,
            }),
        }
    }

    /// The lease settings handed to nodes.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// The limits enforced.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The store, for operations outside the registry (e.g. benchmarks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store's current version next to this process's wall clock.
    pub fn clock(&self) -> Result<latchkey_wire::admin::ClockInfo, RegistryError> {
        let version = self.store.begin()?.read_version()?;
        let unix_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ok(latchkey_wire::admin::ClockInfo {
            version,
            unix_micros,
        })
    }

    fn run<T>(
        &self,
        f: impl FnMut(&mut dyn Transaction) -> Result<T, RegistryError>,
    ) -> Result<Committed<T>, RegistryError> {
        run(&*self.store, f)
    }

    /// Checks an actor type or key: non-empty, bounded, no control characters.
    fn check_name(&self, what: &str, value: &str) -> Result<(), RegistryError> {
        if value.is_empty() || value.len() > self.limits.max_name_bytes {
            return Err(RegistryError::BadRequest(format!(
                "{what} must be 1 to {} bytes, got {}",
                self.limits.max_name_bytes,
                value.len()
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(RegistryError::BadRequest(format!(
                "{what} `{}` contains control characters",
                value.escape_debug()
            )));
        }
        Ok(())
    }
}
