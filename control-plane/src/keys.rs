//! The registry's key layout in the store (documented in `docs/control-plane.md`). Every key
//! starts with the tuple-encoded subspace `("latchkey", <kind>, ...)` (FoundationDB's tuple
//! layer), so the layout is the same on every backend and each kind is one contiguous range.
//!
//! | key | value |
//! |---|---|
//! | `("latchkey","node",node_id)` | last-heartbeat versionstamp (10 B) ++ JSON `NodeRecord` |
//! | `("latchkey","act",actor_type,key)` | generation versionstamp (10 B) ++ JSON `ActivationRecord` |
//! | `("latchkey","state",actor_type,key)` ++ user key | the actor's value |
//! | `("latchkey","commit",actor_type,key)` | last applied commit: generation (10 B) ++ seq (u64 BE) |
//! | `("latchkey","usage",actor_type,key)` | the actor's stored bytes (u64 BE); absent when 0 |
//! | `("latchkey","alarm",actor_type,key,name)` | JSON `Alarm` (due time, payload, attempts) |
//! | `("latchkey","alarms",actor_type,key)` | how many alarms the actor holds (u32 BE); absent when 0 |
//! | `("latchkey","due",due_ms,actor_type,key,name)` | empty: the due index, in due order |
//! | `("latchkey","outcome",actor_type,version,second)` | JSON `OutcomeCounts` reported by nodes |
//! | `("latchkey","module",content_id)` | JSON `ModuleRecord` |
//! | `("latchkey","chunk",content_id,index)` | up to 64 KiB of the component |
//! | `("latchkey","deploy",actor_type)` | JSON `DeploymentRecord` |
//! | `("latchkey","history",actor_type)` ++ versionstamp | JSON `HistoryEntry` |
//! | `("latchkey","revoked",token_id)` | JSON `RevocationRecord` |
//! | `("latchkey","feed")` ++ versionstamp | JSON `Event` |
//! | `("latchkey","issuer",key_id)` | JSON `KeyRecord` |
//! | `("latchkey","region",name)` | JSON `RegionRecord` |
//! | `("latchkey","meta","feed_floor")` | newest trimmed feed versionstamp (10 B) |
//!
//! Actor state keys append the actor's own key bytes raw (not tuple-encoded), so an actor's
//! byte-wise ranges map to store ranges directly. Versionstamped keys append the 10-byte stamp raw.

use foundationdb_tuple::{TuplePack, pack, pack_into};
use latchkey_store::{INCOMPLETE_VERSIONSTAMP, RangeOptions, prefix_end};

const ROOT: &str = "latchkey";

/// `(ROOT, parts...)` as one flat tuple (packing `(ROOT, parts)` would nest `parts`).
fn key<T: TuplePack>(parts: T) -> Vec<u8> {
    let mut out = pack(&(ROOT,));
    pack_into(&parts, &mut out);
    out
}

/// A node's record.
pub fn node(node_id: &str) -> Vec<u8> {
    key(("node", node_id))
}

/// Every node record.
pub fn nodes() -> RangeOptions {
    RangeOptions::prefix(&key(("node",)))
}

/// An actor's activation record.
pub fn activation(actor_type: &str, actor_key: &str) -> Vec<u8> {
    key(("act", actor_type, actor_key))
}

/// Activation records: all, or of one actor type.
pub fn activations(actor_type: Option<&str>) -> RangeOptions {
    match actor_type {
        Some(t) => RangeOptions::prefix(&key(("act", t))),
        None => RangeOptions::prefix(&key(("act",))),
    }
}

/// Prefix of an actor's state keys.
pub fn state_prefix(actor_type: &str, actor_key: &str) -> Vec<u8> {
    key(("state", actor_type, actor_key))
}

/// One state key of an actor.
pub fn state(prefix: &[u8], user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + user_key.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(user_key);
    k
}

/// The last commit applied for an actor: generation (10 B) ++ sequence number (8 B, big-endian).
pub fn last_commit(actor_type: &str, actor_key: &str) -> Vec<u8> {
    key(("commit", actor_type, actor_key))
}

/// An actor's stored bytes (keys plus values), kept by every commit.
pub fn usage(actor_type: &str, actor_key: &str) -> Vec<u8> {
    key(("usage", actor_type, actor_key))
}

/// One alarm of an actor.
pub fn alarm(actor_type: &str, actor_key: &str, name: &str) -> Vec<u8> {
    key(("alarm", actor_type, actor_key, name))
}

/// Every alarm of an actor, by name.
pub fn alarms_of(actor_type: &str, actor_key: &str) -> RangeOptions {
    RangeOptions::prefix(&key(("alarm", actor_type, actor_key)))
}

/// How many alarms an actor holds.
pub fn alarm_count(actor_type: &str, actor_key: &str) -> Vec<u8> {
    key(("alarms", actor_type, actor_key))
}

/// An alarm's entry in the due index (tuple-encoded integers sort in numeric order).
pub fn due(due_ms: u64, actor_type: &str, actor_key: &str, name: &str) -> Vec<u8> {
    key(("due", due_ms, actor_type, actor_key, name))
}

