//! Alarms in the registry, over the real memory and embedded stores (issue #17, first step):
//! set and cancelled with a call's commit or not at all, bounded per actor with an error naming
//! the limit, and found when due through a due index whose cost is what is due, not what is
//! pending. Time is a manual version clock and alarm times are plain arguments: no test sleeps.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::fixtures::*;
use common::{SETTINGS, embedded_registry, memory_registry};
use latchkey_control_plane::{Limits, Registry, RegistryError};
use latchkey_store::{
    KeyValue, ManualClock, MemoryStore, RangeOptions, Store, StoreError, Transaction, Versionstamp,
};
use latchkey_wire::alarm::{AlarmWrite, MAX_ALARMS_PER_ACTOR};
use latchkey_wire::node::{Activation, CommitRequest, StateWrite};

fn set(name: &str, at_ms: u64) -> AlarmWrite {
    AlarmWrite::Set {
        name: name.into(),
        at_ms,
        payload: name.as_bytes().to_vec(),
    }
}

fn commit(
    r: &Registry,
    node: &str,
    act: &Activation,
    writes: Vec<StateWrite>,
    alarms: Vec<AlarmWrite>,
) -> Result<u64, RegistryError> {
    let request = CommitRequest {
        fence: act.fence(),
        seq: next_seq(),
        writes,
        alarms,
    };
    r.commit_state(node, &request).map(|c| c.version)
}

/// A registry with the counter deployed and node `n1` serving actor `key`.
fn serving(r: &Registry, key: &str) -> Activation {
    join(r, "n1", "eu");
    deploy(r, "v1");
    ensure(r, "n1", key)
}

/// Both stores, each with a fresh clock (the temporary directory lives as long as the test).
fn registries() -> (tempfile::TempDir, Vec<Registry>) {
    let dir = tempfile::tempdir().unwrap();
    let memory = memory_registry(&ManualClock::new(START));
    let embedded = embedded_registry(dir.path(), &ManualClock::new(START));
    (dir, vec![memory, embedded])
}

fn names(due: &[latchkey_wire::alarm::DueAlarm]) -> Vec<(&str, &str)> {
    due.iter()
        .map(|d| (d.key.as_str(), d.alarm.name.as_str()))
        .collect()
}

#[test]
fn an_alarm_set_with_a_commit_is_kept_and_due_from_its_time_on() {
    let (_dir, registries) = registries();
    for r in registries {
        let a = serving(&r, "a");
        commit(
            &r,
            "n1",
            &a,
            vec![],
            vec![set("late", 2_000), set("soon", 1_000)],
        )
        .unwrap();
        let kept = r.alarms("counter", "a").unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].name, "late");
        assert_eq!(
            (kept[1].due_ms, &kept[1].payload[..]),
            (1_000, &b"soon"[..])
        );
        assert_eq!(kept[1].attempts, 0);
        assert!(r.due_alarms(999, 100).unwrap().is_empty());
        assert_eq!(names(&r.due_alarms(1_000, 100).unwrap()), [("a", "soon")]);
        // Earliest first, across actors.
        let b = ensure(&r, "n1", "b");
        commit(&r, "n1", &b, vec![], vec![set("early", 500)]).unwrap();
        assert_eq!(
            names(&r.due_alarms(5_000, 100).unwrap()),
            [("b", "early"), ("a", "soon"), ("a", "late")]
        );
        assert_eq!(names(&r.due_alarms(5_000, 1).unwrap()), [("b", "early")]);
    }
}

