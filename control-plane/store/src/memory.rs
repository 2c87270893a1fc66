//! The memory store: a multi-version ordered map under the shared engine. Volatile by default
//! (for simulation and benchmarks); [`MemoryStore::open`] adds a write-ahead log, fsynced per
//! batch, so it is durable too and passes the same conformance suite as the other backends.
//!
//! WAL record: `len:u32le crc32:u32le payload`, payload = `version:u64le count:u32le op*`,
//! op = `1 key value | 2 key | 3 begin end`, each byte string `len:u32le bytes`. A torn or corrupt
//! tail (a crash mid-append) is cut off at open; the log is then rewritten compactly.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::engine::{Backend, CommitMode, Engine, EngineOptions, Mutation, Snapshot};
use crate::{ManualClock, Store, StoreError, Transaction};

/// Each key's versions, oldest first; `None` is a deletion.
type Versions = Vec<(u64, Option<Vec<u8>>)>;
type Map = BTreeMap<Vec<u8>, Versions>;

fn visible(versions: &Versions, read_version: u64) -> Option<&[u8]> {
    versions
        .iter()
        .rev()
        .find(|(v, _)| *v <= read_version)
        .and_then(|(_, value)| value.as_deref())
}

struct Mvcc {
    map: Arc<RwLock<Map>>,
    /// Versions below this may have been discarded: reading below it fails with `TooOld`.
    floor: Arc<AtomicU64>,
    wal: Option<Mutex<Wal>>,
    recovered: u64,
}

pub(crate) struct MemorySnapshot {
    map: Arc<RwLock<Map>>,
    floor: Arc<AtomicU64>,
    read_version: u64,
}

impl MemorySnapshot {
    fn check_age(&self) -> Result<(), StoreError> {
        if self.read_version < self.floor.load(Ordering::Acquire) {
            return Err(StoreError::TooOld);
        }
        Ok(())
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_age()?;
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map
            .get(key)
            .and_then(|vs| visible(vs, self.read_version))
            .map(<[u8]>::to_vec))
    }

    fn scan(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let range = map.range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)));
        let items: Box<dyn Iterator<Item = (&Vec<u8>, &Versions)>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for (k, vs) in items {
            if let Some(v) = visible(vs, self.read_version)
                && !visit(k, v)
            {
                break;
            }
        }
        Ok(())
    }
}

/// Drops versions no reader can see any more: all but the newest at or below `horizon`, and
/// a key whose only remaining version is a deletion at or below it.
fn compact(versions: &mut Versions, horizon: u64) {
    if let Some(keep_from) = versions.iter().rposition(|(v, _)| *v <= horizon) {
        versions.drain(..keep_from);
    }
    if versions.len() == 1 && versions[0].0 <= horizon && versions[0].1.is_none() {
        versions.clear();
    }
}

fn apply_to_map(map: &mut Map, version: u64, mutations: &[Mutation], horizon: u64) {
    let touch = |map: &mut Map, key: &[u8], value: Option<Vec<u8>>| {
        let versions = map.entry(key.to_vec()).or_default();
        versions.push((version, value));
        compact(versions, horizon);
        if versions.is_empty() {
            map.remove(key);
        }
    };
    for m in mutations {
        match m {
            Mutation::Set(k, v) => touch(map, k, Some(v.clone())),
            Mutation::Clear(k) => {
                if map.contains_key(k) {
                    touch(map, k, None);
                }
            }
            Mutation::ClearRange(b, e) => {
                let keys: Vec<Vec<u8>> = map
                    .range::<[u8], _>((
                        Bound::Included(b.as_slice()),
                        Bound::Excluded(e.as_slice()),
                    ))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    touch(map, &k, None);
                }
            }
        }
    }
}

impl Backend for Mvcc {
    type Snapshot = MemorySnapshot;

    fn snapshot(&self, read_version: u64) -> Result<MemorySnapshot, StoreError> {
        Ok(MemorySnapshot {
            map: Arc::clone(&self.map),
            floor: Arc::clone(&self.floor),
            read_version,
        })
    }

    fn apply(&self, version: u64, mutations: &[Mutation], horizon: u64) -> Result<(), StoreError> {
        if let Some(wal) = &self.wal {
            wal.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .append(version, mutations)?;
        }
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apply_to_map(&mut map, version, mutations, horizon);
        Ok(())
    }

    fn recovered_version(&self) -> u64 {
        self.recovered
    }

    fn describe(&self) -> String {
        match &self.wal {
            Some(wal) => format!(
                "memory:{}",
                wal.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .path
                    .display()
            ),
            None => "memory".into(),
        }
    }
}

/// The in-memory store.
pub struct MemoryStore {
    engine: Engine<Mvcc>,
}

impl MemoryStore {
    /// A volatile store with wall-clock versions. Commits apply inline, in the committing thread:
    /// with no sync to share, a committer thread would only add two hand-offs per commit
    /// (measured: they were most of a placement's latency on this store).
    pub fn volatile() -> Self {
        Self::volatile_with(&EngineOptions {
            commit_mode: CommitMode::Inline,
            ..EngineOptions::default()
        })
    }

