//! Where commit versions come from: wall time in microseconds (about 1,000,000 versions per
//! second, like FoundationDB), or a manual clock for deterministic tests and simulation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of time in versions (microseconds).
pub trait VersionClock: Send + Sync {
    /// The current time, in versions.
    fn now(&self) -> u64;
}

/// Microseconds since the Unix epoch. If the clock steps backwards, the store keeps its versions
/// monotonic by advancing one version per commit until wall time catches up.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl VersionClock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(start)))
    }

    /// Moves the clock forward by `by` versions.
    pub fn advance(&self, by: u64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock (it may go backwards, to test that versions do not).
    pub fn set(&self, to: u64) {
        self.0.store(to, Ordering::SeqCst);
    }
}

impl VersionClock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
