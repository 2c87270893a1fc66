//! Exhaustive model checking of the activation protocol at small bounds (2 nodes, 1 and 2
//! actors, with and without a node crash), and proof that the checker finds the reference
//! design's bug when the epoch check is removed.

use latchkey_correctness::model::{ActivationModel, Variant, serving_nodes};
use stateright::{Checker, Model};

fn check(model: ActivationModel) -> impl Checker<ActivationModel> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    model.checker().threads(threads).spawn_bfs().join()
}

/// Checks `model` completely and asserts every property.
fn holds(model: ActivationModel, what: &str) {
    let checker = check(model);
    assert!(checker.is_done(), "the state space was explored completely");
    checker.assert_properties();
    println!(
        "{what}: {} states ({} unique), depth {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth()
    );
}

#[test]
fn the_protocol_holds_for_two_nodes_and_one_actor() {
    holds(
        ActivationModel::small(1, 0, Variant::Fixed),
        "2 nodes, 1 actor, 3 calls",
    );
}

#[test]
fn the_protocol_holds_when_a_node_crashes() {
    holds(
        ActivationModel::small(1, 1, Variant::Fixed),
        "2 nodes, 1 actor, 2 calls, a crash",
    );
}

#[test]
fn the_protocol_holds_for_two_nodes_and_two_actors() {
    holds(
        ActivationModel::small(2, 0, Variant::Fixed),
        "2 nodes, 2 actors",
    );
}

#[test]
fn without_the_epoch_check_the_checker_finds_the_reference_bug() {
    let checker = check(ActivationModel::small(1, 0, Variant::NoEpochBump));
    let path = checker
        .discovery("one serving node per actor")
        .expect("two nodes able to serve one actor");
    let last = path.last_state();
    assert_eq!(serving_nodes(last, 0), 2, "{path}");
    println!("counterexample:\n{path}");
    let stale = checker
        .discovery("linearizable counters")
        .expect("a client observes a stale value");
    assert!(stale.last_state().clients[0].violated, "{stale}");
}
