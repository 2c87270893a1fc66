//! The conformance suite every [`Store`] backend runs (in the manner of TiKV's `engine_traits`
//! tests): point and range semantics, read-your-writes, snapshot isolation, conflict detection
//! with no lost update, versionstamp uniqueness and order, time-correlated versions that never go
//! backwards, limits, durability across reopen, and a crash test in which a child process
//! committing in a loop is killed with SIGKILL.
//!
//! A backend's test file implements [`Harness`] and expands [`conformance_tests!`](crate::conformance_tests).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::clock::VersionClock;
use crate::{
    INCOMPLETE_VERSIONSTAMP, MAX_KEY_BYTES, MAX_VALUE_BYTES, ManualClock, RangeOptions, Store,
    StoreError, VERSIONS_PER_SECOND, Versionstamp, run,
};

/// How the suite reaches one backend.
pub trait Harness: Sync {
    /// Opens the store under test. Every call opens the same data; the suite drops the previous
    /// handle before opening again (a reopen, as after a restart).
    fn open(&self) -> Arc<dyn Store>;

    /// The manual clock driving the store's versions, if the backend can use one.
    fn clock(&self) -> Option<&ManualClock>;

    /// Prefix for every key the suite writes (a fresh subspace for shared clusters).
    fn prefix(&self) -> &[u8];

    /// A command that, given `<prefix-hex>` as its last argument, opens the same store and
    /// commits keys in a loop, printing each acknowledged index on its own line.
    fn crash_child(&self) -> Command;
}

/// Expands to one `#[test]` per conformance case, each with a fresh harness from `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            point_operations, read_your_writes, range_semantics, snapshot_isolation,
            conflicting_read_modify_writes, blind_writes_do_not_conflict, clear_range_conflicts,
            versionstamps_unique_and_ordered, read_only_commits_have_no_versionstamp,
            versions_track_time, versions_monotonic_across_reopen, too_old_transactions_fail,
            limits_are_enforced, durable_across_reopen, acknowledged_commits_survive_sigkill);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let harness = $make;
                $crate::conformance::$case(&harness);
            }
        )*
    };
}

fn key(h: &dyn Harness, k: &str) -> Vec<u8> {
    let mut out = h.prefix().to_vec();
    out.extend_from_slice(k.as_bytes());
    out
}

fn get(store: &dyn Store, k: &[u8]) -> Option<Vec<u8>> {
    run(store, |tx| tx.get(k)).expect("read").value
}

fn put(store: &dyn Store, k: &[u8], v: &[u8]) -> Versionstamp {
    run(store, |tx| tx.set(k, v))
        .expect("write")
        .versionstamp
        .expect("a write has a versionstamp")
}

fn strip<'a>(h: &dyn Harness, pairs: &'a [(Vec<u8>, Vec<u8>)]) -> Vec<(&'a [u8], &'a [u8])> {
    let n = h.prefix().len();
    pairs.iter().map(|(k, v)| (&k[n..], v.as_slice())).collect()
}

/// get / set / clear / clear_range, across transactions.
pub fn point_operations(h: &dyn Harness) {
    let store = h.open();
    let (a, b, c) = (key(h, "a"), key(h, "b"), key(h, "c"));
    assert_eq!(get(&*store, &a), None);
    put(&*store, &a, b"1");
    put(&*store, &b, b"2");
    put(&*store, &c, b"3");
    assert_eq!(get(&*store, &a).as_deref(), Some(&b"1"[..]));
    put(&*store, &a, b"one");
    assert_eq!(get(&*store, &a).as_deref(), Some(&b"one"[..]));
    run(&*store, |tx| tx.clear(&a)).unwrap();
    assert_eq!(get(&*store, &a), None);
    run(&*store, |tx| tx.clear_range(&b, &c)).unwrap();
    assert_eq!(get(&*store, &b), None, "clear_range includes its begin");
    assert_eq!(
        get(&*store, &c).as_deref(),
        Some(&b"3"[..]),
        "and excludes its end"
    );
    put(&*store, &key(h, "empty"), b"");
    assert_eq!(get(&*store, &key(h, "empty")).as_deref(), Some(&b""[..]));
}

