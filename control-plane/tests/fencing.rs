//! Activation fencing through the real registry over real stores: stale epochs and generations
//! cannot commit, expired leases move actors, and the reference design's bug scenario is fenced.
//! Time is a manual version clock, so no test sleeps.

mod common;

use std::sync::Arc;

use common::fixtures::*;
use common::{embedded_registry, memory_registry};
use latchkey_control_plane::fencing::{FenceRejection, Stale};
use latchkey_control_plane::{Registry, RegistryError};
use latchkey_store::ManualClock;
use latchkey_wire::node::{
    Activation, CommitRequest, EnsureActivationRequest, ListOptions, ReadOp, ReadStateRequest,
    ReadStateResponse, RegisterRequest, StateWrite,
};

#[test]
fn an_activation_is_placed_once_and_found_again() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    join(&r, "b", "eu");
    let version = deploy(&r, "v1");
    let mut first = ensure(&r, "a", "k1");
    assert_eq!(
        (first.node_id.as_str(), first.module_version.as_str()),
        ("a", version.as_str())
    );
    assert_eq!(first.node_address, "a:1");
    assert!(
        first.no_state,
        "a new placement says the actor has no stored state"
    );
    clock.advance(100_000);
    let again = ensure(&r, "b", "k1");
    assert!(!again.no_state, "only the placement itself says so");
    first.no_state = false;
    assert_eq!(
        again, first,
        "the live activation is returned, not a new one"
    );
    // Once the actor stored something, a new placement no longer says it has no state.
    put(&r, "a", &first, b"1").unwrap();
    restart(&r, &clock, "a", "eu");
    let replaced = ensure(&r, "a", "k1");
    assert_ne!(replaced.generation, first.generation, "placed anew");
    assert!(!replaced.no_state);
    let listed = r.activations(Some("counter"), 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].live);
}