    /// A volatile store with explicit options.
    pub fn volatile_with(options: &EngineOptions) -> Self {
        let backend = Mvcc {
            map: Arc::default(),
            floor: Arc::default(),
            wal: None,
            recovered: 0,
        };
        MemoryStore {
            engine: Engine::new(backend, options),
        }
    }

    /// A deterministic volatile store for simulation: inline commits (no thread) and versions
    /// from `clock`.
    pub fn deterministic(clock: ManualClock) -> Self {
        Self::volatile_with(&EngineOptions {
            commit_mode: CommitMode::Inline,
            clock: Arc::new(clock),
        })
    }

    /// A durable store whose write-ahead log lives at `path` (created if needed).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, &EngineOptions::default())
    }

    /// [`MemoryStore::open`] with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: &EngineOptions) -> Result<Self, StoreError> {
        let (map, recovered, wal) = Wal::recover(path.as_ref())?;
        let backend = Mvcc {
            map: Arc::new(RwLock::new(map)),
            floor: Arc::default(),
            wal: Some(Mutex::new(wal)),
            recovered,
        };
        Ok(MemoryStore {
            engine: Engine::new(backend, options),
        })
    }
}

impl Store for MemoryStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        self.engine.begin()
    }

    fn describe(&self) -> String {
        self.engine.backend().describe()
    }
}

struct Wal {
    path: PathBuf,
    file: File,
    /// Length of the log up to the last complete record.
    len: u64,
    /// Set when a failed append could not be undone: the log is refused from then on.
    broken: bool,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("{}: {e}", path.display()))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn encode_record(version: u64, mutations: &[Mutation]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&version.to_le_bytes());
    payload.extend_from_slice(&(mutations.len() as u32).to_le_bytes());
    for m in mutations {
        match m {
            Mutation::Set(k, v) => {
                payload.push(1);
                put_bytes(&mut payload, k);
                put_bytes(&mut payload, v);
            }
            Mutation::Clear(k) => {
                payload.push(2);
                put_bytes(&mut payload, k);
            }
            Mutation::ClearRange(b, e) => {
                payload.push(3);
                put_bytes(&mut payload, b);
                put_bytes(&mut payload, e);
            }
        }
    }
    let mut record = Vec::with_capacity(payload.len() + 8);
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

fn decode_payload(payload: &[u8]) -> Option<(u64, Vec<Mutation>)> {
    let mut pos = 0;
    let mut take = |n: usize| {
        let s = payload.get(pos..pos + n)?;
        pos += n;
        Some(s)
    };
    let version = u64::from_le_bytes(take(8)?.try_into().ok()?);
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut mutations = Vec::new();
    for _ in 0..count {
        let tag = take(1)?[0];
        let mut bytes = || {
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            take(len).map(<[u8]>::to_vec)
        };
        mutations.push(match tag {
            1 => Mutation::Set(bytes()?, bytes()?),
            2 => Mutation::Clear(bytes()?),
            3 => Mutation::ClearRange(bytes()?, bytes()?),
            _ => return None,
        });
    }
    Some((version, mutations))
}

impl Wal {
    /// Replays the log at `path` (cutting off a torn tail), then rewrites it as one compact
    /// record holding the recovered data.
    fn recover(path: &Path) -> Result<(Map, u64, Wal), StoreError> {
        let mut map = Map::new();
        let mut version = 0;
        if path.exists() {
            let mut reader = BufReader::new(File::open(path).map_err(io(path))?);
            let mut header = [0u8; 8];
            while reader.read_exact(&mut header).is_ok() {
                let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
                let mut payload = vec![0u8; len];
                if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
                    break; // torn or corrupt tail: everything before it was acknowledged
                }
                let (v, mutations) = decode_payload(&payload).ok_or_else(|| {
                    StoreError::Corrupt(format!("{}: undecodable record", path.display()))
                })?;
                apply_to_map(&mut map, v, &mutations, v);
                version = v;
            }
        }
        // Rewrite compactly: one record with every live key, via a temporary file and rename.
        let live: Vec<Mutation> = map
            .iter()
            .filter_map(|(k, vs)| {
                visible(vs, version).map(|v| Mutation::Set(k.clone(), v.to_vec()))
            })
            .collect();
        let tmp = path.with_extension("compacting");
        {
            let mut out = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
            if !live.is_empty() || version > 0 {
                out.write_all(&encode_record(version, &live))
                    .map_err(io(&tmp))?;
            }
            let file = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            file.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        Ok((
            map,
            version,
            Wal {
                path: path.to_path_buf(),
                file,
                len,
                broken: false,
            },
        ))
    }

    fn append(&mut self, version: u64, mutations: &[Mutation]) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::Unavailable(format!(
                "{}: an earlier write failed and could not be undone; reopen the store",
                self.path.display()
            )));
        }
        let record = encode_record(version, mutations);
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut the partial record off so later records are not hidden behind it.
                if self.file.set_len(self.len).is_err() {
                    self.broken = true;
                }
                Err(io(&self.path)(e))
            }
        }
    }
}
