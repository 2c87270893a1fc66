//! Lease arithmetic both sides must agree on. The control plane measures leases in store
//! versions (about 1,000,000 per second); a node measures them on its own monotonic clock from
//! the moment it *sent* the heartbeat, minus a safety margin, so its lease always ends before the
//! control plane's does.

use serde::{Deserialize, Serialize};

/// Store versions per second of wall time.
pub const VERSIONS_PER_SECOND: u64 = 1_000_000;

/// Fraction of the TTL a node gives up to cover clock-rate differences (1/10).
pub const SAFETY_MARGIN_DIVISOR: u64 = 10;

/// Lease settings the control plane hands to nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSettings {
    /// How long a heartbeat keeps a node's lease, in versions.
    pub ttl_versions: u64,
    /// How often nodes should heartbeat, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Successive heartbeats a node needs before it receives placements.
    pub min_heartbeats: u32,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            ttl_versions: 10 * VERSIONS_PER_SECOND,
            heartbeat_interval_ms: 1_000,
            min_heartbeats: 3,
        }
    }
}

/// The control plane's rule: a lease granted by a heartbeat committed at `heartbeat_version` is
/// valid at version `now` while `now <= heartbeat_version + ttl`.
pub fn valid_at(heartbeat_version: u64, ttl_versions: u64, now: u64) -> bool {
    now <= heartbeat_version.saturating_add(ttl_versions)
}

/// The node's rule: after a heartbeat sent at local monotonic time `sent_at_micros` succeeded, the
/// node may serve until the returned local time (exclusive). The heartbeat's commit version is at
/// or after the send, so this deadline precedes the control plane's by at least the margin.
pub fn node_deadline_micros(sent_at_micros: u64, ttl_versions: u64) -> u64 {
    let ttl_micros = ttl_versions.saturating_mul(1_000_000) / VERSIONS_PER_SECOND;
    sent_at_micros.saturating_add(ttl_micros - ttl_micros / SAFETY_MARGIN_DIVISOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_gives_up_before_the_control_plane_does() {
        let ttl = 2 * VERSIONS_PER_SECOND;
        // Heartbeat sent at local t=100 s; committed at version 1_000 s (clocks are unrelated).
        let node_end = node_deadline_micros(100_000_000, ttl);
        assert_eq!(node_end, 101_800_000);
        assert!(valid_at(1_000_000_000, ttl, 1_002_000_000));
        assert!(!valid_at(1_000_000_000, ttl, 1_002_000_001));
    }
}
