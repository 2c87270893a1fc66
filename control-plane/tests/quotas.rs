//! Quotas and rate limits on the real registry over a deterministic store (issue #15, finding
//! 8): per-actor stored bytes checked in the commit's transaction, and new actors per token id.
//! Time is a manual version clock, so no test sleeps. (Collection of idle activation records is
//! in `fencing.rs`.)

mod common;

use std::sync::Arc;

use common::fixtures::*;
use common::{SETTINGS, actor_component};
use latchkey_control_plane::registry::deployments::DeployOp;
use latchkey_control_plane::{Limits, Registry, RegistryError};
use latchkey_store::{ManualClock, MemoryStore, Store};
use latchkey_wire::ErrorCode;
use latchkey_wire::node::{
    Activation, CommitRequest, EnsureActivationRequest, ReadOp, ReadStateRequest,
    ReadStateResponse, StateWrite, UpgradeRequest,
};

fn registry(clock: &ManualClock, limits: Limits) -> Registry {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::deterministic(clock.clone()));
    Registry::new(store, SETTINGS, limits)
}

fn commit(act: &Activation, writes: Vec<StateWrite>) -> CommitRequest {
    CommitRequest {
        seq: next_seq(),
        fence: act.fence(),
        writes,
        alarms: Vec::new(),
    }
}

fn put_kv(k: &str, len: usize) -> StateWrite {
    StateWrite::Put(k.as_bytes().to_vec(), vec![b'v'; len])
}

/// An actor's stored value of `key`, read with its fence.
fn read(r: &Registry, act: &Activation, key: &str) -> Option<Vec<u8>> {
    match r
        .read_state(
            "a",
            &ReadStateRequest {
                fence: act.fence(),
                op: ReadOp::Get(vec![key.as_bytes().to_vec()]),
            },
        )
        .unwrap()
    {
        ReadStateResponse::Values(mut v) => v.remove(0),
        other => panic!("unexpected {other:?}"),
    }
}

fn quota_refusal(result: Result<impl std::fmt::Debug, RegistryError>) -> String {
    match result {
        Err(e @ RegistryError::QuotaExceeded(_)) => {
            assert_eq!(e.code(), ErrorCode::QuotaExceeded);
            assert_eq!(e.code().status(), 507);
            assert!(!e.is_retryable());
            e.to_string()
        }
        other => panic!("expected a quota refusal, got {other:?}"),
    }
}

#[test]
fn stored_bytes_are_counted_per_actor_and_refusals_write_nothing() {
    let clock = ManualClock::new(START);
    let limits = Limits {
        max_actor_storage_bytes: 1_000,
        ..Limits::default()
    };
    let r = registry(&clock, limits);
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let act = ensure(&r, "a", "k");

    // 1 + 600 bytes, then the same key overwritten with 900: 901 stored, within 1,000.
    r.commit_state("a", &commit(&act, vec![put_kv("a", 600)]))
        .unwrap();
    r.commit_state("a", &commit(&act, vec![put_kv("a", 900)]))
        .unwrap();
    // A second key of 1 + 98 would make 1,000: allowed; one more byte is not.
    r.commit_state("a", &commit(&act, vec![put_kv("b", 98)]))
        .unwrap();
    let m = quota_refusal(r.commit_state("a", &commit(&act, vec![put_kv("c", 0)])));
    assert!(
        m.contains("stores 1000 bytes")
            && m.contains("would make it 1001")
            && m.contains("the limit is 1000 bytes per actor"),
        "{m}"
    );
    // A refused commit writes nothing, not even its other writes (here a delete first).
    let refused = commit(
        &act,
        vec![StateWrite::Delete(b"b".to_vec()), put_kv("d", 200)],
    );
    quota_refusal(r.commit_state("a", &refused));
    assert!(read(&r, &act, "b").is_some(), "the delete was not applied");
    assert!(read(&r, &act, "d").is_none());

    // Shrinking and deleting free quota: after deleting `a` (901), 900 more bytes fit.
    r.commit_state("a", &commit(&act, vec![StateWrite::Delete(b"a".to_vec())]))
        .unwrap();
    r.commit_state("a", &commit(&act, vec![put_kv("e", 800)]))
        .unwrap();
    quota_refusal(r.commit_state("a", &commit(&act, vec![put_kv("f", 100)])));
    // Writes within one commit count in order: delete-all, then 999 bytes.
    r.commit_state(
        "a",
        &commit(&act, vec![StateWrite::DeleteAll, put_kv("g", 998)]),
    )
    .unwrap();
    assert!(read(&r, &act, "e").is_none());

    // Other actors have their own quota.
    let other = ensure(&r, "a", "other");
    r.commit_state("a", &commit(&other, vec![put_kv("a", 990)]))
        .unwrap();
}

