//! What nodes follow: the change feed (deployment changes, revocations, trusted-key changes, in
//! commit order under versionstamped keys), the revocation list, issuer key records, and the
//! snapshot a node starts from.

use latchkey_store::{RangeOptions, StoreError, Transaction, Versionstamp};
use latchkey_wire::admin::{KeyInfo, RevocationInfo};
use latchkey_wire::node::{Changes, Cursor, Event, SyncSnapshot};

use super::Registry;
use super::deployments::read_deployments;
use crate::error::RegistryError;
use crate::keys;
use crate::records::{KeyRecord, KeyState, RevocationRecord, get_json, put_json};

fn corrupt(what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Store(StoreError::Corrupt(format!("{what}: {e}")))
}

/// Appends an event to the feed, at this transaction's versionstamp.
pub(crate) fn append_event(tx: &mut dyn Transaction, event: &Event) -> Result<(), RegistryError> {
    let (key, offset) = keys::feed_event();
    let body = serde_json::to_vec(event).expect("events serialise");
    Ok(tx.set_versionstamped_key(&key, offset, &body)?)
}

fn parse_cursor(cursor: &str) -> Result<Option<[u8; 10]>, RegistryError> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let mut b = [0u8; 10];
    hex::decode_to_slice(cursor, &mut b).map_err(|_| {
        RegistryError::BadRequest(format!(
            "a feed cursor is 20 hexadecimal digits, got `{cursor}`"
        ))
    })?;
    Ok(Some(b))
}

/// The cursor of the newest event in the feed ("" if it is empty).
fn feed_head(tx: &mut dyn Transaction) -> Result<Cursor, RegistryError> {
    let prefix = keys::feed_prefix();
    let last = tx.get_range(&RangeOptions::prefix(&prefix).reverse().limit(1))?;
    Ok(last
        .first()
        .map(|(k, _)| hex::encode(&k[prefix.len()..]))
        .unwrap_or_default())
}

fn read_revocations(tx: &mut dyn Transaction) -> Result<Vec<RevocationInfo>, RegistryError> {
    tx.get_range(&keys::revocations())?
        .into_iter()
        .map(|(k, v)| {
            let (_, _, token_id): (String, String, String) = foundationdb_tuple::unpack(&k)
                .map_err(|e| corrupt("revocation key", format!("{e:?}")))?;
            let record: RevocationRecord =
                serde_json::from_slice(&v).map_err(|e| corrupt("revocation", e))?;
            Ok(RevocationInfo {
                token_id,
                revoked_at: record.revoked_at,
                reason: record.reason,
            })
        })
        .collect()
}

fn read_keys(tx: &mut dyn Transaction) -> Result<Vec<KeyInfo>, RegistryError> {
    tx.get_range(&keys::issuers())?
        .into_iter()
        .map(|(k, v)| {
            let (_, _, key_id): (String, String, String) = foundationdb_tuple::unpack(&k)
                .map_err(|e| corrupt("issuer key", format!("{e:?}")))?;
            let record: KeyRecord =
                serde_json::from_slice(&v).map_err(|e| corrupt("issuer record", e))?;
            Ok(KeyInfo {
                key_id,
                public_key: record.public_key,
                state: record.state.as_str().into(),
                created_at: record.created_at,
            })
        })
        .collect()
}

/// The public keys verifiers should trust: every key not retired.
fn trusted(keys: &[KeyInfo]) -> Vec<String> {
    keys.iter()
        .filter(|k| k.state != KeyState::Retired.as_str())
        .map(|k| k.public_key.clone())
        .collect()
}

impl Registry {
    /// Everything a node follows, consistently, with the cursor to follow changes from.
    pub fn sync(&self) -> Result<SyncSnapshot, RegistryError> {
        let committed = self.run(|tx| {
            Ok(SyncSnapshot {
                deployments: read_deployments(tx)?,
                revocations: read_revocations(tx)?,
                trusted_keys: trusted(&read_keys(tx)?),
                cursor: feed_head(tx)?,
            })
        })?;
        Ok(committed.value)
    }

    /// Feed events after `cursor` (at most `limit`). `Gone` if events after the cursor were
    /// trimmed: the follower must resynchronise.
    pub fn changes(&self, cursor: &str, limit: usize) -> Result<Changes, RegistryError> {
        let after = parse_cursor(cursor)?;
        let committed = self.run(|tx| {
            let floor = tx.get(&keys::feed_floor())?;
            if let Some(floor) = floor.as_deref().and_then(Versionstamp::read)
                && after.is_none_or(|a| a < floor.to_bytes())
            {
                return Err(RegistryError::Gone(format!(
                    "the change feed no longer holds events after cursor `{cursor}`; resynchronise"
                )));
            }
            let prefix_len = keys::feed_prefix().len();
            let rows = tx.get_range(&keys::feed_after(after).limit(limit))?;
            let mut events = Vec::with_capacity(rows.len());
            let mut next = cursor.to_owned();
            for (k, v) in rows {
                events.push(
                    serde_json::from_slice::<Event>(&v).map_err(|e| corrupt("feed event", e))?,
                );
                next = hex::encode(&k[prefix_len..]);
            }
            Ok(Changes {
                events,
                cursor: next,
            })
        })?;
        Ok(committed.value)
    }

