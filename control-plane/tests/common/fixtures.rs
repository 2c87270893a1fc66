//! Registry fixtures for the fencing and upgrade tests: nodes joining and heartbeating, leases
//! lapsing on a manual clock, deployments of stub components, and fenced reads and commits.

use latchkey_control_plane::fencing::FenceRejection;
use latchkey_control_plane::registry::deployments::DeployOp;
use latchkey_control_plane::{Registry, RegistryError};
use latchkey_store::ManualClock;
use latchkey_wire::node::{
    Activation, CommitRequest, EnsureActivationRequest, ReadOp, ReadStateRequest,
    ReadStateResponse, RegisterRequest, StateWrite,
};

use super::{SETTINGS, actor_component};

/// Commit sequence numbers, increasing across the whole test process (so per activation too).
pub fn next_seq() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub const START: u64 = 1_000_000_000_000;
/// Past any lease granted before: the TTL plus room for the versions commits consume while the
/// manual clock stands still (one per commit).
pub const PAST_TTL: u64 = SETTINGS.ttl_versions + 10_000;

pub fn join(r: &Registry, node: &str, region: &str) {
    r.register(
        node,
        &RegisterRequest {
            region: region.into(),
            address: format!("{node}:1"),
        },
    )
    .unwrap();
    for _ in 0..SETTINGS.min_heartbeats {
        r.heartbeat(node).unwrap();
    }
}

/// The node restarts: its new process's registration is refused while the old lease is live
/// (the old process may still serve from memory), then accepted once it lapsed.
pub fn restart(r: &Registry, clock: &ManualClock, node: &str, region: &str) {
    let refused = r
        .register(
            node,
            &RegisterRequest {
                region: region.into(),
                address: format!("{node}:1"),
            },
        )
        .unwrap_err();
    assert!(
        matches!(&refused, RegistryError::Unavailable(m) if m.contains("live lease")),
        "{refused}"
    );
    lapse(r, clock, &[]);
    join(r, node, region);
}

/// Lets every lease granted so far lapse, except those of `alive`, which keep heartbeating.
pub fn lapse(r: &Registry, clock: &ManualClock, alive: &[&str]) {
    for _ in 0..2 {
        clock.advance(PAST_TTL / 2 + 1);
        for n in alive {
            r.heartbeat(n).unwrap();
        }
    }
}

pub fn deploy(r: &Registry, tag: &str) -> String {
    let module = r.put_module(&actor_component(tag)).unwrap();
    r.change_deployment(
        "counter",
        &DeployOp::Deploy(module.content_id.clone()),
        None,
    )
    .unwrap();
    module.content_id
}

pub fn ensure(r: &Registry, node: &str, key: &str) -> Activation {
    r.ensure_activation(node, &EnsureActivationRequest::any_region("counter", key))
        .unwrap()
}

pub fn put(r: &Registry, node: &str, act: &Activation, value: &[u8]) -> Result<u64, RegistryError> {
    r.commit_state(
        node,
        &CommitRequest {
            seq: next_seq(),
            fence: act.fence(),
            writes: vec![StateWrite::Put(b"n".to_vec(), value.to_vec())],
            alarms: Vec::new(),
        },
    )
    .map(|c| c.version)
}

pub fn get(r: &Registry, node: &str, act: &Activation) -> Result<Option<Vec<u8>>, RegistryError> {
    match r.read_state(
        node,
        &ReadStateRequest {
            fence: act.fence(),
            op: ReadOp::Get(vec![b"n".to_vec()]),
        },
    )? {
        ReadStateResponse::Values(mut v) => Ok(v.remove(0)),
        other => panic!("unexpected {other:?}"),
    }
}

pub fn fenced(result: Result<impl std::fmt::Debug, RegistryError>) -> FenceRejection {
    match result {
        Err(RegistryError::Fenced(reason)) => reason,
        other => panic!("expected a fenced error, got {other:?}"),
    }
}
