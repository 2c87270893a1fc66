//! Actor state: fenced reads and fenced commits. Both run in one transaction with the check that
//! the activation record still names the presenting node, epoch and generation, and that node's
//! lease is valid; a failed check writes nothing. A commit also keeps the actor's stored bytes
//! (`usage.rs`) and is refused, writing nothing, if they would grow past the quota.

use latchkey_store::{RangeOptions, Transaction, prefix_end};
use latchkey_wire::node::{
    CommitRequest, CommitResponse, Fence, ListOptions, ReadOp, ReadStateRequest, ReadStateResponse,
    StateWrite,
};

use super::Registry;
use super::nodes::lease_of;
use crate::error::RegistryError;
use crate::fencing::{self, Placement};
use crate::keys;
use crate::records::{ActivationRecord, NodeRecord, get_stamped};

use latchkey_wire::limits::MAX_LIST;

impl Registry {
    /// Fails unless `node_id` holds the activation the fence names, right now.
    pub(super) fn check_fence(
        &self,
        tx: &mut dyn Transaction,
        node_id: &str,
        fence: &Fence,
        now: u64,
    ) -> Result<(), RegistryError> {
        let act_key = keys::activation(&fence.actor_type, &fence.key);
        let record = get_stamped::<ActivationRecord>(tx, &act_key, false)?;
        // The node record is read without a conflict: a heartbeat landing after this read is
        // ordered after this transaction, which is harmless, and commits do not retry on every
        // heartbeat. (A re-placement rewrites the activation record, which is a conflicting read.)
        let node = get_stamped::<NodeRecord>(tx, &keys::node(node_id), true)?;
        let lease = node.as_ref().map(|(s, r)| lease_of(*s, r));
        let placement = record.as_ref().map(|(generation, r)| Placement {
            node_id: &r.node_id,
            node_epoch: r.node_epoch,
            generation: generation.to_bytes(),
        });
        fencing::check_fence(
            placement.as_ref(),
            node_id,
            fence.node_epoch,
            &fence.generation.0,
            lease.as_ref(),
            now,
            self.settings(),
        )?;
        Ok(())
    }

    /// Fails unless `node_id` holds the activation `fence` names (for minting its self-token).
    pub fn check_activation(&self, node_id: &str, fence: &Fence) -> Result<(), RegistryError> {
        self.run(|tx| {
            let now = tx.read_version()?;
            self.check_fence(tx, node_id, fence, now)
        })?;
        Ok(())
    }