#[test]
fn setting_again_moves_an_alarm_and_cancelling_removes_it() {
    let (_dir, registries) = registries();
    for r in registries {
        let a = serving(&r, "a");
        commit(&r, "n1", &a, vec![], vec![set("x", 1_000), set("y", 1_000)]).unwrap();
        commit(
            &r,
            "n1",
            &a,
            vec![],
            vec![set("x", 9_000), AlarmWrite::Cancel("y".into())],
        )
        .unwrap();
        assert!(
            r.due_alarms(8_999, 100).unwrap().is_empty(),
            "x moved, y gone"
        );
        assert_eq!(names(&r.due_alarms(9_000, 100).unwrap()), [("a", "x")]);
        // The last change of a name in one commit wins; cancelling a missing alarm is nothing.
        commit(
            &r,
            "n1",
            &a,
            vec![],
            vec![
                AlarmWrite::Cancel("x".into()),
                set("x", 3_000),
                AlarmWrite::Cancel("never-set".into()),
            ],
        )
        .unwrap();
        let kept = r.alarms("counter", "a").unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].due_ms, 3_000);
        assert_eq!(names(&r.due_alarms(u64::MAX, 100).unwrap()), [("a", "x")]);
    }
}

#[test]
fn a_refused_commit_sets_and_cancels_no_alarm() {
    let clock = ManualClock::new(START);
    let r = memory_registry(&clock);
    let stale = serving(&r, "a");
    commit(&r, "n1", &stale, vec![], vec![set("kept", 1_000)]).unwrap();
    // n1's lease lapses and n2 takes the actor over: the old activation's commit is fenced.
    join(&r, "n2", "eu");
    lapse(&r, &clock, &["n2"]);
    let fresh = ensure(&r, "n2", "a");
    let e = commit(
        &r,
        "n1",
        &stale,
        vec![],
        vec![set("stale", 1), AlarmWrite::Cancel("kept".into())],
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::Fenced(_)), "{e}");
    // Over the storage quota: the call's alarms go with its writes.
    let limits = Limits {
        max_actor_storage_bytes: 10,
        ..Limits::default()
    };
    let small = Registry::new(
        Arc::new(MemoryStore::deterministic(clock.clone())),
        SETTINGS,
        limits,
    );
    let b = serving(&small, "b");
    let e = commit(
        &small,
        "n1",
        &b,
        vec![StateWrite::Put(b"k".to_vec(), vec![0; 100])],
        vec![set("over", 1)],
    )
    .unwrap_err();
    assert!(matches!(e, RegistryError::QuotaExceeded(_)), "{e}");
    assert!(small.alarms("counter", "b").unwrap().is_empty());
    // A name over the limit refuses the whole commit, naming what was wrong.
    let e = commit(&r, "n2", &fresh, vec![], vec![set(&"n".repeat(257), 1)]).unwrap_err();
    assert!(
        matches!(&e, RegistryError::TooLarge(m) if m.contains("257 bytes")),
        "{e}"
    );
    let kept = r.alarms("counter", "a").unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].name, "kept");
}

#[test]
fn an_actor_holds_at_most_a_thousand_alarms_and_the_error_names_the_limit() {
    let r = memory_registry(&ManualClock::new(START));
    let a = serving(&r, "a");
    let full: Vec<_> = (0..MAX_ALARMS_PER_ACTOR)
        .map(|i| set(&format!("a{i}"), 10_000))
        .collect();
    commit(
        &r,
        "n1",
        &a,
        vec![StateWrite::Put(b"n".to_vec(), b"1".to_vec())],
        full,
    )
    .unwrap();
    let e = commit(
        &r,
        "n1",
        &a,
        vec![StateWrite::Put(b"n".to_vec(), b"2".to_vec())],
        vec![set("one-more", 1)],
    )
    .unwrap_err();
    assert!(
        matches!(&e, RegistryError::QuotaExceeded(m) if m.contains("1001") && m.contains("1000")),
        "{e}"
    );
    assert_eq!(
        get(&r, "n1", &a).unwrap().as_deref(),
        Some(&b"1"[..]),
        "nothing of it applied"
    );
    // Replacing one, or cancelling one to make room, is allowed.
    commit(&r, "n1", &a, vec![], vec![set("a0", 5)]).unwrap();
    commit(
        &r,
        "n1",
        &a,
        vec![],
        vec![AlarmWrite::Cancel("a1".into()), set("one-more", 1)],
    )
    .unwrap();
    assert_eq!(
        r.alarms("counter", "a").unwrap().len(),
        MAX_ALARMS_PER_ACTOR
    );
    assert_eq!(
        names(&r.due_alarms(5, 100).unwrap()),
        [("a", "one-more"), ("a", "a0")]
    );
}