#[test]
fn the_current_activation_commits_and_reads_its_state() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let act = ensure(&r, "a", "k1");
    put(&r, "a", &act, b"1").unwrap();
    r.commit_state(
        "a",
        &CommitRequest {
            seq: next_seq(),
            fence: act.fence(),
            writes: vec![
                StateWrite::Put(b"list/1".to_vec(), b"x".to_vec()),
                StateWrite::Put(b"list/2".to_vec(), b"y".to_vec()),
                StateWrite::Delete(b"n".to_vec()),
                StateWrite::Put(b"n".to_vec(), b"2".to_vec()),
            ],
            alarms: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(get(&r, "a", &act).unwrap().as_deref(), Some(&b"2"[..]));
    let listed = r
        .read_state(
            "a",
            &ReadStateRequest {
                fence: act.fence(),
                op: ReadOp::List(ListOptions {
                    prefix: Some(b"list/".to_vec()),
                    reverse: true,
                    ..Default::default()
                }),
            },
        )
        .unwrap();
    assert_eq!(
        listed,
        ReadStateResponse::Entries(vec![
            (b"list/2".to_vec(), b"y".to_vec()),
            (b"list/1".to_vec(), b"x".to_vec())
        ])
    );
    r.commit_state(
        "a",
        &CommitRequest {
            seq: next_seq(),
            fence: act.fence(),
            writes: vec![StateWrite::DeleteAll],
            alarms: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(get(&r, "a", &act).unwrap(), None);
}

#[test]
fn a_commit_from_a_stale_epoch_or_generation_is_rejected() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let act = ensure(&r, "a", "k1");
    put(&r, "a", &act, b"1").unwrap();

    // A stale generation (an older placement of the same actor on the same node).
    let mut old = act.clone();
    old.generation.0[9] ^= 1;
    assert!(matches!(
        fenced(put(&r, "a", &old, b"x")),
        FenceRejection::Replaced { .. }
    ));

    // The node restarts (re-registers once the old lease lapsed): a new epoch fences the old
    // process's activation.
    restart(&r, &clock, "a", "eu");
    assert_eq!(
        fenced(put(&r, "a", &act, b"x")),
        FenceRejection::Stale(Stale::EpochChanged {
            placed: 1,
            current: 2
        })
    );
    assert!(matches!(
        fenced(get(&r, "a", &act)),
        FenceRejection::Stale(Stale::EpochChanged { .. })
    ));
    // The new process gets a fresh activation, with the committed state intact.
    let fresh = ensure(&r, "a", "k1");
    assert_ne!(fresh.generation, act.generation);
    assert_eq!(fresh.node_epoch, 2);
    assert_eq!(
        get(&r, "a", &fresh).unwrap().as_deref(),
        Some(&b"1"[..]),
        "no write of the stale epoch landed"
    );
}

#[test]
fn an_actor_whose_node_lease_expired_is_placed_elsewhere() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    join(&r, "b", "eu");
    deploy(&r, "v1");
    let on_a = ensure(&r, "a", "k1");
    put(&r, "a", &on_a, b"41").unwrap();
    // B keeps heartbeating; A falls silent past its TTL.
    lapse(&r, &clock, &["b"]);
    let on_b = ensure(&r, "b", "k1");
    assert_eq!(on_b.node_id, "b");
    assert!(on_b.generation > on_a.generation);
    assert_eq!(
        get(&r, "b", &on_b).unwrap().as_deref(),
        Some(&b"41"[..]),
        "durable state moved with it"
    );
    assert_eq!(
        fenced(put(&r, "a", &on_a, b"x")),
        FenceRejection::OtherNode { owner: "b".into() }
    );
}

/// The bug the model checker found in the reference design: env1 misses heartbeats and loses the
/// actor, the actor is activated on env2, env1's heartbeat then succeeds late. With epochs,
/// env1's old activation can neither read (serve) nor commit.
#[test]
fn reference_bug_scenario_late_heartbeat_is_fenced() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "env1", "eu");
    join(&r, "env2", "eu");
    deploy(&r, "v1");
    let old = ensure(&r, "env1", "counter-1");
    put(&r, "env1", &old, b"7").unwrap();

    // 1. env1 fails to heartbeat the registry and loses ownership of the actor.
    lapse(&r, &clock, &["env2"]);
    // 2. the actor is activated on env2.
    let moved = ensure(&r, "env2", "counter-1");
    assert_eq!(moved.node_id, "env2");
    put(&r, "env2", &moved, b"8").unwrap();
    // 3. env1's heartbeat arrives after the delay: its lease had lapsed, so its epoch changes.
    let late = r.heartbeat("env1").unwrap();
    assert_eq!(
        late.epoch,
        old.node_epoch + 1,
        "a heartbeat after a lapse starts a new epoch"
    );
    // 4. env1 receives an invocation for the actor: it can neither read nor commit it.
    assert!(matches!(
        fenced(get(&r, "env1", &old)),
        FenceRejection::OtherNode { .. }
    ));
    assert!(matches!(
        fenced(put(&r, "env1", &old, b"9")),
        FenceRejection::OtherNode { .. }
    ));
    assert_eq!(get(&r, "env2", &moved).unwrap().as_deref(), Some(&b"8"[..]));

    // Had the actor stayed on env1, the epoch change alone would fence the old activation.
    r.heartbeat("env1").unwrap(); // eligible again
    let stays = ensure(&r, "env1", "counter-2");
    assert_eq!(stays.node_id, "env1");
    lapse(&r, &clock, &[]);
    r.heartbeat("env1").unwrap();
    assert!(matches!(
        fenced(put(&r, "env1", &stays, b"x")),
        FenceRejection::Stale(Stale::EpochChanged { .. })
    ));
}

#[test]
fn placement_needs_an_eligible_node_and_honours_the_region_hint() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    deploy(&r, "v1");
    r.register(
        "new",
        &RegisterRequest {
            region: "eu".into(),
            address: "new:1".into(),
        },
    )
    .unwrap();
    let err = r
        .ensure_activation(
            "new",
            &EnsureActivationRequest {
                actor_type: "counter".into(),
                key: "k".into(),
                region_hint: None,
                token_id: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unavailable(_)),
        "a node with no heartbeat streak gets no placement: {err}"
    );
    assert!(err.is_retryable());
    join(&r, "eu1", "eu");
    join(&r, "us1", "us");
    let hinted = r
        .ensure_activation(
            "eu1",
            &EnsureActivationRequest {
                actor_type: "counter".into(),
                key: "k".into(),
                region_hint: Some("us".into()),
                token_id: None,
            },
        )
        .unwrap();
    assert_eq!(hinted.node_id, "us1");
    let unknown_type = r
        .ensure_activation(
            "eu1",
            &EnsureActivationRequest {
                actor_type: "chat".into(),
                key: "k".into(),
                region_hint: None,
                token_id: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(unknown_type, RegistryError::NotFound(_)),
        "{unknown_type}"
    );
}

