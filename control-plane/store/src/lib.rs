//! Ordered, transactional key-value stores with FoundationDB's semantics, behind one [`Store`]
//! trait: serializable transactions with optimistic conflict detection, read-your-writes, range
//! reads, time-correlated commit versions and versionstamps.
//!
//! Backends:
//! - [`EmbeddedStore`] (default): redb on local disk, with group commit.
//! - [`MemoryStore`]: multi-version in-memory map, optionally made durable by a write-ahead log;
//!   with an inline commit mode and a manual clock it is deterministic, for simulation.
//! - `FdbStore` (cargo feature `fdb`): FoundationDB through the `foundationdb` crate.
//!
//! The embedded and memory backends share one concurrency engine (`engine`), and every backend
//! runs the same [`conformance`] suite.
//!
//! ```
//! use latchkey_store::{run, MemoryStore, Store, StoreError, Transaction};
//!
//! let store = MemoryStore::volatile();
//! let committed = run(&store, |tx| -> Result<u64, StoreError> {
//!     let n = tx.get(b"counter")?.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
//!     tx.set(b"counter", &(n + 1).to_le_bytes())?;
//!     Ok(n + 1)
//! })?;
//! assert_eq!(committed.value, 1);
//! assert!(committed.versionstamp.is_some());
//! # Ok::<(), StoreError>(())
//! ```

pub mod clock;
pub mod conformance;
mod embedded;
mod engine;
mod memory;
mod retry;
mod spec;
mod versionstamp;

#[cfg(feature = "fdb")]
mod fdb;

pub use clock::{ManualClock, SystemClock, VersionClock};
pub use embedded::EmbeddedStore;
pub use engine::{CommitMode, EngineOptions};
pub use memory::MemoryStore;
pub use retry::{Committed, RetryPolicy, StoreRetryable, run, run_with};
pub use spec::{StoreSpec, open};
pub use versionstamp::{INCOMPLETE_VERSIONSTAMP, Versionstamp};

#[cfg(feature = "fdb")]
pub use fdb::FdbStore;

/// Largest key, in bytes (FoundationDB's limit).
pub const MAX_KEY_BYTES: usize = 10_000;
/// Largest value, in bytes (FoundationDB's limit).
pub const MAX_VALUE_BYTES: usize = 100_000;
/// Largest transaction (keys and values written, plus conflict ranges), in bytes (FoundationDB's
/// limit).
pub const MAX_TRANSACTION_BYTES: usize = 10_000_000;
/// Commit versions advance about this many times per second of wall time, like FoundationDB's.
pub const VERSIONS_PER_SECOND: u64 = 1_000_000;

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// What a store operation failed with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another transaction wrote something this one read, after this one's read version.
    /// [`run`] retries it.
    #[error("transaction conflict: a key it read was written concurrently")]
    Conflict,
    /// The transaction lived longer than the store keeps conflict history (5 s, like
    /// FoundationDB). [`run`] retries it.
    #[error("transaction too old: it ran longer than 5 seconds")]
    TooOld,
    /// The commit may or may not have happened (the connection to the store was lost while
    /// committing). Only idempotent transactions may be retried.
    #[error("commit outcome unknown: {0}")]
    MaybeCommitted(String),
    /// The store cannot be reached or failed an I/O operation. Retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A key exceeds [`MAX_KEY_BYTES`].
    #[error("key is {len} bytes; the limit is {max}")]
    KeyTooLarge {
        /// Size of the key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value exceeds [`MAX_VALUE_BYTES`].
    #[error("value is {len} bytes; the limit is {max}")]
    ValueTooLarge {
        /// Size of the value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The transaction's writes exceed [`MAX_TRANSACTION_BYTES`].
    #[error("transaction is {len} bytes; the limit is {max}")]
    TransactionTooLarge {
        /// Size of the transaction.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A versionstamped write names a placeholder outside the key or value.
    #[error("versionstamp placeholder at offset {offset} does not fit in {len} bytes")]
    BadVersionstampOffset {
        /// The offset given.
        offset: usize,
        /// Length of the key or value.
        len: usize,
    },
    /// The transaction was used after a failed operation, or committed twice.
    #[error("transaction is no longer usable: {0}")]
    Invalid(&'static str),
    /// The data on disk is not what this version of Latchkey wrote.
    #[error("store data is corrupt or from an incompatible version: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether [`run`] retries the transaction from the start.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::TooOld)
    }

    /// Whether the operation may succeed if tried again later (conflicts, unavailability, and
    /// unknown outcomes of idempotent transactions).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict
                | StoreError::TooOld
                | StoreError::Unavailable(_)
                | StoreError::MaybeCommitted(_)
        )
    }
}

