//! Canary buckets: a stable hash places every actor key in one of 10,000 buckets, so a canary at
//! `p`% holds the same keys every time it is computed, on every node and the control plane.

use sha2::{Digest, Sha256};

/// Number of buckets (a canary percentage has two decimals).
pub const BUCKETS: u32 = 10_000;

/// The key's bucket in `0..BUCKETS`.
pub fn bucket(actor_type: &str, key: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(b"latchkey.canary.v1\0")
        .chain_update(actor_type.as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % u64::from(BUCKETS)) as u32
}

/// Whether the key belongs to a canary covering `basis_points` of the buckets (100 = 1%).
pub fn in_canary(actor_type: &str, key: &str, basis_points: u32) -> bool {
    bucket(actor_type, key) < basis_points
}

/// Converts a percentage (0–100, two decimals kept) to basis points.
pub fn basis_points(percent: f64) -> Option<u32> {
    (0.0..=100.0)
        .contains(&percent)
        .then(|| (percent * 100.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("counter", "k1"), bucket("counter", "k1"));
        let in_ten = (0..10_000)
            .filter(|i| in_canary("counter", &format!("key-{i}"), 1_000))
            .count();
        assert!(
            (800..1200).contains(&in_ten),
            "{in_ten} of 10000 keys in a 10% canary"
        );
        assert_eq!(basis_points(12.345), Some(1235));
        assert_eq!(basis_points(101.0), None);
    }
}
