//! Limits on actor storage that nodes enforce as a guest writes and the control plane enforces
//! again at commit: one set of numbers for both.

/// Longest storage key, in bytes (as Durable Objects).
pub const MAX_STATE_KEY_BYTES: usize = 2048;
/// Largest storage value, in bytes.
pub const MAX_STATE_VALUE_BYTES: usize = 64 << 10;
/// Most bytes (keys and values) one call may write.
pub const MAX_COMMIT_BYTES: usize = 1 << 20;
/// Most bytes of writes one batch of commits carries (`state/commit-batch`); a batch always
/// holds at least one commit, however large.
pub const MAX_COMMIT_BATCH_BYTES: usize = 4 << 20;
/// Most commits in one batch.
pub const MAX_COMMIT_BATCH: usize = 1024;
/// Most keys one call may write.
pub const MAX_COMMIT_WRITES: usize = 1024;
/// Most entries one `list` returns.
pub const MAX_LIST: u32 = 10_000;