/// The due index's entries due at or before `now_ms`, earliest first.
pub fn due_until(now_ms: u64) -> RangeOptions {
    RangeOptions::between(key(("due",)), key(("due", now_ms.saturating_add(1))))
}

/// Outcome counts of one version of an actor type in one second (bucket: Unix seconds of store
/// time).
pub fn outcome(actor_type: &str, version: &str, bucket: u64) -> Vec<u8> {
    key(("outcome", actor_type, version, bucket))
}

/// Outcome buckets of one version from `first` up to and including `last`.
pub fn outcomes(actor_type: &str, version: &str, first: u64, last: u64) -> RangeOptions {
    RangeOptions::between(
        outcome(actor_type, version, first),
        outcome(actor_type, version, last.saturating_add(1)),
    )
}

/// A module's metadata.
pub fn module(content_id: &str) -> Vec<u8> {
    key(("module", content_id))
}

/// Every module's metadata.
pub fn modules() -> RangeOptions {
    RangeOptions::prefix(&key(("module",)))
}

/// One chunk of a module's bytes.
pub fn chunk(content_id: &str, index: u32) -> Vec<u8> {
    key(("chunk", content_id, index))
}

/// All chunks of a module, in order.
pub fn chunks(content_id: &str) -> RangeOptions {
    RangeOptions::prefix(&key(("chunk", content_id)))
}

/// An actor type's deployment.
pub fn deployment(actor_type: &str) -> Vec<u8> {
    key(("deploy", actor_type))
}

/// Every deployment.
pub fn deployments() -> RangeOptions {
    RangeOptions::prefix(&key(("deploy",)))
}

/// A versionstamped key under `prefix`: the key and the offset of its placeholder.
fn stamped(prefix: Vec<u8>) -> (Vec<u8>, usize) {
    let offset = prefix.len();
    let mut k = prefix;
    k.extend_from_slice(&INCOMPLETE_VERSIONSTAMP);
    (k, offset)
}

/// Prefix of an actor type's deployment history.
pub fn history_prefix(actor_type: &str) -> Vec<u8> {
    key(("history", actor_type))
}

/// A new history entry (versionstamped key, placeholder offset).
pub fn history_entry(actor_type: &str) -> (Vec<u8>, usize) {
    stamped(history_prefix(actor_type))
}

/// A node's enrolled identity key.
pub fn node_identity(node_id: &str) -> Vec<u8> {
    key(("node-identity", node_id))
}

/// A revoked token id.
pub fn revoked(token_id: &str) -> Vec<u8> {
    key(("revoked", token_id))
}

/// Every revoked token id.
pub fn revocations() -> RangeOptions {
    RangeOptions::prefix(&key(("revoked",)))
}

/// Prefix of the change feed.
pub fn feed_prefix() -> Vec<u8> {
    key(("feed",))
}

/// A new feed event (versionstamped key, placeholder offset).
pub fn feed_event() -> (Vec<u8>, usize) {
    stamped(feed_prefix())
}

/// Feed events strictly after `stamp` (or all, from the start).
pub fn feed_after(stamp: Option<[u8; 10]>) -> RangeOptions {
    let prefix = feed_prefix();
    let end = prefix_end(&prefix);
    match stamp {
        None => RangeOptions::between(prefix, end),
        Some(s) => {
            let mut begin = prefix;
            begin.extend_from_slice(&s);
            begin.push(0); // the first key after `s`
            RangeOptions::between(begin, end)
        }
    }
}

/// The newest versionstamp trimmed from the feed.
pub fn feed_floor() -> Vec<u8> {
    key(("meta", "feed_floor"))
}

/// An issuer key's record.
pub fn issuer(key_id: &str) -> Vec<u8> {
    key(("issuer", key_id))
}

/// Every issuer key record.
pub fn issuers() -> RangeOptions {
    RangeOptions::prefix(&key(("issuer",)))
}

/// A declared region.
pub fn region(name: &str) -> Vec<u8> {
    key(("region", name))
}

/// Every declared region.
pub fn regions() -> RangeOptions {
    RangeOptions::prefix(&key(("region",)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_do_not_overlap_and_nest_by_prefix() {
        let a = activation("counter", "k");
        assert!(a.starts_with(&activations(Some("counter")).begin));
        assert!(
            !a.starts_with(&activations(Some("count")).begin),
            "tuple strings are terminated"
        );
        assert!(activations(None).begin.len() < a.len());
        let s = state(&state_prefix("counter", "k"), b"\x00\xff");
        assert!(s.starts_with(&state_prefix("counter", "k")));
        assert!(!s.starts_with(&state_prefix("counter", "k2")));
        let (h, offset) = history_entry("counter");
        assert_eq!(&h[offset..], &INCOMPLETE_VERSIONSTAMP);
        let flat: (String, String, String) = foundationdb_tuple::unpack(&node("n1")).unwrap();
        assert_eq!(flat, ("latchkey".into(), "node".into(), "n1".into()));
        let after = feed_after(Some([1; 10]));
        let mut first = feed_prefix();
        first.extend_from_slice(&[1; 10]);
        assert!(first < after.begin);
    }
}