/// A transaction reads its own writes, clears and range clears, in point and range reads.
pub fn read_your_writes(h: &dyn Harness) {
    let store = h.open();
    for k in ["a", "b", "c", "d"] {
        put(&*store, &key(h, k), k.as_bytes());
    }
    run(&*store, |tx| {
        tx.set(&key(h, "b"), b"B")?;
        tx.clear(&key(h, "c"))?;
        tx.set(&key(h, "bb"), b"new")?;
        assert_eq!(tx.get(&key(h, "b"))?.as_deref(), Some(&b"B"[..]));
        assert_eq!(tx.get(&key(h, "c"))?, None);
        let all = tx.get_range(&RangeOptions::prefix(h.prefix()))?;
        let expect: Vec<(&[u8], &[u8])> =
            vec![(b"a", b"a"), (b"b", b"B"), (b"bb", b"new"), (b"d", b"d")];
        assert_eq!(strip(h, &all), expect);
        tx.clear_range(&key(h, "a"), &key(h, "c"))?;
        assert_eq!(tx.get(&key(h, "bb"))?, None);
        tx.set(&key(h, "b"), b"again")?;
        let all = tx.get_range(&RangeOptions::prefix(h.prefix()).reverse())?;
        let expect: Vec<(&[u8], &[u8])> = vec![(b"d", b"d"), (b"b", b"again")];
        assert_eq!(strip(h, &all), expect);
        Ok::<_, StoreError>(())
    })
    .unwrap();
    let all = run(&*store, |tx| {
        tx.get_range(&RangeOptions::prefix(h.prefix()))
    })
    .unwrap()
    .value;
    let expect: Vec<(&[u8], &[u8])> = vec![(b"b", b"again"), (b"d", b"d")];
    assert_eq!(
        strip(h, &all),
        expect,
        "the committed state is what the transaction read"
    );
}

/// Ranges: inclusive begin, exclusive end, prefixes, limits, reverse, 0xff bytes.
pub fn range_semantics(h: &dyn Harness) {
    let store = h.open();
    let names = ["a", "a\u{0}", "ab", "b", "b\u{7f}", "c"];
    run(&*store, |tx| {
        for n in names {
            tx.set(&key(h, n), n.as_bytes())?;
        }
        let mut high = key(h, "b");
        high.push(0xff);
        tx.set(&high, b"high")
    })
    .unwrap();
    let read = |range: RangeOptions| -> Vec<Vec<u8>> {
        let n = h.prefix().len();
        run(&*store, |tx| tx.get_range(&range))
            .unwrap()
            .value
            .into_iter()
            .map(|(k, _)| k[n..].to_vec())
            .collect()
    };
    let all = read(RangeOptions::prefix(h.prefix()));
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ascending key order");
    assert_eq!(
        read(RangeOptions::between(key(h, "ab"), key(h, "c"))),
        vec![
            b"ab".to_vec(),
            b"b".to_vec(),
            b"b\x7f".to_vec(),
            b"b\xff".to_vec()
        ]
    );
    assert_eq!(
        read(RangeOptions::prefix(&key(h, "a"))),
        vec![b"a".to_vec(), b"a\0".to_vec(), b"ab".to_vec()]
    );
    assert_eq!(
        read(RangeOptions::prefix(h.prefix()).limit(2)),
        vec![b"a".to_vec(), b"a\0".to_vec()]
    );
    assert_eq!(
        read(RangeOptions::prefix(h.prefix()).reverse().limit(2)),
        vec![b"c".to_vec(), b"b\xff".to_vec()]
    );
    assert!(read(RangeOptions::between(key(h, "c"), key(h, "a"))).is_empty());
    assert!(read(RangeOptions::prefix(&key(h, "zzz"))).is_empty());
    assert!(read(RangeOptions::prefix(h.prefix()).limit(0)).is_empty());
}

/// Reads come from the snapshot at the read version; a concurrent commit is not seen, and a
/// transaction that read what it changed cannot commit.
pub fn snapshot_isolation(h: &dyn Harness) {
    let store = h.open();
    let k = key(h, "k");
    put(&*store, &k, b"old");
    let mut reader = store.begin().unwrap();
    assert_eq!(reader.get(&k).unwrap().as_deref(), Some(&b"old"[..]));
    put(&*store, &k, b"new");
    assert_eq!(
        reader.get(&k).unwrap().as_deref(),
        Some(&b"old"[..]),
        "snapshot read"
    );
    reader.set(&key(h, "other"), b"x").unwrap();
    assert_eq!(reader.commit(), Err(StoreError::Conflict));
    assert_eq!(
        get(&*store, &key(h, "other")),
        None,
        "a failed commit writes nothing"
    );
    let mut later = store.begin().unwrap();
    assert_eq!(later.get(&k).unwrap().as_deref(), Some(&b"new"[..]));

    // A snapshot read sees the same snapshot but does not make the transaction conflict.
    let mut relaxed = store.begin().unwrap();
    assert_eq!(
        relaxed.get_snapshot(&k).unwrap().as_deref(),
        Some(&b"new"[..])
    );
    put(&*store, &k, b"newer");
    assert_eq!(
        relaxed.get_snapshot(&k).unwrap().as_deref(),
        Some(&b"new"[..])
    );
    relaxed.set(&key(h, "other"), b"y").unwrap();
    assert!(relaxed.commit().is_ok());
}

