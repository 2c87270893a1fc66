//! Limits on actor storage that nodes enforce as a guest writes and the control plane enforces
//! again at commit: one set of numbers for both.

/// Longest storage key, in bytes (as Durable Objects).
pub const MAX_STATE_KEY_BYTES: usize = 2048;
/// Largest storage value, in bytes.
pub const MAX_STATE_VALUE_BYTES: usize = 64 << 10;
/// Most bytes (keys and values) one call may write.
pub const MAX_COMMIT_BYTES: usize = 1 << 20;
/// Most keys one call may write.
pub const MAX_COMMIT_WRITES: usize = 1024;
/// Most entries one `list` returns.
pub const MAX_LIST: u32 = 10_000;
