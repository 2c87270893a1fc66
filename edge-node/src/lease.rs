//! The node's view of its lease: the epoch the control plane last gave it and the local
//! monotonic time until which it may serve. A heartbeat's lease counts from when it was *sent*,
//! minus a safety margin (`latchkey_wire::lease::node_deadline_micros`), so the node always stops
//! before the control plane could place its actors elsewhere.
//!
//! The decision is the pure [`renew`]; [`Lease`] holds its result in atomics so every call can
//! check it for the price of two loads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_wire::lease::node_deadline_micros;

use crate::ports::Clock;

/// The lease state: epoch and local deadline (microseconds on the node's monotonic clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeaseState {
    /// The epoch the node holds its activations in; 0 before registration.
    pub epoch: u64,
    /// Serve only while the local clock is below this.
    pub deadline: u64,
}

impl LeaseState {
    /// The epoch, if the lease is valid at local time `now`: an actor placed in that epoch may be
    /// served here (the node's side of fencing; nothing else is needed to answer from memory).
    pub fn valid_epoch(&self, now: u64) -> Option<u64> {
        (self.epoch != 0 && now < self.deadline).then_some(self.epoch)
    }
}

/// What a successful heartbeat (or registration) changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renewal {
    /// The new state.
    pub state: LeaseState,
    /// The epoch changed: every activation of the old epoch is dead and must be dropped.
    pub epoch_changed: bool,
}

/// The lease after a heartbeat sent at local time `sent_at` returned `epoch` and a lease of
/// `ttl_versions`. The deadline never moves backwards (a late answer to an older heartbeat
/// cannot shorten a newer lease), unless the epoch changed.
pub fn renew(previous: LeaseState, sent_at: u64, epoch: u64, ttl_versions: u64) -> Renewal {
    let deadline = node_deadline_micros(sent_at, ttl_versions);
    let epoch_changed = epoch != previous.epoch;
    Renewal {
        state: LeaseState {
            epoch,
            deadline: if epoch_changed {
                deadline
            } else {
                deadline.max(previous.deadline)
            },
        },
        epoch_changed,
    }
}

/// The node's current lease, readable from any thread.
pub struct Lease {
    clock: Arc<dyn Clock>,
    epoch: AtomicU64,
    deadline: AtomicU64,
}

impl Lease {
    /// No lease yet; time is `clock`'s monotonic time.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Lease {
            clock,
            epoch: AtomicU64::new(0),
            deadline: AtomicU64::new(0),
        }
    }

    /// The node's monotonic clock, in microseconds.
    pub fn now(&self) -> u64 {
        self.clock.monotonic_micros()
    }

    /// The epoch, if the lease is valid now.
    pub fn valid_epoch(&self) -> Option<u64> {
        #[cfg(not(feature = "ablate-lease-check"))]
        return self.state().valid_epoch(self.now());
        // Benchmark ablation (`benches/`): the epoch without the clock read or deadline check.
        #[cfg(feature = "ablate-lease-check")]
        {
            let epoch = self.epoch.load(Ordering::Acquire);
            (epoch != 0).then_some(epoch)
        }
    }

    /// The current state (valid or not).
    pub fn state(&self) -> LeaseState {
        LeaseState {
            epoch: self.epoch.load(Ordering::Acquire),
            deadline: self.deadline.load(Ordering::Acquire),
        }
    }

    /// Records a successful heartbeat or registration; returns whether the epoch changed.
    pub fn apply(&self, sent_at: u64, epoch: u64, ttl_versions: u64) -> bool {
        let renewal = renew(self.state(), sent_at, epoch, ttl_versions);
        if renewal.epoch_changed {
            // Invalidate first, so no check sees the new epoch with the old deadline.
            self.deadline.store(0, Ordering::Release);
            self.epoch.store(renewal.state.epoch, Ordering::Release);
        }
        self.deadline
            .store(renewal.state.deadline, Ordering::Release);
        renewal.epoch_changed
    }

    /// Gives the lease up (shutdown): nothing is served from now on.
    pub fn surrender(&self) {
        self.deadline.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::lease::VERSIONS_PER_SECOND;

    #[test]
    fn a_lease_counts_from_the_send_and_never_shrinks_within_an_epoch() {
        let ttl = 10 * VERSIONS_PER_SECOND;
        let start = LeaseState {
            epoch: 0,
            deadline: 0,
        };
        let first = renew(start, 1_000_000, 1, ttl);
        assert!(first.epoch_changed);
        assert_eq!(first.state.deadline, 1_000_000 + 9_000_000);
        // An answer to an older heartbeat arriving late does not shorten the lease.
        let late = renew(first.state, 500_000, 1, ttl);
        assert_eq!(late.state.deadline, first.state.deadline);
        assert!(!late.epoch_changed);
        // A new epoch replaces the deadline outright.
        let lapsed = renew(first.state, 20_000_000, 2, ttl);
        assert!(lapsed.epoch_changed);
        assert_eq!(
            lapsed.state,
            LeaseState {
                epoch: 2,
                deadline: 29_000_000
            }
        );
    }

    #[test]
    fn the_lease_is_invalid_before_registration_and_after_surrender() {
        let lease = Lease::new(Arc::new(crate::ports::SystemClock::new()));
        assert_eq!(lease.valid_epoch(), None);
        assert!(lease.apply(lease.now(), 3, 10 * VERSIONS_PER_SECOND));
        assert_eq!(lease.valid_epoch(), Some(3));
        lease.surrender();
        assert_eq!(lease.valid_epoch(), None);
    }

    #[test]
    fn the_lease_lapses_by_its_clock() {
        let clock = crate::ports::ManualClock::at(0);
        let lease = Lease::new(Arc::new(clock.clone()));
        assert!(lease.apply(lease.now(), 1, 10 * VERSIONS_PER_SECOND));
        clock.advance(std::time::Duration::from_millis(8_999));
        assert_eq!(lease.valid_epoch(), Some(1), "inside the margin");
        clock.advance(std::time::Duration::from_millis(1));
        assert_eq!(lease.valid_epoch(), None, "a tenth of the TTL early");
    }
}
