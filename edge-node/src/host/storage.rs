//! The `storage` host capability: reads through the activation's cache (misses go to the control
//! plane as fenced reads), writes into the call's buffer (committed when the call returns), and
//! reads see the call's own writes. Limits are checked as the guest writes.

use latchkey_wire::ErrorCode;
use latchkey_wire::limits::{
    MAX_COMMIT_BYTES, MAX_COMMIT_WRITES, MAX_LIST, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES,
};
use latchkey_wire::node::{ListOptions as WireList, ReadOp, ReadStateRequest, ReadStateResponse};

use super::{HostState, Poison};
use crate::runtime::bindings::latchkey::actor::storage::{Host, ListOptions, StorageError};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn check_key(key: &[u8]) -> Result<(), StorageError> {
    if key.len() > MAX_STATE_KEY_BYTES {
        return Err(StorageError::TooLarge(format!(
            "storage key is {} bytes; the limit is {MAX_STATE_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

impl HostState {
    /// Reads from the control plane; a fenced or failed read poisons the call.
    async fn fetch(&mut self, op: ReadOp) -> Result<ReadStateResponse, StorageError> {
        let request = ReadStateRequest {
            fence: self.actor.fence.clone(),
            op,
        };
        match self.actor.hosting.cp.read_state(&request).await {
            Ok(response) => Ok(response),
            Err(e) => {
                let reason = format!("reading storage failed: {e}");
                let fenced = e.code() == Some(ErrorCode::Fenced);
                let error = if fenced {
                    StorageError::Fenced(reason.clone())
                } else {
                    StorageError::Unavailable(reason.clone())
                };
                self.actor.poison = Some(Poison { reason, fenced });
                Err(error)
            }
        }
    }

    /// Values of `keys`, from the call's writes, the cache, or one control-plane read.
    async fn read_keys(
        &mut self,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        for k in &keys {
            check_key(k)?;
        }
        let mut out: Vec<Option<Option<Vec<u8>>>> = keys
            .iter()
            .map(|k| {
                self.actor
                    .writes
                    .lookup(k)
                    .or_else(|| self.actor.cache.get(k))
            })
            .collect();
        let missing: Vec<Vec<u8>> = keys
            .iter()
            .zip(&out)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() {
            let ReadStateResponse::Values(values) =
                self.fetch(ReadOp::Get(missing.clone())).await?
            else {
                return Err(StorageError::Unavailable(
                    "unexpected answer to a read".into(),
                ));
            };
            let mut fetched = missing.into_iter().zip(values);
            for slot in out.iter_mut().filter(|v| v.is_none()) {
                if let Some((k, v)) = fetched.next() {
                    self.actor.cache.insert(k, v.clone());
                    *slot = Some(v);
                }
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    fn buffer(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), StorageError> {
        check_key(&key)?;
        if let Some(v) = &value
            && v.len() > MAX_STATE_VALUE_BYTES
        {
            return Err(StorageError::TooLarge(format!(
                "storage value is {} bytes; the limit is {MAX_STATE_VALUE_BYTES}",
                v.len()
            )));
        }
        let writes = &mut self.actor.writes;
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        if writes.bytes + size > MAX_COMMIT_BYTES {
            return Err(StorageError::TooLarge(format!(
                "a call may write at most {MAX_COMMIT_BYTES} bytes"
            )));
        }
        if !writes.keys.contains_key(&key) && writes.keys.len() >= MAX_COMMIT_WRITES {
            return Err(StorageError::TooLarge(format!(
                "a call may write at most {MAX_COMMIT_WRITES} keys"
            )));
        }
        writes.bytes += size;
        writes.keys.insert(key, value);
        Ok(())
    }
}

/// Merges the call's buffered writes into entries listed from the control plane.
fn merge(stored: Entries, host: &HostState, options: &ListOptions, limit: usize) -> Entries {
    let in_range = |k: &[u8]| {
        options.prefix.as_deref().is_none_or(|p| k.starts_with(p))
            && options.start.as_deref().is_none_or(|s| k >= s)
            && options.end.as_deref().is_none_or(|e| k < e)
    };
    let writes = &host.actor.writes;
    let mut merged: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = if writes.cleared {
        Default::default()
    } else {
        stored.into_iter().collect()
    };
    for (k, v) in writes.keys.iter().filter(|(k, _)| in_range(k)) {
        match v {
            Some(v) => merged.insert(k.clone(), v.clone()),
            None => merged.remove(k),
        };
    }
    let all = merged.into_iter();
    if options.reverse {
        all.rev().take(limit).collect()
    } else {
        all.take(limit).collect()
    }
}

impl Host for HostState {
    async fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read_keys(vec![key]).await?.pop().flatten())
    }

    async fn get_many(&mut self, keys: Vec<Vec<u8>>) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        self.read_keys(keys).await
    }

    async fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StorageError> {
        self.buffer(key, Some(value))
    }

    async fn put_many(&mut self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StorageError> {
        for (k, v) in entries {
            self.buffer(k, Some(v))?;
        }
        Ok(())
    }

    async fn delete(&mut self, key: Vec<u8>) -> Result<bool, StorageError> {
        let existed = self
            .read_keys(vec![key.clone()])
            .await?
            .pop()
            .flatten()
            .is_some();
        self.buffer(key, None)?;
        Ok(existed)
    }

    async fn delete_all(&mut self) -> Result<(), StorageError> {
        let writes = &mut self.actor.writes;
        writes.cleared = true;
        writes.keys.clear();
        writes.bytes = 0;
        Ok(())
    }

    async fn list(&mut self, options: ListOptions) -> Result<Entries, StorageError> {
        let limit = options.limit.unwrap_or(MAX_LIST).min(MAX_LIST) as usize;
        let stored = if self.actor.writes.cleared {
            Vec::new()
        } else {
            // Buffered deletes may hide stored entries: ask for enough to fill the page anyway.
            let hidden = self
                .actor
                .writes
                .keys
                .values()
                .filter(|v| v.is_none())
                .count();
            let wire = WireList {
                prefix: options.prefix.clone(),
                start: options.start.clone(),
                end: options.end.clone(),
                limit: Some((limit + hidden).min(MAX_LIST as usize + hidden) as u32),
                reverse: options.reverse,
            };
            match self.fetch(ReadOp::List(wire)).await? {
                ReadStateResponse::Entries(entries) => entries,
                ReadStateResponse::Values(_) => {
                    return Err(StorageError::Unavailable(
                        "unexpected answer to a list".into(),
                    ));
                }
            }
        };
        Ok(merge(stored, self, &options, limit))
    }
}