/// A half-open key range `[begin, end)` read in key order (or reverse), up to `limit` pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeOptions {
    /// First key included.
    pub begin: Vec<u8>,
    /// First key excluded.
    pub end: Vec<u8>,
    /// Most pairs returned; `None` for all.
    pub limit: Option<usize>,
    /// Whether to read from `end` down to `begin`.
    pub reverse: bool,
}

impl RangeOptions {
    /// Every key in `[begin, end)`.
    pub fn between(begin: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> Self {
        RangeOptions {
            begin: begin.into(),
            end: end.into(),
            limit: None,
            reverse: false,
        }
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        Self::between(prefix.to_vec(), prefix_end(prefix))
    }

    /// At most `limit` pairs.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Read from the end of the range backwards.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// The first key after every key that starts with `prefix` (FoundationDB's `strinc`). A prefix
/// of only `0xff` bytes has no such key; the range then ends at the largest possible key.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; MAX_KEY_BYTES + 1]
}

/// One transaction: reads see a consistent snapshot at the read version plus this transaction's
/// own writes; the commit succeeds only if nothing it read changed since (serializable).
pub trait Transaction {
    /// The version this transaction reads at. Versions advance about 1,000,000 per second of
    /// wall time and never go backwards, also across restarts.
    fn read_version(&mut self) -> Result<u64, StoreError>;

    /// The value at `key`.
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// The value at `key`, read without adding a read conflict: a concurrent write to it does
    /// not fail this transaction (FoundationDB's snapshot read). The default is a plain `get`,
    /// which is always correct, only more conflict-prone.
    fn get_snapshot(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(key)
    }

    /// The pairs in a range, in key order (or reverse).
    fn get_range(&mut self, range: &RangeOptions) -> Result<Vec<KeyValue>, StoreError>;

    /// Writes `value` at `key`.
    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`.
    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError>;

    /// Removes every key in `[begin, end)`.
    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError>;

    /// Writes `value` at `key`, where the 10 bytes of `key` at `offset` are replaced by this
    /// transaction's versionstamp at commit. Such keys cannot be read back before commit.
    fn set_versionstamped_key(
        &mut self,
        key: &[u8],
        offset: usize,
        value: &[u8],
    ) -> Result<(), StoreError>;

    /// Writes `value` at `key`, where the 10 bytes of `value` at `offset` are replaced by this
    /// transaction's versionstamp at commit.
    fn set_versionstamped_value(
        &mut self,
        key: &[u8],
        value: &[u8],
        offset: usize,
    ) -> Result<(), StoreError>;

    /// Commits. Returns the versionstamp (commit version and order within it) if the
    /// transaction wrote anything, `None` for a read-only transaction.
    fn commit(self: Box<Self>) -> Result<Option<Versionstamp>, StoreError>;
}

/// An ordered, transactional key-value store.
pub trait Store: Send + Sync {
    /// Starts a transaction.
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError>;

    /// A short description for logs, such as `embedded:/var/lib/latchkey/store.redb`.
    fn describe(&self) -> String;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        (**self).begin()
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}
