//! The FoundationDB store: [`Store`] over a FoundationDB cluster.
//!
//! FoundationDB backend (cargo feature `fdb`): synchronous wrappers over the async
//! `foundationdb` client, blocking on its futures (the FDB network thread drives them, so any
//! thread may block). Conflict detection, read versions and versionstamps are FoundationDB's own;
//! this module adds the same key, value and versionstamp-offset checks as the other backends and
//! maps FDB error codes to [`StoreError`]. The conformance suite runs against it when
//! `FDB_CLUSTER_FILE` names a cluster at build and test time.
//!
//! Keys from `0xff` on are FoundationDB's system keys: range reads and clears are clamped below
//! them, and writing one fails.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use foundationdb::api::{FdbApiBuilder, NetworkAutoStop};
use foundationdb::options::{MutationType, StreamingMode};
use foundationdb::{Database, FdbError, RangeOption};
use futures::TryStreamExt;
use futures::executor::block_on;

use crate::{
    KeyValue, MAX_KEY_BYTES, MAX_TRANSACTION_BYTES, MAX_VALUE_BYTES, RangeOptions, Store,
    StoreError, Transaction, Versionstamp,
};

/// The first key of FoundationDB's system keyspace; user keys sort below it.
const SYSTEM_KEYS: &[u8] = b"\xff";

// FoundationDB error codes (flow/error_definitions.h).
const TRANSACTION_TOO_OLD: i32 = 1007;
const NOT_COMMITTED: i32 = 1020;
const UNSUPPORTED_FORMAT_VERSION: i32 = 1058;
const INCOMPATIBLE_SOFTWARE_VERSION: i32 = 1220;
const CHECKSUM_FAILED: i32 = 1520;
const FILE_CORRUPT: i32 = 1522;
const NO_COMMIT_VERSION: i32 = 2021;
const TRANSACTION_TOO_LARGE: i32 = 2101;

/// The FoundationDB network: started at most once per process, by the first [`FdbStore::open`],
/// and kept (never dropped) until the process exits.
static NETWORK: OnceLock<Result<NetworkAutoStop, FdbError>> = OnceLock::new();

/// Selects the API version and starts the network thread.
#[allow(unsafe_code)]
fn boot_network() -> Result<NetworkAutoStop, FdbError> {
    let builder = FdbApiBuilder::default().build()?;
    // SAFETY: FoundationDB lets a process set up and run its network once, and asks that it be
    // stopped before a normal exit. This is the only call, made once under the `NETWORK`
    // `OnceLock` before any `Database` is created, so the network is set up exactly once and is
    // running before anything uses it. The guard lives in that static and is never dropped, so
    // the network thread runs for the whole life of the process: no database, transaction or
    // future can outlive it, and it is never stopped (after which it could not be restarted).
    // Like FoundationDB's Go binding we do not stop it at exit, so the exit-time requirement is
    // not met literally: libfdb_c's exit cleanup may then race the still-running network thread
    // (apple/foundationdb#3015), a risk confined to a process that is already exiting; commits
    // are acknowledged only once durable, so none is lost by it.
    unsafe { builder.boot() }
}

/// Starts the network if no store has yet.
fn start_network() -> Result<(), StoreError> {
    match NETWORK.get_or_init(boot_network) {
        Ok(_) => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot start the FoundationDB client: {}",
            describe_error(*e)
        ))),
    }
}

/// FoundationDB's message and code, e.g. `Transaction not committed due to conflict with another
/// transaction (FoundationDB error 1020)`.
fn describe_error(e: FdbError) -> String {
    format!("{} (FoundationDB error {})", e.message(), e.code())
}