fn read_counter(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| {
        u64::from_le_bytes(b.try_into().expect("8-byte counter"))
    })
}

/// Two read-modify-writes of one key: the second to commit retries; concurrent increments lose
/// nothing.
pub fn conflicting_read_modify_writes(h: &dyn Harness) {
    let store = h.open();
    let k = key(h, "counter");
    let mut t1 = store.begin().unwrap();
    let mut t2 = store.begin().unwrap();
    let v1 = read_counter(t1.get(&k).unwrap());
    let v2 = read_counter(t2.get(&k).unwrap());
    t1.set(&k, &(v1 + 1).to_le_bytes()).unwrap();
    t2.set(&k, &(v2 + 1).to_le_bytes()).unwrap();
    assert!(t1.commit().is_ok());
    assert_eq!(t2.commit(), Err(StoreError::Conflict));

    let threads = 4;
    let per_thread = 50;
    let attempts = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    run(&*store, |tx| {
                        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let n = read_counter(tx.get(&k)?);
                        tx.set(&k, &(n + 1).to_le_bytes())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(
        read_counter(get(&*store, &k)),
        1 + threads * per_thread,
        "no lost update"
    );
    assert!(attempts.into_inner() >= threads * per_thread);
}

/// Writes without reads never conflict (as in FoundationDB): the later commit wins.
pub fn blind_writes_do_not_conflict(h: &dyn Harness) {
    let store = h.open();
    let k = key(h, "blind");
    let mut t1 = store.begin().unwrap();
    let mut t2 = store.begin().unwrap();
    t1.set(&k, b"1").unwrap();
    t2.set(&k, b"2").unwrap();
    let s1 = t1.commit().unwrap().unwrap();
    let s2 = t2.commit().unwrap().unwrap();
    assert!(s1 < s2);
    assert_eq!(get(&*store, &k).as_deref(), Some(&b"2"[..]));
}

/// A range clear conflicts with a concurrent read of a key inside it, and a write inside a range
/// conflicts with a concurrent range read.
pub fn clear_range_conflicts(h: &dyn Harness) {
    let store = h.open();
    put(&*store, &key(h, "r/1"), b"1");
    let mut reader = store.begin().unwrap();
    reader.get(&key(h, "r/1")).unwrap();
    reader.set(&key(h, "out"), b"x").unwrap();
    run(&*store, |tx| tx.clear_range(&key(h, "r/"), &key(h, "r0"))).unwrap();
    assert_eq!(reader.commit(), Err(StoreError::Conflict));

    let mut scanner = store.begin().unwrap();
    scanner
        .get_range(&RangeOptions::prefix(&key(h, "r/")))
        .unwrap();
    scanner.set(&key(h, "out"), b"y").unwrap();
    put(&*store, &key(h, "r/2"), b"2");
    assert_eq!(scanner.commit(), Err(StoreError::Conflict));
    put(&*store, &key(h, "s/1"), b"outside");
    let mut untouched = store.begin().unwrap();
    untouched
        .get_range(&RangeOptions::prefix(&key(h, "r/")))
        .unwrap();
    untouched.set(&key(h, "out"), b"z").unwrap();
    put(&*store, &key(h, "s/2"), b"still outside");
    assert!(untouched.commit().is_ok());
}

/// Versionstamps of concurrent commits are unique, increase in commit order, and are what
/// versionstamped keys and values receive; a transaction started after a commit reads at or
/// after its version.
pub fn versionstamps_unique_and_ordered(h: &dyn Harness) {
    let store = h.open();
    let threads = 4;
    let per_thread = 40;
    let stamps: Vec<Vec<Versionstamp>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let mut stamped_key = key(h, &format!("log/{t}/"));
                            let offset = stamped_key.len();
                            stamped_key.extend_from_slice(&INCOMPLETE_VERSIONSTAMP);
                            let mut value = format!("{t}:{i}:").into_bytes();
                            let voffset = value.len();
                            value.extend_from_slice(&INCOMPLETE_VERSIONSTAMP);
                            let committed = run(&**store, |tx| {
                                tx.set_versionstamped_key(&stamped_key, offset, b"")?;
                                tx.set_versionstamped_value(
                                    &key(h, &format!("last/{t}")),
                                    &value,
                                    voffset,
                                )
                            })
                            .unwrap();
                            committed.versionstamp.unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: HashSet<Versionstamp> = stamps.iter().flatten().copied().collect();
    assert_eq!(all.len(), threads * per_thread, "versionstamps are unique");
    for (t, list) in stamps.iter().enumerate() {
        assert!(
            list.windows(2).all(|w| w[0] < w[1]),
            "a thread's commits are ordered"
        );
        let logged = run(&*store, |tx| {
            tx.get_range(&RangeOptions::prefix(&key(h, &format!("log/{t}/"))))
        })
        .unwrap()
        .value;
        let keyed: Vec<Versionstamp> = logged
            .iter()
            .map(|(k, _)| Versionstamp::read(&k[k.len() - 10..]).unwrap())
            .collect();
        assert_eq!(
            &keyed, list,
            "versionstamped keys carry the commit's versionstamp"
        );
        let last = get(&*store, &key(h, &format!("last/{t}"))).unwrap();
        assert_eq!(
            Versionstamp::read(&last[last.len() - 10..]),
            list.last().copied()
        );
    }
    let newest = all.iter().max().unwrap();
    let mut tx = store.begin().unwrap();
    assert!(
        tx.read_version().unwrap() >= newest.version(),
        "reads follow commits"
    );
}

/// A transaction that writes nothing commits without a versionstamp.
pub fn read_only_commits_have_no_versionstamp(h: &dyn Harness) {
    let store = h.open();
    let committed = run(&*store, |tx| tx.get(&key(h, "nothing"))).unwrap();
    assert_eq!(committed.versionstamp, None);
    let stamp = put(&*store, &key(h, "something"), b"1");
    assert!(stamp.version() > 0);
}

/// Commit versions advance about 1,000,000 per second of (store) time.
pub fn versions_track_time(h: &dyn Harness) {
    let store = h.open();
    let first = put(&*store, &key(h, "t"), b"1").version();
    match h.clock() {
        Some(clock) => {
            clock.advance(3 * VERSIONS_PER_SECOND);
            let second = put(&*store, &key(h, "t"), b"2").version();
            assert!(
                second >= first + 3 * VERSIONS_PER_SECOND,
                "3 s later the version moved {} versions",
                second - first
            );
            let mut tx = store.begin().unwrap();
            assert!(tx.read_version().unwrap() >= second);
        }
        None => {
            // No clock to drive: compare with the time that passes over a series of commits.
            let started = Instant::now();
            let mut last = first;
            for i in 0..200u32 {
                last = put(&*store, &key(h, "t"), &i.to_le_bytes()).version();
            }
            let elapsed = started.elapsed().as_micros() as u64;
            assert!(
                last - first >= elapsed / 4,
                "{} versions in {elapsed} µs",
                last - first
            );
        }
    }
}

/// Versions never go backwards, even across a reopen with the clock set back.
pub fn versions_monotonic_across_reopen(h: &dyn Harness) {
    let before = {
        let store = h.open();
        put(&*store, &key(h, "v"), b"1")
    };
    if let Some(clock) = h.clock() {
        clock.set(clock.now() / 2);
    }
    let store = h.open();
    let after = put(&*store, &key(h, "v"), b"2");
    assert!(after > before, "{after} after reopen is not above {before}");
    let mut tx = store.begin().unwrap();
    assert!(tx.read_version().unwrap() >= before.version());
}

/// A transaction older than five seconds cannot commit.
pub fn too_old_transactions_fail(h: &dyn Harness) {
    let Some(clock) = h.clock() else {
        // Without a clock to move, this would need a six-second wait; FoundationDB enforces the
        // same window itself.
        return;
    };
    let store = h.open();
    let mut old = store.begin().unwrap();
    old.get(&key(h, "x")).unwrap();
    old.set(&key(h, "y"), b"1").unwrap();
    clock.advance(6 * VERSIONS_PER_SECOND);
    put(&*store, &key(h, "z"), b"1");
    assert_eq!(old.commit(), Err(StoreError::TooOld));
    assert_eq!(get(&*store, &key(h, "y")), None);
}

/// Oversized keys, values and transactions are refused with errors naming the limit, and
/// nothing of the transaction is written.
pub fn limits_are_enforced(h: &dyn Harness) {
    let store = h.open();
    let big_key = vec![b'k'; MAX_KEY_BYTES + 1];
    let mut tx = store.begin().unwrap();
    assert!(matches!(
        tx.set(&big_key, b"v"),
        Err(StoreError::KeyTooLarge { .. })
    ));
    assert!(matches!(
        tx.set(&key(h, "v"), &vec![0u8; MAX_VALUE_BYTES + 1]),
        Err(StoreError::ValueTooLarge { .. })
    ));
    assert!(matches!(
        tx.set_versionstamped_value(&key(h, "v"), b"short", 0),
        Err(StoreError::BadVersionstampOffset { .. })
    ));
    drop(tx);
    let result = run(&*store, |tx| {
        for i in 0..110u32 {
            tx.set(&key(h, &format!("big/{i}")), &vec![7u8; MAX_VALUE_BYTES])?;
        }
        Ok::<_, StoreError>(())
    });
    assert!(
        matches!(result, Err(StoreError::TransactionTooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(get(&*store, &key(h, "big/0")), None);
    let max_ok = vec![1u8; MAX_VALUE_BYTES];
    put(&*store, &key(h, "max"), &max_ok);
    assert_eq!(get(&*store, &key(h, "max")), Some(max_ok));
}

/// Committed data, including clears, survives closing and reopening the store.
pub fn durable_across_reopen(h: &dyn Harness) {
    {
        let store = h.open();
        for i in 0..100u32 {
            put(&*store, &key(h, &format!("d/{i:03}")), &i.to_le_bytes());
        }
        run(&*store, |tx| {
            tx.clear_range(&key(h, "d/050"), &key(h, "d/060"))
        })
        .unwrap();
        run(&*store, |tx| tx.clear(&key(h, "d/099"))).unwrap();
    }
    let store = h.open();
    let all = run(&*store, |tx| {
        tx.get_range(&RangeOptions::prefix(&key(h, "d/")))
    })
    .unwrap()
    .value;
    assert_eq!(all.len(), 89);
    assert_eq!(get(&*store, &key(h, "d/049")).unwrap(), 49u32.to_le_bytes());
    assert_eq!(get(&*store, &key(h, "d/055")), None);
}

/// A child process commits in a loop and is killed with SIGKILL; after reopening, every commit it
/// acknowledged is there.
pub fn acknowledged_commits_survive_sigkill(h: &dyn Harness) {
    const KILL_AFTER: u64 = 300;
    let mut child = h
        .crash_child()
        .arg(hex(h.prefix()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the crash-test child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, acks) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines
                .send(
                    line.trim()
                        .parse::<u64>()
                        .expect("the child prints indices"),
                )
                .is_err()
            {
                break;
            }
        }
    });
    let mut acknowledged = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (acknowledged.len() as u64) < KILL_AFTER {
        match acks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(i) => acknowledged.push(i),
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "the child acknowledged only {} commits in 60 s",
                    acknowledged.len()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the child exited early: {:?}", child.wait())
            }
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    // Acknowledgements already written to the pipe before the kill count too.
    acknowledged.extend(acks.iter());
    reader.join().expect("reader thread");

    let store = h.open();
    let n = h.prefix().len();
    let stored: HashSet<u64> = run(&*store, |tx| {
        tx.get_range(&RangeOptions::prefix(&key(h, "crash/")))
    })
    .unwrap()
    .value
    .into_iter()
    .map(|(k, _)| {
        let digits = std::str::from_utf8(&k[n + "crash/".len()..]).expect("ascii index");
        digits.parse::<u64>().expect("decimal index")
    })
    .collect();
    let lost: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|i| !stored.contains(i))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged commits lost after SIGKILL: {lost:?}"
    );
    assert!(acknowledged.len() as u64 >= KILL_AFTER);
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The loop a crash-test child runs: commit `<prefix>crash/<i>` for i = 0, 1, ... and print `i`
/// once each commit is acknowledged. Never returns normally.
pub fn crash_child_loop(store: &dyn Store, prefix: &[u8]) -> ! {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let mut k = prefix.to_vec();
        k.extend_from_slice(format!("crash/{i:012}").as_bytes());
        run(store, |tx| tx.set(&k, &i.to_le_bytes())).expect("commit");
        writeln!(out, "{i}")
            .and_then(|()| out.flush())
            .expect("report the acknowledgement");
    }
    unreachable!("u64 indices do not run out")
}
