//! Shared test helpers: actor components built in-process (no WASM toolchain needed) and
//! registries over deterministic stores.

#![allow(dead_code, unreachable_pub)]

pub mod fixtures;

use std::sync::Arc;

use latchkey_control_plane::{Limits, Registry};
use latchkey_store::{CommitMode, EmbeddedStore, EngineOptions, ManualClock, MemoryStore, Store};
use latchkey_wire::lease::LeaseSettings;
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

const ACTOR_WIT: &str = include_str!("../../../actor-sdk/wit/actor.wit");

/// A valid actor component (stub code) whose bytes, and so content id, depend on `tag`.
pub fn actor_component(tag: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("actor.wit", ACTOR_WIT).unwrap();
    let world = resolve.select_world(&[pkg], Some("actor")).unwrap();
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    // A custom section makes each tag a distinct module.
    let name = b"latchkey-test-tag";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    module.push(0);
    leb128(&mut module, payload.len());
    module.extend_from_slice(&payload);
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

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

/// Serves `cp`'s APIs on a free loopback port until the returned sender is used or dropped;
/// returns the base URL.
pub async fn serve(
    cp: Arc<latchkey_control_plane::ControlPlane>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(latchkey_control_plane::api::serve(cp, listener, async {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// A client for node `id` with a fresh key, enrolled through a single-use capability made by
/// `admin`: every request it sends is signed by that key.
pub async fn enrolled_node(
    admin: &latchkey_wire::client::Client,
    id: &str,
) -> latchkey_wire::client::Client {
    use latchkey_caps::node::{NodeCertificate, NodeKey};
    use latchkey_wire::identity::NodeCredentials;
    let token = admin.enrolment_token(id, None).await.unwrap().token;
    let credentials = Arc::new(NodeCredentials::new(id, NodeKey::generate()));
    let answer = admin.enrol(&credentials, &token).await.unwrap();
    credentials.set_certificate(NodeCertificate::from_text(&answer.certificate).unwrap());
    latchkey_wire::client::Client::for_node(admin.base_url(), credentials)
}