/// Maps a FoundationDB error to a store error. `size` is the transaction's size as this backend
/// counts it (keys and values written, plus keys and ranges read), reported if FDB finds the
/// transaction too large.
fn map_error(e: FdbError, size: usize) -> StoreError {
    match e.code() {
        NOT_COMMITTED => StoreError::Conflict,
        TRANSACTION_TOO_OLD => StoreError::TooOld,
        TRANSACTION_TOO_LARGE => StoreError::TransactionTooLarge {
            len: size,
            max: MAX_TRANSACTION_BYTES,
        },
        _ if e.is_maybe_committed() => StoreError::MaybeCommitted(describe_error(e)),
        UNSUPPORTED_FORMAT_VERSION
        | INCOMPATIBLE_SOFTWARE_VERSION
        | CHECKSUM_FAILED
        | FILE_CORRUPT => StoreError::Corrupt(describe_error(e)),
        // Retryable errors (future_version, process_behind, throttling...), network and cluster
        // errors, and requests FDB refused (such as a key in the system keyspace).
        _ => StoreError::Unavailable(describe_error(e)),
    }
}

/// Each transaction is cancelled after this long (FoundationDB's own limit is 5 s of MVCC window).
const TRANSACTION_TIMEOUT_MS: i32 = 10_000;

/// A FoundationDB cluster.
pub struct FdbStore {
    db: Database,
    cluster_file: Option<PathBuf>,
}

impl FdbStore {
    /// Connects to the cluster named by `cluster_file`, or by FoundationDB's default cluster file
    /// (`FDB_CLUSTER_FILE`, then the platform's default path) if `None`. Starts the FoundationDB
    /// network on first use. Opening does not contact the cluster; the first read does.
    pub fn open(cluster_file: Option<&Path>) -> Result<Self, StoreError> {
        start_network()?;
        let path = match cluster_file {
            None => None,
            Some(p) => match p.to_str() {
                Some(s) if !s.contains('\0') => Some(s),
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "FoundationDB cluster file path {} is not valid UTF-8 without NUL bytes",
                        p.display()
                    )));
                }
            },
        };
        let db = Database::new(path).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open FoundationDB cluster file {}: {}",
                path.unwrap_or("(default)"),
                describe_error(e)
            ))
        })?;
        // Without a timeout, an unreachable cluster blocks the first read or commit forever; with
        // it the transaction fails with `transaction_timed_out` (1031), reported as unavailable.
        db.set_option(foundationdb::options::DatabaseOption::TransactionTimeout(
            TRANSACTION_TIMEOUT_MS,
        ))
        .map_err(|e| StoreError::Unavailable(describe_error(e)))?;
        Ok(FdbStore {
            db,
            cluster_file: cluster_file.map(Path::to_path_buf),
        })
    }

    /// The cluster file this store was opened with; `None` for the default.
    pub fn cluster_file(&self) -> Option<&Path> {
        self.cluster_file.as_deref()
    }
}

impl Store for FdbStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let tx = self.db.create_trx().map_err(|e| map_error(e, 0))?;
        Ok(Box::new(FdbTx {
            tx,
            wrote: false,
            size: 0,
        }))
    }

    fn describe(&self) -> String {
        match &self.cluster_file {
            Some(path) => format!("fdb:{}", path.display()),
            None => "fdb:default".into(),
        }
    }
}

