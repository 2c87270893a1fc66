//! The concurrency engine shared by the embedded and memory backends: read versions, optimistic
//! conflict detection, versionstamps, and commits (inline, or batched by a group-commit thread).
//!
//! Versions: `applied` is the newest version whose writes are all visible in new snapshots. A
//! transaction reads at `applied`, which is first advanced to wall time when no commit is in
//! flight, so read versions track time like FoundationDB's. A commit takes a version above every
//! read version handed out, is checked against the writes of every version after its read
//! version, and becomes visible (applied) only once the backend made it durable. A backend only
//! has to open snapshots and apply batches atomically.
//!
//! Starting a transaction takes no lock: `applied` and the "batch in flight" flag share one
//! atomic word. Conflict history is kept for five seconds of versions, as FoundationDB's
//! resolvers keep it, so open transactions need not be tracked; an older transaction fails with
//! `TooOld`.

mod buffer;
mod conflicts;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

pub(crate) use buffer::Mutation;
use buffer::WriteBuffer;
use conflicts::{ConflictLog, ReadSet};

use crate::clock::{SystemClock, VersionClock};
use crate::versionstamp::substitute;
use crate::{
    KeyValue, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES, RangeOptions, StoreError,
    Transaction, VERSIONS_PER_SECOND, Versionstamp,
};

/// How long conflict history is kept: a transaction older than this fails with `TooOld`.
const MAX_TRANSACTION_AGE: u64 = 5 * VERSIONS_PER_SECOND;

/// How commits reach the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Each commit applies its own batch, one at a time, in the committing thread: one durable
    /// write per transaction, and deterministic (no background thread) for simulation.
    Inline,
    /// A committer thread gathers the commits waiting at that moment, up to `max_batch`, checks
    /// them in order and applies them as one durable batch (group commit).
    Grouped {
        /// Most transactions per batch (at most 65,536: the versionstamp order is 2 bytes).
        max_batch: usize,
    },
}

/// Options shared by the embedded and memory stores.
#[derive(Clone)]
pub struct EngineOptions {
    /// How commits are applied.
    pub commit_mode: CommitMode,
    /// Where versions come from.
    pub clock: Arc<dyn VersionClock>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            commit_mode: CommitMode::Grouped { max_batch: 1024 },
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("commit_mode", &self.commit_mode)
            .finish_non_exhaustive()
    }
}

/// A consistent view of the backend's data.
pub(crate) trait Snapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits the pairs in `[begin, end)` in order (or reverse) until `visit` returns false.
    fn scan(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;
}

/// Storage under the engine.
pub(crate) trait Backend: Send + Sync + 'static {
    type Snapshot: Snapshot;

    /// A snapshot containing at least every applied version up to `read_version` (and nothing
    /// the engine has not applied).
    fn snapshot(&self, read_version: u64) -> Result<Self::Snapshot, StoreError>;

    /// Applies one batch atomically and durably, recording `version` as the newest. `horizon` is
    /// the oldest read version still in use (older versions may be discarded).
    fn apply(&self, version: u64, mutations: &[Mutation], horizon: u64) -> Result<(), StoreError>;

    /// The newest version applied before this process opened the store.
    fn recovered_version(&self) -> u64;

    fn describe(&self) -> String;
}

/// The newest applied version, with the top bit set while a batch is between version
/// assignment and application. One word, so starting a transaction is lock-free.
struct Applied(AtomicU64);

const INFLIGHT: u64 = 1 << 63;

impl Applied {
    /// A read version: `applied`, first advanced to `now` if no batch is in flight (every version
    /// up to now is then either applied or unused).
    fn read_version(&self, now: u64) -> u64 {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            if current & INFLIGHT != 0 {
                return current & !INFLIGHT;
            }
            let rv = current.max(now);
            if rv == current {
                return rv;
            }
            match self
                .0
                .compare_exchange_weak(current, rv, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return rv,
                Err(actual) => current = actual,
            }
        }
    }

    /// Marks a batch in flight; returns the applied version, which stays fixed until
    /// [`Applied::finish`].
    fn start(&self) -> u64 {
        self.0.fetch_or(INFLIGHT, Ordering::AcqRel) & !INFLIGHT
    }

    /// Ends the batch, publishing `version` if it was applied.
    fn finish(&self, version: Option<u64>) {
        let applied = self.0.load(Ordering::Acquire) & !INFLIGHT;
        self.0.store(
            version.map_or(applied, |v| v.max(applied)),
            Ordering::Release,
        );
    }
}

/// What only the committer touches.
struct State {
    /// Newest version handed to a commit.
    assigned: u64,
    log: ConflictLog,
}

impl State {
    fn next_version(&mut self, applied: u64, now: u64) -> u64 {
        let version = (applied + 1).max(self.assigned + 1).max(now);
        self.assigned = version;
        version
    }
}

