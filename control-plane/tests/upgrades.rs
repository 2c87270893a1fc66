//! Upgrades and rollbacks in the registry: switching a live activation takes a new generation
//! (the old one can no longer read or commit) and applies the hook's writes in the same
//! transaction; an actor placed again resumes on the version that last ran it; reported outcomes
//! roll the version on trial back, with the evidence in the history.

mod common;

use common::fixtures::*;
use common::memory_registry;
use latchkey_control_plane::RegistryError;
use latchkey_control_plane::registry::deployments::DeployOp;
use latchkey_store::{ManualClock, VERSIONS_PER_SECOND};
use latchkey_wire::admin::{OutcomeCounts, RollbackPolicy};
use latchkey_wire::node::{
    OutcomeReport, ReadOp, ReadStateRequest, ReadStateResponse, StateWrite, UpgradeRequest,
    VersionOutcomes,
};

fn upgrade(
    r: &latchkey_control_plane::Registry,
    act: &latchkey_wire::node::Activation,
    version: &str,
    writes: Vec<StateWrite>,
) -> Result<latchkey_wire::node::Activation, RegistryError> {
    r.upgrade_activation(
        &act.node_id,
        &UpgradeRequest {
            fence: act.fence(),
            version: version.to_owned(),
            writes,
        },
    )
}

#[test]
fn an_upgrade_fences_the_old_generation_and_commits_the_hook_writes_with_it() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    let v1 = deploy(&r, "v1");
    let old = ensure(&r, "a", "k");
    put(&r, "a", &old, b"1").unwrap();
    let v2 = deploy(&r, "v2");

    match upgrade(&r, &old, &v1, Vec::new()) {
        Err(RegistryError::Conflict(m)) => assert!(m.contains(&v2), "{m}"),
        other => panic!("switching to a version the deployment does not name: {other:?}"),
    }
    let hook = vec![StateWrite::Put(b"migrated".to_vec(), b"yes".to_vec())];
    let new = upgrade(&r, &old, &v2, hook.clone()).unwrap();
    assert_eq!(new.module_version, v2);
    assert_eq!(
        (new.node_id.as_str(), new.node_epoch),
        ("a", old.node_epoch)
    );
    assert_ne!(
        new.generation, old.generation,
        "a switch takes a new generation"
    );

    fenced(put(&r, "a", &old, b"2"));
    fenced(get(&r, "a", &old));
    fenced(upgrade(&r, &old, &v2, hook));
    assert_eq!(
        get(&r, "a", &new).unwrap().as_deref(),
        Some(&b"1"[..]),
        "state kept"
    );
    let migrated = match r
        .read_state(
            "a",
            &ReadStateRequest {
                fence: new.fence(),
                op: ReadOp::Get(vec![b"migrated".to_vec()]),
            },
        )
        .unwrap()
    {
        ReadStateResponse::Values(mut v) => v.remove(0),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        migrated.as_deref(),
        Some(&b"yes"[..]),
        "the hook's write landed"
    );
    put(&r, "a", &new, b"2").unwrap();
    assert_eq!(
        ensure(&r, "a", "k"),
        new,
        "the new generation is the live activation"
    );
}

#[test]
fn an_actor_placed_again_resumes_on_the_version_that_last_ran_it() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    join(&r, "a", "eu");
    join(&r, "b", "eu");
    let v1 = deploy(&r, "v1");
    let first = ensure(&r, "a", "k");
    assert_eq!(first.node_id, "a");
    let v2 = deploy(&r, "v2");
    lapse(&r, &clock, &["b"]);

    let moved = ensure(&r, "b", "k");
    assert_eq!(moved.node_id, "b");
    assert_eq!(
        moved.module_version, v1,
        "its state was last written by v1: the node switches it to v2 through the upgrade hook"
    );
    let switched = upgrade(&r, &moved, &v2, Vec::new()).unwrap();
    assert_eq!(switched.module_version, v2);
    assert_eq!(
        ensure(&r, "b", "new-key").module_version,
        v2,
        "a new actor starts on v2"
    );
}

fn report(version: &str, ok: u64, traps: u64) -> OutcomeReport {
    OutcomeReport {
        outcomes: vec![VersionOutcomes {
            actor_type: "counter".into(),
            version: version.to_owned(),
            counts: OutcomeCounts {
                ok,
                traps,
                ..OutcomeCounts::default()
            },
        }],
    }
}

#[test]
fn outcomes_roll_back_the_version_on_trial_and_the_history_says_why() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    let v1 = deploy(&r, "v1");
    let policy = RollbackPolicy {
        max_error_rate: 0.1,
        window_secs: 30,
        min_calls: 20,
    };
    r.change_deployment("counter", &DeployOp::SetPolicy(policy), None)
        .unwrap();
    // v1 has nothing to return to: however bad, it stays.
    assert!(
        r.record_outcomes(&report(&v1, 0, 50))
            .unwrap()
            .rolled_back
            .is_empty()
    );

    let v2 = deploy(&r, "v2");
    assert!(
        r.record_outcomes(&report(&v2, 15, 1))
            .unwrap()
            .rolled_back
            .is_empty()
    );
    assert!(
        r.record_outcomes(&report(&v1, 0, 100))
            .unwrap()
            .rolled_back
            .is_empty(),
        "outcomes of a version not on trial judge nothing"
    );
    let ack = r.record_outcomes(&report(&v2, 0, 9)).unwrap();
    assert_eq!(
        ack.rolled_back,
        ["counter"],
        "10 errors in 25 calls: 40% > 10%"
    );

    let detail = r.deployment("counter", 10).unwrap();
    assert_eq!(detail.deployment.active.as_deref(), Some(v1.as_str()));
    assert_eq!(detail.deployment.previous, None);
    let entry = &detail.history[0];
    assert_eq!(entry.action, "auto-rollback");
    assert_eq!(entry.from.as_deref(), Some(v2.as_str()));
    let reason = entry.reason.as_deref().unwrap();
    assert!(
        reason.contains("40.0%") && reason.contains("10 traps") && reason.contains(&v2),
        "{reason}"
    );

    // Deployed again later, v2 is judged on its new trial only.
    clock.advance(2 * VERSIONS_PER_SECOND);
    r.change_deployment("counter", &DeployOp::Deploy(v2.clone()), None)
        .unwrap();
    assert!(
        r.record_outcomes(&report(&v2, 20, 0))
            .unwrap()
            .rolled_back
            .is_empty(),
        "the earlier trial's traps no longer count"
    );
    assert_eq!(
        r.record_outcomes(&report(&v2, 0, 5)).unwrap().rolled_back,
        ["counter"]
    );
}