/// Many nodes racing to activate the same actor on a real embedded store with group commit all
/// get the same single activation.
#[test]
fn concurrent_ensures_place_an_actor_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let r = Arc::new(embedded_registry(dir.path(), &clock));
    let nodes: Vec<String> = (0..6).map(|i| format!("n{i}")).collect();
    for n in &nodes {
        join(&r, n, "eu");
    }
    deploy(&r, "v1");
    for round in 0..20 {
        let key = format!("key-{round}");
        let results: Vec<Activation> = std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|n| {
                    let (r, key) = (Arc::clone(&r), key.clone());
                    s.spawn(move || ensure(&r, n, &key))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // The same activation for all (the one whose ensure placed it also hears `no_state`).
        let fences: Vec<_> = results.iter().map(|a| (a.fence(), &a.node_id)).collect();
        assert!(
            fences.windows(2).all(|w| w[0] == w[1]),
            "round {round}: {results:?}"
        );
    }
}

/// A commit resent because its answer was lost is acknowledged, not applied twice, even after
/// the activation moved on; a new commit of a stale activation is still fenced.
#[test]
fn a_resent_commit_is_applied_once() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let act = ensure(&r, "a", "k1");
    let request = |seq, value: &[u8]| CommitRequest {
        seq,
        fence: act.fence(),
        writes: vec![StateWrite::Put(b"log".to_vec(), value.to_vec())],
        alarms: Vec::new(),
    };
    r.commit_state("a", &request(1, b"first")).unwrap();
    r.commit_state("a", &request(2, b"second")).unwrap();
    // The answer to commit 1 was lost; the node resends it after commit 2 applied.
    r.commit_state("a", &request(1, b"first")).unwrap();
    assert_eq!(
        get_key(&r, "a", &act, b"log").as_deref(),
        Some(&b"second"[..]),
        "not applied again"
    );
    // The node restarts: the resend of commit 2 is still acknowledged, a new commit is fenced.
    restart(&r, &clock, "a", "eu");
    r.commit_state("a", &request(2, b"second")).unwrap();
    assert!(matches!(
        r.commit_state("a", &request(3, b"third")),
        Err(RegistryError::Fenced(_))
    ));
}

fn get_key(r: &Registry, node: &str, act: &Activation, key: &[u8]) -> Option<Vec<u8>> {
    let fresh = ensure(r, node, &act.key);
    match r
        .read_state(
            node,
            &ReadStateRequest {
                fence: fresh.fence(),
                op: ReadOp::Get(vec![key.to_vec()]),
            },
        )
        .unwrap()
    {
        ReadStateResponse::Values(mut v) => v.remove(0),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn commits_are_limited_and_a_refused_commit_writes_nothing() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let act = ensure(&r, "a", "k1");
    let big = vec![0u8; r.limits().max_state_value_bytes + 1];
    let err = r
        .commit_state(
            "a",
            &CommitRequest {
                seq: next_seq(),
                fence: act.fence(),
                writes: vec![
                    StateWrite::Put(b"n".to_vec(), b"1".to_vec()),
                    StateWrite::Put(b"big".to_vec(), big),
                ],
                alarms: Vec::new(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge(_)), "{err}");
    assert!(
        err.to_string()
            .contains("storage value is 65537 bytes; the limit is 65536"),
        "{err}"
    );
    assert_eq!(
        get(&r, "a", &act).unwrap(),
        None,
        "nothing of the refused commit was written"
    );
}

#[test]
fn a_batch_of_commits_applies_each_on_its_own_fence() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    deploy(&r, "v1");
    let (k1, k2, k3) = (
        ensure(&r, "a", "k1"),
        ensure(&r, "a", "k2"),
        ensure(&r, "a", "k3"),
    );
    let mut stale = k2.clone();
    stale.generation.0[9] ^= 1;
    let commit = |act: &Activation, seq: u64, value: &[u8]| CommitRequest {
        seq,
        fence: act.fence(),
        writes: vec![StateWrite::Put(b"n".to_vec(), value.to_vec())],
        alarms: Vec::new(),
    };
    let first = commit(&k1, next_seq(), b"1");
    let oversized = CommitRequest {
        seq: next_seq(),
        fence: k3.fence(),
        writes: vec![StateWrite::Put(vec![b'k'; 1 << 20], b"x".to_vec())],
        alarms: Vec::new(),
    };
    let results = r
        .commit_states(
            "a",
            &[first.clone(), commit(&stale, next_seq(), b"2"), oversized],
        )
        .unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(
            &results[1],
            Err(RegistryError::Fenced(FenceRejection::Replaced { .. }))
        ),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(RegistryError::TooLarge(_))),
        "{:?}",
        results[2]
    );
    assert_eq!(get(&r, "a", &k1).unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        get(&r, "a", &k2).unwrap(),
        None,
        "the stale commit wrote nothing"
    );
    assert_eq!(
        get(&r, "a", &k3).unwrap(),
        None,
        "the refused commit wrote nothing"
    );

    // A batch resending the applied commit acknowledges it without applying it again.
    put(&r, "a", &k1, b"3").unwrap();
    let again = r.commit_states("a", &[first]).unwrap();
    assert!(again[0].is_ok());
    assert_eq!(get(&r, "a", &k1).unwrap().as_deref(), Some(&b"3"[..]));
}