    /// Reads an actor's state on behalf of its activation.
    pub fn read_state(
        &self,
        node_id: &str,
        request: &ReadStateRequest,
    ) -> Result<ReadStateResponse, RegistryError> {
        let prefix = keys::state_prefix(&request.fence.actor_type, &request.fence.key);
        if let ReadOp::Get(user_keys) = &request.op {
            for k in user_keys {
                self.check_state_key(k)?;
            }
        }
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            self.check_fence(tx, node_id, &request.fence, now)?;
            match &request.op {
                ReadOp::Get(user_keys) => {
                    let mut values = Vec::with_capacity(user_keys.len());
                    for k in user_keys {
                        values.push(tx.get(&keys::state(&prefix, k))?);
                    }
                    Ok(ReadStateResponse::Values(values))
                }
                ReadOp::List(options) => {
                    let rows = tx.get_range(&list_range(&prefix, options))?;
                    Ok(ReadStateResponse::Entries(
                        rows.into_iter()
                            .map(|(k, v)| (k[prefix.len()..].to_vec(), v))
                            .collect(),
                    ))
                }
            }
        })?;
        Ok(committed.value)
    }

    /// Commits one call's writes and alarm changes for an activation, atomically and in order.
    pub fn commit_state(
        &self,
        node_id: &str,
        request: &CommitRequest,
    ) -> Result<CommitResponse, RegistryError> {
        self.commit_states(node_id, std::slice::from_ref(request))?
            .pop()
            .expect("one result per commit")
    }

    /// Commits several activations' calls (a node's batch) in one transaction: each commit is
    /// checked as if it came alone — its writes' limits, its fence, its idempotency — and those
    /// that pass are applied; one commit's failure does not fail the others. The outer error is
    /// a failure of the whole transaction (nothing applied).
    pub fn commit_states(
        &self,
        node_id: &str,
        requests: &[CommitRequest],
    ) -> Result<Vec<Result<CommitResponse, RegistryError>>, RegistryError> {
        /// What the transaction decided for one commit.
        enum Step {
            /// Applied in this transaction (read at this version).
            Apply(u64),
            /// A resend of a commit already applied, acknowledged at this read version.
            Applied(u64),
            /// Its writes break a limit (the error is in `invalid`).
            Invalid,
            Refused(RegistryError),
        }
        let mut invalid: Vec<Option<RegistryError>> = requests
            .iter()
            .map(|r| {
                self.check_writes(&r.writes)
                    .and_then(|()| super::alarms::check(&r.alarms))
                    .err()
            })
            .collect();
        let quota = self.limits().max_actor_storage_bytes;
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let mut steps = Vec::with_capacity(requests.len());
            for (request, invalid) in requests.iter().zip(&invalid) {
                if invalid.is_some() {
                    steps.push(Step::Invalid);
                    continue;
                }
                let fence = &request.fence;
                let last_key = keys::last_commit(&fence.actor_type, &fence.key);
                // A resend of a commit that already applied (its answer was lost) is
                // acknowledged without applying it again, even if the fence has moved on since.
                if let Some(last) = tx.get(&last_key)?
                    && last.len() == 18
                    && last[..10] == fence.generation.0
                    && u64::from_be_bytes(last[10..].try_into().expect("8 bytes")) >= request.seq
                {
                    steps.push(Step::Applied(now));
                    continue;
                }
                match self.check_fence(tx, node_id, fence, now) {
                    Ok(()) => {}
                    // This activation is stale; the others may not be.
                    Err(e @ RegistryError::Fenced(_)) => {
                        steps.push(Step::Refused(e));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                // Too many alarms, or over its storage quota: refused alone, before anything of
                // it is written.
                let actor = (fence.actor_type.as_str(), fence.key.as_str());
                let alarms = match super::alarms::plan_changes(tx, actor, &request.alarms) {
                    Ok(planned) => planned,
                    Err(e @ RegistryError::QuotaExceeded(_)) => {
                        steps.push(Step::Refused(e));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match super::usage::meter(tx, actor, &request.writes, quota) {
                    Ok(()) => {}
                    Err(e @ RegistryError::QuotaExceeded(_)) => {
                        steps.push(Step::Refused(e));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                let mut last = fence.generation.0.to_vec();
                last.extend_from_slice(&request.seq.to_be_bytes());
                tx.set(&last_key, &last)?;
                let prefix = keys::state_prefix(&fence.actor_type, &fence.key);
                apply_writes(tx, &prefix, &request.writes)?;
                alarms.write(tx, actor)?;
                steps.push(Step::Apply(now));
            }
            Ok(steps)
        })?;
        let version = committed.versionstamp.map(|s| s.version());
        Ok(committed
            .value
            .into_iter()
            .zip(invalid.iter_mut())
            .map(|(step, invalid)| match step {
                // The commit's version, as `commit_state` always answered (the read version if
                // the store gave no versionstamp).
                Step::Apply(at) => Ok(CommitResponse {
                    version: version.unwrap_or(at),
                }),
                Step::Applied(at) => Ok(CommitResponse { version: at }),
                Step::Refused(e) => Err(e),
                Step::Invalid => Err(invalid.take().expect("an invalid commit has its error")),
            })
            .collect())
    }

    fn check_state_key(&self, key: &[u8]) -> Result<(), RegistryError> {
        let max = self.limits().max_state_key_bytes;
        if key.len() > max {
            return Err(RegistryError::TooLarge(format!(
                "storage key is {} bytes; the limit is {max}",
                key.len()
            )));
        }
        Ok(())
    }

    pub(super) fn check_writes(&self, writes: &[StateWrite]) -> Result<(), RegistryError> {
        let limits = self.limits();
        if writes.len() > limits.max_commit_writes {
            return Err(RegistryError::TooLarge(format!(
                "a call wrote {} keys; the limit is {}",
                writes.len(),
                limits.max_commit_writes
            )));
        }
        let mut total = 0;
        for w in writes {
            match w {
                StateWrite::Put(k, v) => {
                    self.check_state_key(k)?;
                    if v.len() > limits.max_state_value_bytes {
                        return Err(RegistryError::TooLarge(format!(
                            "storage value is {} bytes; the limit is {}",
                            v.len(),
                            limits.max_state_value_bytes
                        )));
                    }
                    total += k.len() + v.len();
                }
                StateWrite::Delete(k) => {
                    self.check_state_key(k)?;
                    total += k.len();
                }
                StateWrite::DeleteAll => {}
            }
        }
        if total > limits.max_commit_bytes {
            return Err(RegistryError::TooLarge(format!(
                "a call wrote {total} bytes; the limit is {}",
                limits.max_commit_bytes
            )));
        }
        Ok(())
    }
}

/// Applies an actor's writes, in order, to its state keys.
pub(super) fn apply_writes(
    tx: &mut dyn Transaction,
    prefix: &[u8],
    writes: &[StateWrite],
) -> Result<(), RegistryError> {
    for write in writes {
        match write {
            StateWrite::Put(k, v) => tx.set(&keys::state(prefix, k), v)?,
            StateWrite::Delete(k) => tx.clear(&keys::state(prefix, k))?,
            StateWrite::DeleteAll => tx.clear_range(prefix, &prefix_end(prefix))?,
        }
    }
    Ok(())
}

/// The store range for an actor's `list`: keys with `prefix`, at or after `start`, before `end`.
fn list_range(state_prefix: &[u8], options: &ListOptions) -> RangeOptions {
    let within = |user: &[u8]| keys::state(state_prefix, user);
    let mut begin = within(options.prefix.as_deref().unwrap_or_default());
    let mut end = match &options.prefix {
        Some(p) => prefix_end(&within(p)),
        None => prefix_end(state_prefix),
    };
    if let Some(start) = &options.start {
        begin = begin.max(within(start));
    }
    if let Some(e) = &options.end {
        end = end.min(within(e));
    }
    let mut range = RangeOptions::between(begin, end)
        .limit(options.limit.unwrap_or(MAX_LIST).min(MAX_LIST) as usize);
    range.reverse = options.reverse;
    range
}
