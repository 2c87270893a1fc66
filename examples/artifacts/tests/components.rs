//! Every example artifact is a WASM component that the control plane's upload validation
//! accepts as an actor.

use latchkey_control_plane::validate::{HANDLER_EXPORT, validate_component};

#[test]
fn every_example_is_a_valid_actor_component() {
    let variants = [
        ("counter-v2", latchkey_examples::COUNTER_V2),
        ("counter-v3", latchkey_examples::COUNTER_V3),
        (
            "counter-failing-upgrade",
            latchkey_examples::COUNTER_FAILING_UPGRADE,
        ),
        ("hostile", latchkey_examples::HOSTILE),
    ];
    for (actor_type, bytes) in latchkey_examples::all().into_iter().chain(variants) {
        assert!(
            bytes.starts_with(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]),
            "{actor_type} is not a component"
        );
        let summary = validate_component(bytes)
            .unwrap_or_else(|e| panic!("{actor_type} is rejected by the control plane: {e}"));
        assert!(
            summary.exports.iter().any(|e| e == HANDLER_EXPORT),
            "{actor_type} exports {:?}",
            summary.exports
        );
        assert_eq!(summary.exports, [HANDLER_EXPORT], "{actor_type}");
    }
}

#[test]
fn actor_types_are_distinct_and_named_as_documented() {
    let names: Vec<&str> = latchkey_examples::all().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["counter", "rate-limiter", "chat-room", "delegator"]);
    for (_, bytes) in latchkey_examples::all() {
        assert!(
            bytes.len() < 1 << 20,
            "an example grew past 1 MiB: {}",
            bytes.len()
        );
    }
}

#[test]
fn counter_variants_are_distinct_versions() {
    let builds = [
        latchkey_examples::COUNTER,
        latchkey_examples::COUNTER_V2,
        latchkey_examples::COUNTER_V3,
        latchkey_examples::COUNTER_FAILING_UPGRADE,
    ];
    for (i, a) in builds.iter().enumerate() {
        for b in &builds[i + 1..] {
            assert_ne!(a, b, "two counter variants built to the same bytes");
        }
    }
}