#[test]
fn a_batch_refuses_only_the_commit_over_quota() {
    let clock = ManualClock::new(START);
    let r = registry(
        &clock,
        Limits {
            max_actor_storage_bytes: 1_000,
            ..Limits::default()
        },
    );
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let k1 = ensure(&r, "a", "k1");
    let k2 = ensure(&r, "a", "k2");
    // Two calls of k1 in one batch: the second sees the first's bytes and goes over.
    let mut results = r
        .commit_states(
            "a",
            &[
                commit(&k1, vec![put_kv("a", 599)]),
                commit(&k2, vec![put_kv("a", 599)]),
                commit(&k1, vec![put_kv("b", 599)]),
            ],
        )
        .unwrap();
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    let m = quota_refusal(results.pop().unwrap());
    assert!(m.contains("stores 600 bytes"), "{m}");
    assert!(read(&r, &k1, "b").is_none());
}

#[test]
fn upgrade_hook_writes_count_against_the_quota() {
    let clock = ManualClock::new(START);
    let r = registry(
        &clock,
        Limits {
            max_actor_storage_bytes: 100,
            ..Limits::default()
        },
    );
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let act = ensure(&r, "a", "k");
    r.commit_state("a", &commit(&act, vec![put_kv("a", 90)]))
        .unwrap();
    let v2 = r.put_module(&actor_component("v2")).unwrap().content_id;
    r.change_deployment("counter", &DeployOp::Deploy(v2.clone()), None)
        .unwrap();
    let upgrade = |writes| UpgradeRequest {
        fence: act.fence(),
        version: v2.clone(),
        writes,
    };
    let m = quota_refusal(r.upgrade_activation("a", &upgrade(vec![put_kv("b", 20)])));
    assert!(m.contains("the limit is 100 bytes"), "{m}");
    // The refused switch wrote nothing: the old generation still commits.
    r.commit_state("a", &commit(&act, vec![put_kv("a", 10)]))
        .unwrap();
    r.upgrade_activation("a", &upgrade(vec![put_kv("b", 20)]))
        .unwrap();
}

fn ensure_for(
    r: &Registry,
    key: &str,
    token_id: Option<&str>,
) -> Result<Activation, RegistryError> {
    r.ensure_activation(
        "a",
        &EnsureActivationRequest {
            actor_type: "counter".into(),
            key: key.into(),
            region_hint: None,
            token_id: token_id.map(str::to_owned),
        },
    )
}

#[test]
fn new_actors_are_limited_per_token_id_and_refill_with_store_time() {
    let clock = ManualClock::new(START);
    let r = registry(
        &clock,
        Limits {
            new_actors_per_second: 2,
            new_actor_burst: 2,
            ..Limits::default()
        },
    );
    join(&r, "a", "eu");
    deploy(&r, "v1");
    ensure_for(&r, "k1", Some("t1")).unwrap();
    ensure_for(&r, "k2", Some("t1")).unwrap();
    let refused = ensure_for(&r, "k3", Some("t1")).unwrap_err();
    assert!(
        matches!(refused, RegistryError::RateLimited(_)),
        "{refused}"
    );
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert_eq!(refused.code().status(), 429);
    assert!(refused.is_retryable());
    let m = refused.to_string();
    assert!(
        m.contains("token t1") && m.contains("2 per second (burst 2)"),
        "{m}"
    );
    // Nothing was placed for the refused actor.
    assert!(
        r.activations(None, 10)
            .unwrap()
            .iter()
            .all(|a| a.key != "k3")
    );
    // Existing actors are found (and re-placed after a lapse) without a charge.
    for _ in 0..10 {
        ensure_for(&r, "k1", Some("t1")).unwrap();
    }
    lapse(&r, &clock, &["a"]);
    assert!(
        ensure_for(&r, "k3", Some("t1")).is_ok(),
        "refilled after a second"
    );
    ensure_for(&r, "k2", Some("t1")).unwrap();
    // Another token id has its own bucket; a request naming none is not limited.
    ensure_for(&r, "k4", Some("t2")).unwrap();
    for i in 0..10 {
        ensure_for(&r, &format!("free-{i}"), None).unwrap();
    }
}
