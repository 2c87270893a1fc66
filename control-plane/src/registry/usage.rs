//! Per-actor storage accounting: the bytes an actor stores (the sum over its entries of key
//! length plus value length) are kept in one record per actor, changed by every transaction
//! that writes the actor's state, and checked against the quota before anything is written.

use std::collections::HashMap;

use latchkey_store::{RangeOptions, Transaction, prefix_end};
use latchkey_wire::node::StateWrite;

use crate::error::RegistryError;
use crate::keys;

/// The size an entry counts for.
fn entry(key: &[u8], value_len: usize) -> u64 {
    (key.len() + value_len) as u64
}

/// An actor's stored bytes, and whether they are recorded. An actor with no record has either
/// stored nothing or was written before accounting began: its entries are counted here.
fn recorded(
    tx: &mut dyn Transaction,
    usage_key: &[u8],
    prefix: &[u8],
) -> Result<(u64, bool), RegistryError> {
    if let Some(bytes) = tx.get(usage_key)? {
        let raw: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
            RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                "usage record is {} bytes, not 8",
                bytes.len()
            )))
        })?;
        return Ok((u64::from_be_bytes(raw), true));
    }
    let rows = tx.get_range(&RangeOptions::between(prefix.to_vec(), prefix_end(prefix)))?;
    let counted = rows
        .iter()
        .map(|(k, v)| entry(&k[prefix.len()..], v.len()))
        .sum();
    Ok((counted, false))
}

/// Whether storing `after` bytes (from `before`) is within `limit`. Writes that do not grow an
/// actor's usage are always allowed, so an actor over its quota (the limit was lowered, or it
/// predates accounting) can still delete and shrink.
pub(crate) fn check_quota(
    before: u64,
    after: u64,
    limit: u64,
    actor: (&str, &str),
) -> Result<(), RegistryError> {
    if after > limit && after > before {
        return Err(RegistryError::QuotaExceeded(format!(
            "storage quota exceeded: actor {}/{} stores {before} bytes and this call's writes would make it {after}; the limit is {limit} bytes per actor (keys plus values); nothing of the call was committed",
            actor.0, actor.1
        )));
    }
    Ok(())
}

/// An actor's stored bytes before and after `writes` (in order), read in `tx` without writing.
fn usage_after(
    tx: &mut dyn Transaction,
    prefix: &[u8],
    before: u64,
    writes: &[StateWrite],
) -> Result<u64, RegistryError> {
    // Value lengths as this commit's earlier writes left them (`None`: deleted).
    let mut seen: HashMap<&[u8], Option<usize>> = HashMap::new();
    let mut cleared = false;
    let mut usage = i128::from(before);
    for write in writes {
        let key = match write {
            StateWrite::Put(k, _) | StateWrite::Delete(k) => k.as_slice(),
            StateWrite::DeleteAll => {
                seen.clear();
                cleared = true;
                usage = 0;
                continue;
            }
        };
        let old = match seen.get(key) {
            Some(len) => *len,
            None if cleared => None,
            None => tx.get(&keys::state(prefix, key))?.map(|v| v.len()),
        };
        usage -= old.map_or(0, |len| i128::from(entry(key, len)));
        let new = match write {
            StateWrite::Put(_, v) => Some(v.len()),
            _ => None,
        };
        usage += new.map_or(0, |len| i128::from(entry(key, len)));
        seen.insert(key, new);
    }
    // Never negative: `before` counted every entry these writes can remove.
    Ok(u64::try_from(usage.max(0)).unwrap_or(u64::MAX))
}

/// Checks that `writes` keep actor `(actor_type, key)` within `limit` stored bytes and, if so,
/// records its new usage; on refusal nothing is written. The caller applies the writes.
pub(crate) fn meter(
    tx: &mut dyn Transaction,
    actor: (&str, &str),
    writes: &[StateWrite],
    limit: u64,
) -> Result<(), RegistryError> {
    if writes.is_empty() {
        return Ok(());
    }
    let prefix = keys::state_prefix(actor.0, actor.1);
    let usage_key = keys::usage(actor.0, actor.1);
    let (before, present) = recorded(tx, &usage_key, &prefix)?;
    let after = usage_after(tx, &prefix, before, writes)?;
    check_quota(before, after, limit, actor)?;
    if after == 0 {
        if present {
            tx.clear(&usage_key)?;
        }
    } else if after != before || !present {
        tx.set(&usage_key, &after.to_be_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_past_the_limit_is_refused_naming_limit_and_usage() {
        assert!(check_quota(0, 100, 100, ("t", "k")).is_ok());
        let e = check_quota(90, 101, 100, ("t", "k")).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("limit is 100") && m.contains("stores 90") && m.contains("101"),
            "{m}"
        );
        assert!(matches!(e, RegistryError::QuotaExceeded(_)));
        assert!(!e.is_retryable());
        // Over the limit already: shrinking or staying is allowed.
        assert!(check_quota(200, 150, 100, ("t", "k")).is_ok());
        assert!(check_quota(200, 200, 100, ("t", "k")).is_ok());
    }
}