/// A real store that counts the entries its transactions read.
struct Counting {
    inner: Arc<dyn Store>,
    read: Arc<AtomicUsize>,
}

struct CountingTx<'a> {
    inner: Box<dyn Transaction + 'a>,
    read: Arc<AtomicUsize>,
}

impl Store for Counting {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(CountingTx {
            inner: self.inner.begin()?,
            read: Arc::clone(&self.read),
        }))
    }

    fn describe(&self) -> String {
        format!("counting({})", self.inner.describe())
    }
}

impl Transaction for CountingTx<'_> {
    fn read_version(&mut self) -> Result<u64, StoreError> {
        self.inner.read_version()
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key)
    }

    fn get_range(&mut self, range: &RangeOptions) -> Result<Vec<KeyValue>, StoreError> {
        let rows = self.inner.get_range(range)?;
        self.read.fetch_add(rows.len(), Ordering::Relaxed);
        Ok(rows)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.inner.set(key, value)
    }

    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.inner.clear(key)
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError> {
        self.inner.clear_range(begin, end)
    }

    fn set_versionstamped_key(
        &mut self,
        key: &[u8],
        offset: usize,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.set_versionstamped_key(key, offset, value)
    }

    fn set_versionstamped_value(
        &mut self,
        key: &[u8],
        value: &[u8],
        offset: usize,
    ) -> Result<(), StoreError> {
        self.inner.set_versionstamped_value(key, value, offset)
    }

    fn commit(self: Box<Self>) -> Result<Option<Versionstamp>, StoreError> {
        self.inner.commit()
    }
}

#[test]
fn finding_what_is_due_reads_what_is_due_not_what_is_pending() {
    let clock = ManualClock::new(START);
    let read = Arc::new(AtomicUsize::new(0));
    let store = Counting {
        inner: Arc::new(MemoryStore::deterministic(clock.clone())),
        read: Arc::clone(&read),
    };
    let r = Registry::new(Arc::new(store), SETTINGS, Limits::default());
    join(&r, "n1", "eu");
    deploy(&r, "v1");
    // Ten thousand pending alarms, due in a day, and three due now.
    for actor in 0..10 {
        let act = ensure(&r, "n1", &format!("busy-{actor}"));
        let pending: Vec<_> = (0..MAX_ALARMS_PER_ACTOR)
            .map(|i| set(&format!("p{i}"), 86_400_000))
            .collect();
        commit(&r, "n1", &act, vec![], pending).unwrap();
    }
    let act = ensure(&r, "n1", "due");
    commit(
        &r,
        "n1",
        &act,
        vec![],
        vec![set("x", 10), set("y", 20), set("z", 30)],
    )
    .unwrap();
    read.store(0, Ordering::Relaxed);
    let due = r.due_alarms(1_000, 100).unwrap();
    assert_eq!(names(&due), [("due", "x"), ("due", "y"), ("due", "z")]);
    let entries = read.load(Ordering::Relaxed);
    assert!(
        entries <= 6,
        "finding 3 due alarms among 10,003 read {entries} entries (3 index entries, 3 records)"
    );
}

#[test]
fn a_resent_commit_does_not_apply_its_alarm_changes_again() {
    let r = memory_registry(&ManualClock::new(START));
    let a = serving(&r, "a");
    let first = CommitRequest {
        fence: a.fence(),
        seq: next_seq(),
        writes: vec![],
        alarms: vec![set("x", 1_000)],
    };
    r.commit_state("n1", &first).unwrap();
    commit(&r, "n1", &a, vec![], vec![AlarmWrite::Cancel("x".into())]).unwrap();
    // The first commit's answer was lost and the node sends it again: acknowledged, not applied.
    r.commit_state("n1", &first).unwrap();
    assert!(r.alarms("counter", "a").unwrap().is_empty());
    assert!(r.due_alarms(u64::MAX, 100).unwrap().is_empty());
}
