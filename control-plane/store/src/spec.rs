//! Choosing a store from a string: `embedded:PATH`, `memory`, `memory:PATH` or `fdb:CLUSTER_FILE`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::{EmbeddedStore, MemoryStore, Store, StoreError};

/// Which store to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// A redb file.
    Embedded(PathBuf),
    /// In memory; durable through a write-ahead log if a path is given.
    Memory(Option<PathBuf>),
    /// A FoundationDB cluster; `None` uses the default cluster file.
    Fdb(Option<PathBuf>),
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let path = (!rest.is_empty()).then(|| PathBuf::from(rest));
        match kind {
            "embedded" => path.map(StoreSpec::Embedded).ok_or_else(|| {
                "`embedded:` needs a file path, e.g. embedded:/var/lib/latchkey/store.redb".into()
            }),
            "memory" => Ok(StoreSpec::Memory(path)),
            "fdb" => Ok(StoreSpec::Fdb(path)),
            _ => Err(format!(
                "unknown store `{s}`: use embedded:PATH, memory, memory:PATH or fdb:CLUSTER_FILE"
            )),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Embedded(p) => write!(f, "embedded:{}", p.display()),
            StoreSpec::Memory(None) => f.write_str("memory"),
            StoreSpec::Memory(Some(p)) => write!(f, "memory:{}", p.display()),
            StoreSpec::Fdb(None) => f.write_str("fdb"),
            StoreSpec::Fdb(Some(p)) => write!(f, "fdb:{}", p.display()),
        }
    }
}

/// Opens the store a spec names.
pub fn open(spec: &StoreSpec) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match spec {
        StoreSpec::Embedded(path) => Arc::new(EmbeddedStore::open(path)?),
        StoreSpec::Memory(None) => Arc::new(MemoryStore::volatile()),
        StoreSpec::Memory(Some(path)) => Arc::new(MemoryStore::open(path)?),
        StoreSpec::Fdb(cluster_file) => open_fdb(cluster_file.as_deref())?,
    })
}

#[cfg(feature = "fdb")]
fn open_fdb(cluster_file: Option<&std::path::Path>) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(crate::FdbStore::open(cluster_file)?))
}

#[cfg(not(feature = "fdb"))]
fn open_fdb(_: Option<&std::path::Path>) -> Result<Arc<dyn Store>, StoreError> {
    Err(StoreError::Unavailable(
        "this build has no FoundationDB support: rebuild with `--features fdb`".into(),
    ))
}
