//! Runs the conformance suite against every backend: the memory store and the embedded (redb)
//! store, each with group commit and with inline commits, and FoundationDB when
//! `FDB_CLUSTER_FILE` names a cluster (build with `--features fdb`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use latchkey_store::conformance::Harness;
use latchkey_store::{CommitMode, EmbeddedStore, EngineOptions, ManualClock, MemoryStore, Store};

/// A fresh directory and a manual clock; the store is opened from `path` each time.
struct Local {
    dir: tempfile::TempDir,
    clock: ManualClock,
    mode: CommitMode,
    embedded: bool,
}

impl Local {
    fn new(embedded: bool, mode: CommitMode) -> Self {
        Local {
            dir: tempfile::tempdir().expect("temp dir"),
            clock: ManualClock::new(1_000_000_000_000),
            mode,
            embedded,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join(if self.embedded {
            "store.redb"
        } else {
            "store.wal"
        })
    }
}

impl Harness for Local {
    fn open(&self) -> Arc<dyn Store> {
        let options = EngineOptions {
            commit_mode: self.mode,
            clock: Arc::new(self.clock.clone()),
        };
        if self.embedded {
            Arc::new(EmbeddedStore::open_with(self.path(), &options).expect("open embedded store"))
        } else {
            Arc::new(MemoryStore::open_with(self.path(), &options).expect("open memory store"))
        }
    }

    fn clock(&self) -> Option<&ManualClock> {
        Some(&self.clock)
    }

    fn prefix(&self) -> &[u8] {
        b""
    }

    fn crash_child(&self) -> Command {
        let kind = if self.embedded { "embedded" } else { "memory" };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey-store-crash-child"));
        cmd.arg(format!("{kind}:{}", self.path().display()));
        cmd
    }
}

const GROUPED: CommitMode = CommitMode::Grouped { max_batch: 1024 };

mod memory_grouped {
    latchkey_store::conformance_tests!(super::Local::new(false, super::GROUPED));
}

mod memory_inline {
    latchkey_store::conformance_tests!(super::Local::new(
        false,
        latchkey_store::CommitMode::Inline
    ));
}

mod embedded_grouped {
    latchkey_store::conformance_tests!(super::Local::new(true, super::GROUPED));
}

mod embedded_inline {
    latchkey_store::conformance_tests!(super::Local::new(true, latchkey_store::CommitMode::Inline));
}

/// FoundationDB, when `FDB_CLUSTER_FILE` names a cluster at build time (see build.rs): each test
/// writes under its own key prefix, cleared before and after.
#[cfg(all(feature = "fdb", fdb_cluster))]
mod fdb {
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    use latchkey_store::conformance::Harness;
    use latchkey_store::{FdbStore, ManualClock, RangeOptions, Store, run};

    struct Fdb {
        cluster_file: PathBuf,
        prefix: Vec<u8>,
    }

    impl Fdb {
        fn new() -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            // Read at run time, falling back to the value the tests were built with.
            let cluster_file = std::env::var_os("FDB_CLUSTER_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| option_env!("FDB_CLUSTER_FILE").map(PathBuf::from))
                .expect("FDB_CLUSTER_FILE names the cluster to test");
            let started = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let prefix = format!(
                "latchkey-conformance/{}-{started}-{}/",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
            .into_bytes();
            let harness = Fdb {
                cluster_file,
                prefix,
            };
            let range = RangeOptions::prefix(&harness.prefix);
            run(&*harness.open(), |tx| {
                tx.clear_range(&range.begin, &range.end)
            })
            .expect("clear the test prefix");
            harness
        }
    }

    impl Drop for Fdb {
        fn drop(&mut self) {
            // Best effort, and without panicking: this also runs while a failed test unwinds.
            if let Ok(store) = FdbStore::open(Some(&self.cluster_file)) {
                let range = RangeOptions::prefix(&self.prefix);
                let _ = run(&store, |tx| tx.clear_range(&range.begin, &range.end));
            }
        }
    }

    impl Harness for Fdb {
        fn open(&self) -> Arc<dyn Store> {
            Arc::new(FdbStore::open(Some(&self.cluster_file)).expect("open the FoundationDB store"))
        }

        fn clock(&self) -> Option<&ManualClock> {
            None
        }

        fn prefix(&self) -> &[u8] {
            &self.prefix
        }

        fn crash_child(&self) -> Command {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey-store-crash-child"));
            cmd.arg(format!("fdb:{}", self.cluster_file.display()));
            cmd
        }
    }

    latchkey_store::conformance_tests!(Fdb::new());
}
