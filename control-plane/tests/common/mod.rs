//! Shared test helpers: registries over deterministic stores, and the stub actor components of
//! the test kit (`latchkey_test_kit::component`) under their old name.

#![allow(dead_code, unreachable_pub)]

pub mod fixtures;

pub use latchkey_test_kit::component::actor_component;

use std::sync::Arc;

use latchkey_control_plane::{Limits, Registry};
use latchkey_store::{CommitMode, EmbeddedStore, EngineOptions, ManualClock, MemoryStore, Store};
use latchkey_wire::lease::LeaseSettings;

/// Leases of 1 s (1,000,000 versions); two heartbeats make a node eligible.
pub const SETTINGS: LeaseSettings = LeaseSettings {
    ttl_versions: 1_000_000,
    heartbeat_interval_ms: 100,
    min_heartbeats: 2,
};

/// A registry over a deterministic memory store driven by `clock`.
pub fn memory_registry(clock: &ManualClock) -> Registry {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::deterministic(clock.clone()));
    Registry::new(store, SETTINGS, Limits::default())
}

/// A registry over an embedded store with group commit, driven by `clock`.
pub fn embedded_registry(dir: &std::path::Path, clock: &ManualClock) -> Registry {
    let options = EngineOptions {
        commit_mode: CommitMode::Grouped { max_batch: 256 },
        clock: Arc::new(clock.clone()),
    };
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open_with(dir.join("store.redb"), &options).unwrap());
    Registry::new(store, SETTINGS, Limits::default())
}