    /// Deletes feed events committed before `version`; returns how many.
    pub fn trim_feed(&self, version: u64) -> Result<usize, RegistryError> {
        let committed = self.run(|tx| {
            let prefix = keys::feed_prefix();
            let mut end = prefix.clone();
            end.extend_from_slice(&Versionstamp::new(version, 0).to_bytes());
            let old = tx.get_range(
                &RangeOptions::between(prefix.clone(), end.clone())
                    .reverse()
                    .limit(1),
            )?;
            let Some((newest_old, _)) = old.first() else {
                return Ok(0);
            };
            let count = tx
                .get_range(&RangeOptions::between(prefix.clone(), end.clone()))?
                .len();
            tx.set(&keys::feed_floor(), &newest_old[prefix.len()..])?;
            tx.clear_range(&prefix, &end)?;
            Ok(count)
        })?;
        Ok(committed.value)
    }

    /// Revokes a token id (idempotent: revoking twice keeps the first record).
    pub fn revoke(
        &self,
        token_id: &str,
        reason: Option<&str>,
    ) -> Result<RevocationInfo, RegistryError> {
        if token_id.len() != 32 || hex::decode(token_id).is_err() {
            return Err(RegistryError::BadRequest(format!(
                "a token id is 32 hexadecimal digits, got `{token_id}`"
            )));
        }
        let committed = self.run(|tx| revoke_in(tx, token_id, reason))?;
        Ok(RevocationInfo {
            token_id: token_id.to_owned(),
            revoked_at: committed.value.revoked_at,
            reason: committed.value.reason,
        })
    }

    /// One revocation, if `token_id` is revoked.
    pub fn revocation(&self, token_id: &str) -> Result<RevocationInfo, RegistryError> {
        let record = self
            .run(|tx| get_json::<RevocationRecord>(tx, &keys::revoked(token_id)))?
            .value;
        record
            .map(|r| RevocationInfo {
                token_id: token_id.to_owned(),
                revoked_at: r.revoked_at,
                reason: r.reason,
            })
            .ok_or_else(|| RegistryError::NotFound(format!("token {token_id} is not revoked")))
    }

    /// Every revoked token id.
    pub fn revocations(&self) -> Result<Vec<RevocationInfo>, RegistryError> {
        Ok(self.run(|tx| read_revocations(tx))?.value)
    }

    /// Every issuer key record.
    pub fn issuer_keys(&self) -> Result<Vec<KeyInfo>, RegistryError> {
        Ok(self.run(|tx| read_keys(tx))?.value)
    }

    /// Records an issuer key as `state`; making a key active demotes the previous active key to
    /// trusted. Announces the new trusted set on the feed.
    pub fn set_issuer_key(
        &self,
        key_id: &str,
        public_key: &str,
        state: KeyState,
    ) -> Result<Vec<KeyInfo>, RegistryError> {
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let mut all = read_keys(tx)?;
            if state == KeyState::Active {
                for k in all
                    .iter_mut()
                    .filter(|k| k.state == KeyState::Active.as_str() && k.key_id != key_id)
                {
                    let record = KeyRecord {
                        public_key: k.public_key.clone(),
                        state: KeyState::Trusted,
                        created_at: k.created_at,
                    };
                    put_json(tx, &keys::issuer(&k.key_id), &record)?;
                    k.state = KeyState::Trusted.as_str().into();
                }
            }
            let created_at = all
                .iter()
                .find(|k| k.key_id == key_id)
                .map_or(now, |k| k.created_at);
            let record = KeyRecord {
                public_key: public_key.to_owned(),
                state,
                created_at,
            };
            put_json(tx, &keys::issuer(key_id), &record)?;
            all.retain(|k| k.key_id != key_id);
            all.push(KeyInfo {
                key_id: key_id.to_owned(),
                public_key: public_key.to_owned(),
                state: state.as_str().into(),
                created_at,
            });
            append_event(tx, &Event::TrustedKeys(trusted(&all)))?;
            Ok(all)
        })?;
        Ok(committed.value)
    }
}

/// Revokes `token_id` inside `tx` and announces it on the feed (idempotent: an existing record
/// is kept and returned).
pub(super) fn revoke_in(
    tx: &mut dyn Transaction,
    token_id: &str,
    reason: Option<&str>,
) -> Result<RevocationRecord, RegistryError> {
    let key = keys::revoked(token_id);
    if let Some(existing) = get_json::<RevocationRecord>(tx, &key)? {
        return Ok(existing);
    }
    let record = RevocationRecord {
        revoked_at: tx.read_version()?,
        reason: reason.map(str::to_owned),
    };
    put_json(tx, &key, &record)?;
    append_event(
        tx,
        &Event::Revocation(RevocationInfo {
            token_id: token_id.to_owned(),
            revoked_at: record.revoked_at,
            reason: record.reason.clone(),
        }),
    )?;
    Ok(record)
}
