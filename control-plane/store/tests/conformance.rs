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
