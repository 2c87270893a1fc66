//! Collecting idle activation records: records of actors whose placement ended long ago and
//! that store nothing are deleted, a page at a time, each deletion re-checked in its own
//! transaction against the records it reads (with conflicts), so a placement or heartbeat racing
//! it makes one of them retry.
//!
//! An actor with stored state keeps its record: the record names the version its state is in
//! (placed again, the actor resumes on it and its node upgrades it through the hook), and it is
//! small next to the state, which the storage quota bounds.

use latchkey_store::{RangeOptions, prefix_end};

use super::Registry;
use super::nodes::lease_of;
use crate::error::RegistryError;
use crate::fencing;
use crate::keys;
use crate::records::{ActivationRecord, NodeRecord, decode_stamped, get_stamped};

/// Activation records read per page.
const PAGE: usize = 256;

impl Registry {
    /// Deletes the activation records (and last-commit records) of actors that store nothing
    /// and whose placement has not been live for `idle` versions as of `now` (a store version;
    /// never later than the store's own read version is used), per [`fencing::collectable`].
    /// Returns how many were deleted.
    pub fn collect_idle_activations(&self, now: u64, idle: u64) -> Result<usize, RegistryError> {
        let settings = *self.settings();
        let all = keys::activations(None);
        let mut begin = all.begin.clone();
        let mut deleted = 0;
        loop {
            // A read-only pass over one page: which records look collectable.
            let page = self.run(|tx| {
                let now = now.min(tx.read_version()?);
                let rows = tx.get_range(
                    &RangeOptions::between(begin.clone(), all.end.clone()).limit(PAGE),
                )?;
                let mut candidates = Vec::new();
                for (k, v) in &rows {
                    let (generation, record) = decode_stamped::<ActivationRecord>(v)?;
                    let owner = get_stamped::<NodeRecord>(tx, &keys::node(&record.node_id), true)?;
                    let lease = owner.as_ref().map(|(s, r)| lease_of(*s, r));
                    if fencing::collectable(
                        generation.version(),
                        record.node_epoch,
                        lease.as_ref(),
                        now,
                        idle,
                        &settings,
                    ) {
                        candidates.push(k.clone());
                    }
                }
                let next = rows.last().map(|(k, _)| {
                    let mut after = k.clone();
                    after.push(0);
                    after
                });
                Ok((candidates, next, rows.len()))
            })?;
            let (candidates, next, read) = page.value;
            if !candidates.is_empty() {
                deleted += self.collect_records(&candidates, now, idle)?;
            }
            match next {
                Some(after) if read == PAGE => begin = after,
                _ => return Ok(deleted),
            }
        }
    }

    /// Deletes those of `act_keys` still collectable, re-checked in one transaction.
    fn collect_records(
        &self,
        act_keys: &[Vec<u8>],
        now: u64,
        idle: u64,
    ) -> Result<usize, RegistryError> {
        let settings = *self.settings();
        let committed = self.run(|tx| {
            let now = now.min(tx.read_version()?);
            let mut deleted = 0;
            for act_key in act_keys {
                let (_, _, actor_type, key): (String, String, String, String) =
                    foundationdb_tuple::unpack(act_key).map_err(|e| {
                        RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                            "activation key: {e:?}"
                        )))
                    })?;
                let Some((generation, record)) =
                    get_stamped::<ActivationRecord>(tx, act_key, false)?
                else {
                    continue;
                };
                let owner = get_stamped::<NodeRecord>(tx, &keys::node(&record.node_id), false)?;
                let lease = owner.as_ref().map(|(s, r)| lease_of(*s, r));
                if !fencing::collectable(
                    generation.version(),
                    record.node_epoch,
                    lease.as_ref(),
                    now,
                    idle,
                    &settings,
                ) {
                    continue;
                }
                let state = keys::state_prefix(&actor_type, &key);
                let stores_nothing = tx
                    .get_range(&RangeOptions::between(state.clone(), prefix_end(&state)).limit(1))?
                    .is_empty();
                if !stores_nothing {
                    continue;
                }
                tx.clear(act_key)?;
                tx.clear(&keys::last_commit(&actor_type, &key))?;
                deleted += 1;
            }
            Ok(deleted)
        })?;
        Ok(committed.value)
    }
}