fn store_now(r: &Registry) -> u64 {
    r.clock().unwrap().version
}

/// Idle activation records are collected without weakening fencing: only placements dead for
/// the idle time, of actors that store nothing, go; an instance of a collected placement can
/// never read or commit again, also once the actor is placed anew (its generation is new); live
/// placements and actors with state keep their records.
#[test]
fn idle_activation_records_are_collected_and_stale_instances_stay_fenced() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    let idle = 3 * common::SETTINGS.ttl_versions;
    join(&r, "a", "eu");
    let v1 = deploy(&r, "v1");
    let old = ensure(&r, "a", "idle");
    // It committed once and then deleted everything: it stores nothing, but has a last commit.
    put(&r, "a", &old, b"1").unwrap();
    let resend = CommitRequest {
        seq: next_seq(),
        fence: old.fence(),
        writes: vec![StateWrite::DeleteAll],
        alarms: Vec::new(),
    };
    r.commit_state("a", &resend).unwrap();
    assert_eq!(get(&r, "a", &old).unwrap(), None);
    let stateful = ensure(&r, "a", "stateful");
    put(&r, "a", &stateful, b"1").unwrap();

    // Live placements are never collected, however small the idle time.
    assert_eq!(r.collect_idle_activations(store_now(&r), 0).unwrap(), 0);
    // Dead, but not for the idle time yet.
    restart(&r, &clock, "a", "eu");
    assert_eq!(r.collect_idle_activations(store_now(&r), idle).unwrap(), 0);
    assert_eq!(r.activations(None, 10).unwrap().len(), 2);
    // A `now` later than the store's is not believed.
    assert_eq!(r.collect_idle_activations(u64::MAX, idle).unwrap(), 0);

    clock.advance(idle);
    assert_eq!(r.collect_idle_activations(store_now(&r), idle).unwrap(), 1);
    let left = r.activations(None, 10).unwrap();
    assert_eq!(left.len(), 1, "the actor with state keeps its record");
    assert_eq!(left[0].key, "stateful");

    // The collected placement's instance cannot commit, nor have its resend acknowledged.
    assert_eq!(
        fenced(put(&r, "a", &old, b"2")),
        FenceRejection::NotActivated
    );
    assert_eq!(
        fenced(r.commit_state("a", &resend)),
        FenceRejection::NotActivated
    );
    // Placed anew (the node is back): a new, greater generation, which the old instance cannot
    // present.
    join(&r, "a", "eu");
    let new = ensure(&r, "a", "idle");
    assert!(new.no_state);
    assert!(new.generation.0 > old.generation.0, "generations only grow");
    assert!(matches!(
        fenced(put(&r, "a", &old, b"2")),
        FenceRejection::Replaced { .. } | FenceRejection::Stale(_)
    ));
    assert!(matches!(
        fenced(r.commit_state("a", &resend)),
        FenceRejection::Replaced { .. } | FenceRejection::Stale(_)
    ));
    put(&r, "a", &new, b"3").unwrap();
    assert_eq!(get(&r, "a", &new).unwrap().as_deref(), Some(&b"3"[..]));
    // The actor with state resumes on the version that last ran it.
    assert_eq!(ensure(&r, "a", "stateful").module_version, v1);
}
