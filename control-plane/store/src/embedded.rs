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

/// Opens (creating if needed) a file only its owner may read or write: created with mode 0600,
/// or, if it exists with a wider mode, tightened to 0600.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(file)
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

    /// Opens the store with explicit engine options. The file is readable and writable by its
    /// owner only: created with mode 0600, and an existing file's mode is tightened to it.
    pub fn open_with(path: impl AsRef<Path>, options: &EngineOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let file = open_private(&path).map_err(|io| {
            StoreError::Unavailable(format!("cannot open {}: {io}", path.display()))
        })?;
        let db = Database::builder().create_file(file).map_err(|e| match e {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_store_file_is_owner_only_when_created_and_tightened_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("store.redb");
        drop(EmbeddedStore::open(&created).unwrap());
        assert_eq!(mode(&created), 0o600, "created 0600");

        // A store file left readable by others (an older version, a copy) is tightened on open,
        // and its data is still there.
        std::fs::set_permissions(&created, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = EmbeddedStore::open(&created).unwrap();
        assert_eq!(mode(&created), 0o600, "tightened to 0600");
        let mut tx = store.begin().unwrap();
        tx.set(b"k", b"v").unwrap();
        tx.commit().unwrap();
        drop(store);
        let store = EmbeddedStore::open(&created).unwrap();
        assert_eq!(
            store.begin().unwrap().get(b"k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}