/// One FoundationDB transaction (read-your-writes, serializable).
struct FdbTx {
    tx: foundationdb::Transaction,
    /// Whether anything was written; a transaction that wrote nothing commits as a no-op.
    wrote: bool,
    /// Bytes of keys and values written plus keys and ranges read, for error reports.
    size: usize,
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

/// `bytes` followed by the placeholder's offset as a 4-byte little-endian integer: the parameter
/// of FDB's versionstamped mutations (API version 520 and later).
fn with_offset(bytes: &[u8], offset: usize) -> Result<Vec<u8>, StoreError> {
    let offset32 = u32::try_from(offset).map_err(|_| StoreError::BadVersionstampOffset {
        offset,
        len: bytes.len(),
    })?;
    let mut param = Vec::with_capacity(bytes.len() + 4);
    param.extend_from_slice(bytes);
    param.extend_from_slice(&offset32.to_le_bytes());
    Ok(param)
}

/// `key`, or the start of the system keyspace if `key` is at or above it.
fn below_system_keys(key: &[u8]) -> &[u8] {
    key.min(SYSTEM_KEYS)
}

impl FdbTx {
    fn fail(&self, e: FdbError) -> StoreError {
        map_error(e, self.size)
    }
}

impl Transaction for FdbTx {
    fn read_version(&mut self) -> Result<u64, StoreError> {
        let version = block_on(self.tx.get_read_version()).map_err(|e| self.fail(e))?;
        u64::try_from(version).map_err(|_| {
            StoreError::Corrupt(format!("FoundationDB returned read version {version}"))
        })
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        self.size += key.len();
        let value = block_on(self.tx.get(key, false)).map_err(|e| self.fail(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn get_snapshot(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let value = block_on(self.tx.get(key, true)).map_err(|e| self.fail(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn get_range(&mut self, range: &RangeOptions) -> Result<Vec<KeyValue>, StoreError> {
        let begin = below_system_keys(&range.begin);
        let end = below_system_keys(&range.end);
        if range.limit == Some(0) || begin >= end {
            return Ok(Vec::new());
        }
        self.size += begin.len() + end.len();
        let size = self.size;
        let option = RangeOption {
            limit: range.limit,
            reverse: range.reverse,
            mode: StreamingMode::WantAll,
            ..RangeOption::from((begin, end))
        };
        // `get_ranges` pages through the range, carrying the remaining limit from page to page.
        let mut pages = self.tx.get_ranges(option, false);
        let mut out = Vec::new();
        while let Some(page) = block_on(pages.try_next()).map_err(|e| map_error(e, size))? {
            out.extend(
                page.iter()
                    .map(|kv| (kv.key().to_vec(), kv.value().to_vec())),
            );
        }
        Ok(out)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        check_value(value)?;
        self.tx.set(key, value);
        self.size += key.len() + value.len();
        self.wrote = true;
        Ok(())
    }

    fn clear(&mut self, key: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.tx.clear(key);
        self.size += key.len();
        self.wrote = true;
        Ok(())
    }

    fn clear_range(&mut self, begin: &[u8], end: &[u8]) -> Result<(), StoreError> {
        let begin = below_system_keys(begin);
        let end = below_system_keys(end);
        if begin >= end {
            return Ok(());
        }
        self.tx.clear_range(begin, end);
        self.size += begin.len() + end.len();
        self.wrote = true;
        Ok(())
    }

    fn set_versionstamped_key(
        &mut self,
        key: &[u8],
        offset: usize,
        value: &[u8],
    ) -> Result<(), StoreError> {
        check_key(key)?;
        check_value(value)?;
        check_offset(offset, key.len())?;
        let param = with_offset(key, offset)?;
        self.tx
            .atomic_op(&param, value, MutationType::SetVersionstampedKey);
        self.size += key.len() + value.len();
        self.wrote = true;
        Ok(())
    }

    fn set_versionstamped_value(
        &mut self,
        key: &[u8],
        value: &[u8],
        offset: usize,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        check_value(value)?;
        check_offset(offset, value.len())?;
        let param = with_offset(value, offset)?;
        self.tx
            .atomic_op(key, &param, MutationType::SetVersionstampedValue);
        self.size += key.len() + value.len();
        self.wrote = true;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<Option<Versionstamp>, StoreError> {
        let FdbTx { tx, wrote, size } = *self;
        if !wrote {
            // Nothing to commit: FDB would accept it without a conflict check or a version.
            return Ok(None);
        }
        // Requested before the commit; it resolves once the commit has succeeded.
        let stamp = tx.get_versionstamp();
        let committed = block_on(tx.commit()).map_err(|e| map_error(*e, size))?;
        let stamp = match block_on(stamp) {
            Ok(bytes) => bytes,
            // FDB optimised the writes away (its docs warn that setting keys to the values they
            // already hold can make a transaction read-only): committed, with no version.
            Err(e) if e.code() == NO_COMMIT_VERSION => return Ok(None),
            Err(e) => {
                return Err(StoreError::MaybeCommitted(format!(
                    "the commit succeeded but its versionstamp could not be read: {}",
                    describe_error(e)
                )));
            }
        };
        drop(committed);
        if stamp.len() != 10 {
            return Err(StoreError::Corrupt(format!(
                "FoundationDB returned a {}-byte versionstamp",
                stamp.len()
            )));
        }
        Ok(Versionstamp::read(&stamp))
    }
}