struct Shared<B: Backend> {
    backend: B,
    applied: Applied,
    /// Held by whoever commits a batch (the committer thread, or an inline commit) for the
    /// whole batch, so batches apply one at a time, in version order.
    state: Mutex<State>,
    clock: Arc<dyn VersionClock>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections only update plain fields; a panic cannot leave them half-written in a
    // way later code misreads, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a transaction sends to be committed.
struct CommitRequest {
    read_version: u64,
    reads: ReadSet,
    writes: WriteBuffer,
    stamped: Vec<Stamped>,
    reply: SyncSender<Result<Versionstamp, StoreError>>,
}

/// A versionstamped key or value write, substituted at commit.
#[derive(Debug)]
enum Stamped {
    Key {
        key: Vec<u8>,
        offset: usize,
        value: Vec<u8>,
    },
    Value {
        key: Vec<u8>,
        value: Vec<u8>,
        offset: usize,
    },
}

impl Stamped {
    fn into_mutation(self, stamp: Versionstamp) -> Mutation {
        match self {
            Stamped::Key {
                mut key,
                offset,
                value,
            } => {
                substitute(&mut key, offset, stamp);
                Mutation::Set(key, value)
            }
            Stamped::Value {
                key,
                mut value,
                offset,
            } => {
                substitute(&mut value, offset, stamp);
                Mutation::Set(key, value)
            }
        }
    }
}

/// A store built from a backend: the `Store` implementations of the embedded and memory stores
/// wrap one of these.
pub(crate) struct Engine<B: Backend> {
    shared: Arc<Shared<B>>,
    committer: Option<(SyncSender<CommitRequest>, JoinHandle<()>)>,
}

impl<B: Backend> Engine<B> {
    pub(crate) fn new(backend: B, options: &EngineOptions) -> Self {
        let recovered = backend.recovered_version();
        let shared = Arc::new(Shared {
            backend,
            applied: Applied(AtomicU64::new(recovered)),
            state: Mutex::new(State {
                assigned: recovered,
                log: ConflictLog::starting_at(recovered),
            }),
            clock: Arc::clone(&options.clock),
        });
        let committer = match options.commit_mode {
            CommitMode::Inline => None,
            CommitMode::Grouped { max_batch } => {
                let max_batch = max_batch.clamp(1, usize::from(u16::MAX) + 1);
                let (tx, rx) = sync_channel::<CommitRequest>(max_batch * 4);
                let worker = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name("latchkey-store-commit".into())
                    .spawn(move || committer_loop(&worker, &rx, max_batch))
                    .expect("spawn the commit thread");
                Some((tx, handle))
            }
        };
        Engine { shared, committer }
    }

    pub(crate) fn backend(&self) -> &B {
        &self.shared.backend
    }

    pub(crate) fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let read_version = self.shared.applied.read_version(self.shared.clock.now());
        // Opened after reading `applied`: it contains every version up to the read version.
        let snapshot = self.shared.backend.snapshot(read_version)?;
        Ok(Box::new(EngineTx {
            engine: self,
            read_version,
            snapshot,
            reads: ReadSet::default(),
            writes: WriteBuffer::default(),
            stamped: Vec::new(),
            stamped_size: 0,
            done: false,
        }))
    }

    /// Commits through the group-commit thread, or inline; `answer` receives the outcome.
    fn commit(
        &self,
        request: CommitRequest,
        answer: &Receiver<Result<Versionstamp, StoreError>>,
    ) -> Result<Versionstamp, StoreError> {
        match &self.committer {
            Some((queue, _)) => queue
                .send(request)
                .map_err(|_| StoreError::Unavailable("the commit thread has stopped".into()))?,
            None => apply_batch(&self.shared, vec![request]).deliver(),
        }
        answer
            .recv()
            .map_err(|_| StoreError::MaybeCommitted("the commit thread stopped mid-batch".into()))?
    }
}

impl<B: Backend> Drop for Engine<B> {
    fn drop(&mut self) {
        if let Some((queue, handle)) = self.committer.take() {
            drop(queue);
            let _ = handle.join();
        }
    }
}

fn committer_loop<B: Backend>(
    shared: &Shared<B>,
    queue: &Receiver<CommitRequest>,
    max_batch: usize,
) {
    // Waking each waiter is a system call; a second thread does it, so that the next batch's
    // durable write overlaps the wake-ups of the previous one.
    let (notify, outcomes) = sync_channel::<Outcomes>(4);
    std::thread::scope(|s| {
        s.spawn(move || {
            for outcomes in outcomes {
                outcomes.deliver();
            }
        });
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let outcomes = apply_batch(shared, batch);
            if let Err(undelivered) = notify.send(outcomes) {
                undelivered.0.deliver();
            }
        }
        drop(notify);
    });
}

/// The answers of one batch, to be sent to the waiting transactions.
struct Outcomes {
    replies: Vec<(SyncSender<Result<Versionstamp, StoreError>>, Versionstamp)>,
    result: Result<(), StoreError>,
}

impl Outcomes {
    fn deliver(self) {
        for (reply, stamp) in self.replies {
            let _ = reply.send(self.result.clone().map(|()| stamp));
        }
    }
}

