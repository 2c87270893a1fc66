//! The embedded store: redb (ordered, ACID, crash-safe, pure Rust) under the shared engine. With
//! group commit, every transaction waiting at a moment shares one durable redb commit.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use crate::engine::{Backend, Engine, EngineOptions, Mutation, Snapshot};
use crate::{Store, StoreError, Transaction};

const DATA: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("data");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "version";

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

struct Redb {
    db: Database,
    path: PathBuf,
    recovered: u64,
}

type RangeItem<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// A read transaction's view of the data table.
pub(crate) struct RedbSnapshot {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Snapshot for RedbSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .table
            .get(key)
            .map_err(unavailable)?
            .map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let range = self.table.range::<&[u8]>(begin..end).map_err(unavailable)?;
        let mut step = |item: RangeItem<'_>| {
            let (k, v) = item.map_err(unavailable)?;
            Ok::<bool, StoreError>(visit(k.value(), v.value()))
        };
        if reverse {
            for item in range.rev() {
                if !step(item)? {
                    break;
                }
            }
        } else {
            for item in range {
                if !step(item)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Backend for Redb {
    type Snapshot = RedbSnapshot;

    fn snapshot(&self, _read_version: u64) -> Result<RedbSnapshot, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(DATA).map_err(unavailable)?;
        Ok(RedbSnapshot { table })
    }

    fn apply(&self, version: u64, mutations: &[Mutation], _horizon: u64) -> Result<(), StoreError> {
        let mut write = self.db.begin_write().map_err(unavailable)?;
        write
            .set_durability(Durability::Immediate)
            .map_err(unavailable)?;
        {
            let mut data = write.open_table(DATA).map_err(unavailable)?;
            for m in mutations {
                match m {
                    Mutation::Set(k, v) => {
                        data.insert(k.as_slice(), v.as_slice())
                            .map_err(unavailable)?;
                    }
                    Mutation::Clear(k) => {
                        data.remove(k.as_slice()).map_err(unavailable)?;
                    }
                    Mutation::ClearRange(b, e) => {
                        data.retain_in::<&[u8], _>(b.as_slice()..e.as_slice(), |_, _| false)
                            .map_err(unavailable)?;
                    }
                }
            }
            let mut meta = write.open_table(META).map_err(unavailable)?;
            meta.insert(VERSION_KEY, version).map_err(unavailable)?;
        }
        write.commit().map_err(unavailable)
    }

    fn recovered_version(&self) -> u64 {
        self.recovered
    }

    fn describe(&self) -> String {
        format!("embedded:{}", self.path.display())
    }
}

/// The default store: a redb file on local disk.
pub struct EmbeddedStore {
    engine: Engine<Redb>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path` with group commit and wall-clock versions.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, &EngineOptions::default())
    }

    /// Opens the store with explicit engine options.
    pub fn open_with(path: impl AsRef<Path>, options: &EngineOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                StoreError::Unavailable(format!("cannot open {}: {io}", path.display()))
            }
            other => StoreError::Corrupt(format!("{}: {other}", path.display())),
        })?;
        // Create both tables so that snapshots can always open them, and read the last version.
        let write = db.begin_write().map_err(unavailable)?;
        write.open_table(DATA).map_err(unavailable)?;
        let recovered = {
            let meta = write.open_table(META).map_err(unavailable)?;
            let version = meta.get(VERSION_KEY).map_err(unavailable)?;
            version.map_or(0, |v| v.value())
        };
        write.commit().map_err(unavailable)?;
        let backend = Redb {
            db,
            path,
            recovered,
        };
        Ok(EmbeddedStore {
            engine: Engine::new(backend, options),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.engine.backend().path
    }
}

impl Store for EmbeddedStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        self.engine.begin()
    }

    fn describe(&self) -> String {
        self.engine.backend().describe()
    }
}