/// Checks a batch in order, applies the accepted transactions as one backend write at one
/// version, then answers each transaction.
fn apply_batch<B: Backend>(shared: &Shared<B>, batch: Vec<CommitRequest>) -> Outcomes {
    let mut accepted = Vec::with_capacity(batch.len());
    let mut mutations = Vec::new();
    let mut st = lock(&shared.state);
    let now = shared.clock.now();
    let applied = shared.applied.start();
    let version = st.next_version(applied, now);
    let horizon = now.saturating_sub(MAX_TRANSACTION_AGE).min(applied);
    {
        let mut order = 0u16;
        for request in batch {
            let too_old = now.saturating_sub(request.read_version) > MAX_TRANSACTION_AGE;
            let checked = if too_old {
                Err(StoreError::TooOld)
            } else {
                st.log.check(request.read_version, &request.reads)
            };
            if let Err(e) = checked {
                let _ = request.reply.send(Err(e));
                continue;
            }
            let stamp = Versionstamp::new(version, order);
            order = order.wrapping_add(1);
            let mut own = request.writes.into_mutations();
            own.extend(request.stamped.into_iter().map(|s| s.into_mutation(stamp)));
            st.log.record(version, own.iter().map(Mutation::written));
            mutations.extend(own);
            accepted.push((request.reply, stamp));
        }
    }
    if accepted.is_empty() {
        shared.applied.finish(None);
        return Outcomes {
            replies: accepted,
            result: Ok(()),
        };
    }
    let result = shared.backend.apply(version, &mutations, horizon);
    shared.applied.finish(result.is_ok().then_some(version));
    st.log.prune(horizon);
    drop(st);
    Outcomes {
        replies: accepted,
        result,
    }
}

struct EngineTx<'a, B: Backend> {
    engine: &'a Engine<B>,
    read_version: u64,
    snapshot: B::Snapshot,
    reads: ReadSet,
    writes: WriteBuffer,
    stamped: Vec<Stamped>,
    stamped_size: usize,
    done: bool,
}

fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_BYTES,
        });
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

fn check_offset(offset: usize, len: usize) -> Result<(), StoreError> {
    if offset.checked_add(10).is_none_or(|end| end > len) {
        return Err(StoreError::BadVersionstampOffset { offset, len });
    }
    Ok(())
}

impl<B: Backend> EngineTx<'_, B> {
    fn usable(&self) -> Result<(), StoreError> {
        if self.done {
            return Err(StoreError::Invalid("already committed"));
        }
        Ok(())
    }
}

impl<B: Backend> Transaction for EngineTx<'_, B> {
    fn read_version(&mut self) -> Result<u64, StoreError> {
        Ok(self.read_version)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.usable()?;
        check_key(key)?;
        if let Some(known) = self.writes.lookup(key) {
            return Ok(known);
        }
        self.reads.keys.push(key.to_vec());
        self.snapshot.get(key)
    }

    fn get_snapshot(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.usable()?;
        check_key(key)?;
        match self.writes.lookup(key) {
            Some(known) => Ok(known),
            None => self.snapshot.get(key),
        }
    }

    fn get_range(&mut self, range: &RangeOptions) -> Result<Vec<KeyValue>, StoreError> {
        self.usable()?;
        self.reads
            .ranges
            .push((range.begin.clone(), range.end.clone()));
        self.writes.read_range(&self.snapshot, range)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.usable()?;
        check_key(key)?;
        check_value(value)?;
        self.writes.set(key, value);
        Ok(())
    }

    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.usable()?;
        check_key(key)?;
        self.writes.clear(key);
        Ok(())
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError> {
        self.usable()?;
        self.writes.clear_range(begin, end);
        Ok(())
    }

    fn set_versionstamped_key(
        &mut self,
        key: &[u8],
        offset: usize,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.usable()?;
        check_key(key)?;
        check_value(value)?;
        check_offset(offset, key.len())?;
        self.stamped_size += key.len() + value.len();
        self.stamped.push(Stamped::Key {
            key: key.to_vec(),
            offset,
            value: value.to_vec(),
        });
        Ok(())
    }

    fn set_versionstamped_value(
        &mut self,
        key: &[u8],
        value: &[u8],
        offset: usize,
    ) -> Result<(), StoreError> {
        self.usable()?;
        check_key(key)?;
        check_value(value)?;
        check_offset(offset, value.len())?;
        self.stamped_size += key.len() + value.len();
        self.stamped.push(Stamped::Value {
            key: key.to_vec(),
            value: value.to_vec(),
            offset,
        });
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<Option<Versionstamp>, StoreError> {
        self.usable()?;
        self.done = true;
        if self.writes.is_empty() && self.stamped.is_empty() {
            return Ok(None);
        }
        let size = self.writes.size() + self.stamped_size + self.reads.size();
        if size > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TransactionTooLarge {
                len: size,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let (reply, result) = sync_channel(1);
        let request = CommitRequest {
            read_version: self.read_version,
            reads: std::mem::take(&mut self.reads),
            writes: std::mem::take(&mut self.writes),
            stamped: std::mem::take(&mut self.stamped),
            reply,
        };
        let stamp = self.engine.commit(request, &result)?;
        Ok(Some(stamp))
    }
}
