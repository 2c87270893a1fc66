//! Alarms in the store: an actor's alarms by name, a count per actor, and one due index over all
//! actors ordered by due time, so finding what is due reads only what is due, however many alarms
//! are pending. Changes are applied inside a commit's transaction ([`apply`]): a commit that is
//! refused or fails changes no alarm.

use std::collections::HashMap;

use latchkey_store::{RangeOptions, StoreError, Transaction};
use latchkey_wire::alarm::{self, Alarm, AlarmLimit, AlarmWrite, DueAlarm, MAX_ALARMS_PER_ACTOR};

use super::Registry;
use crate::error::RegistryError;
use crate::keys;

fn corrupt(what: &str, e: impl std::fmt::Debug) -> RegistryError {
    RegistryError::Store(StoreError::Corrupt(format!("{what}: {e:?}")))
}

fn limit_error(e: &AlarmLimit) -> RegistryError {
    match e {
        AlarmLimit::TooMany(_) => RegistryError::QuotaExceeded(e.to_string()),
        _ => RegistryError::TooLarge(e.to_string()),
    }
}

/// Checks a commit's alarm changes on their own (before its transaction).
pub(super) fn check(writes: &[AlarmWrite]) -> Result<(), RegistryError> {
    alarm::check_writes(writes).map_err(|e| limit_error(&e))
}

fn read_alarm(tx: &mut dyn Transaction, key: &[u8]) -> Result<Option<Alarm>, RegistryError> {
    tx.get(key)?
        .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt("alarm record", e)))
        .transpose()
}

fn read_count(tx: &mut dyn Transaction, key: &[u8]) -> Result<usize, RegistryError> {
    match tx.get(key)? {
        None => Ok(0),
        Some(v) => {
            let raw: [u8; 4] = v
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("alarm count", format!("{} bytes, not 4", v.len())))?;
            Ok(u32::from_be_bytes(raw) as usize)
        }
    }
}

/// One alarm a commit touches: its record before the commit and after it (`None`: absent).
#[derive(Debug)]
struct Change {
    name: String,
    before: Option<Alarm>,
    after: Option<Alarm>,
}

/// What the actor's alarms will be once `writes` apply, one [`Change`] per alarm touched (the
/// last write of a name wins).
fn plan(
    tx: &mut dyn Transaction,
    actor: (&str, &str),
    writes: &[AlarmWrite],
) -> Result<Vec<Change>, RegistryError> {
    let mut changes: Vec<Change> = Vec::new();
    // Where each name's change is: a call may touch up to 1,000 alarms.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for write in writes {
        let name = write.name();
        let at = match index.get(name) {
            Some(&i) => i,
            None => {
                let before = read_alarm(tx, &keys::alarm(actor.0, actor.1, name))?;
                changes.push(Change {
                    name: name.to_owned(),
                    after: before.clone(),
                    before,
                });
                index.insert(name, changes.len() - 1);
                changes.len() - 1
            }
        };
        changes[at].after = match write {
            AlarmWrite::Set {
                name,
                at_ms,
                payload,
            } => Some(Alarm {
                name: name.clone(),
                due_ms: *at_ms,
                payload: payload.clone(),
                attempts: 0,
            }),
            AlarmWrite::Cancel(_) => None,
        };
    }
    Ok(changes)
}

/// The actor's alarm count after `changes`, refused past [`MAX_ALARMS_PER_ACTOR`] (an actor
/// already over it may still cancel).
fn count_after(before: usize, changes: &[Change]) -> Result<usize, AlarmLimit> {
    let added = changes
        .iter()
        .filter(|c| c.before.is_none() && c.after.is_some())
        .count();
    let removed = changes
        .iter()
        .filter(|c| c.before.is_some() && c.after.is_none())
        .count();
    let after = (before + added).saturating_sub(removed);
    if after > MAX_ALARMS_PER_ACTOR && added > removed {
        return Err(AlarmLimit::TooMany(after));
    }
    Ok(after)
}

/// One actor's alarm changes, checked in a commit's transaction and not yet written.
pub(super) struct Planned {
    changes: Vec<Change>,
    before: usize,
    after: usize,
}

/// In a commit's transaction, before anything of the commit is written: reads what `writes`
/// change and refuses them all when the actor would hold too many alarms.
pub(super) fn plan_changes(
    tx: &mut dyn Transaction,
    actor: (&str, &str),
    writes: &[AlarmWrite],
) -> Result<Planned, RegistryError> {
    let (before, changes) = if writes.is_empty() {
        (0, Vec::new())
    } else {
        (
            read_count(tx, &keys::alarm_count(actor.0, actor.1))?,
            plan(tx, actor, writes)?,
        )
    };
    let after = count_after(before, &changes).map_err(|e| limit_error(&e))?;
    Ok(Planned {
        changes,
        before,
        after,
    })
}

impl Planned {
    /// Writes the changes of `actor`'s alarms: the records, the due index and the count.
    pub(super) fn write(
        self,
        tx: &mut dyn Transaction,
        actor: (&str, &str),
    ) -> Result<(), RegistryError> {
        if self.changes.is_empty() {
            return Ok(());
        }
        let (t, k) = actor;
        for change in &self.changes {
            let name = change.name.as_str();
            if let Some(old) = &change.before {
                tx.clear(&keys::due(old.due_ms, t, k, name))?;
            }
            let key = keys::alarm(t, k, name);
            match &change.after {
                Some(alarm) => {
                    let record = serde_json::to_vec(alarm).expect("an alarm serializes");
                    tx.set(&key, &record)?;
                    tx.set(&keys::due(alarm.due_ms, t, k, name), &[])?;
                }
                None if change.before.is_some() => tx.clear(&key)?,
                None => {}
            }
        }
        let count_key = keys::alarm_count(t, k);
        if self.after == 0 {
            tx.clear(&count_key)?;
        } else if self.after != self.before {
            let count = u32::try_from(self.after).expect("bounded by the limit");
            tx.set(&count_key, &count.to_be_bytes())?;
        }
        Ok(())
    }
}

/// The actor of a due-index key, and the alarm's name.
fn due_entry(key: &[u8]) -> Result<(String, String, String), RegistryError> {
    let (_, _, _, actor_type, actor_key, name): (String, String, u64, String, String, String) =
        foundationdb_tuple::unpack(key).map_err(|e| corrupt("due index key", e))?;
    Ok((actor_type, actor_key, name))
}

impl Registry {
    /// An actor's alarms, by name.
    pub fn alarms(&self, actor_type: &str, key: &str) -> Result<Vec<Alarm>, RegistryError> {
        let read = self.run(|tx| {
            tx.get_range(&keys::alarms_of(actor_type, key))?
                .into_iter()
                .map(|(_, v)| serde_json::from_slice(&v).map_err(|e| corrupt("alarm record", e)))
                .collect()
        })?;
        Ok(read.value)
    }

    /// Alarms due at or before `now_ms` (Unix milliseconds), earliest first, at most `limit`.
    /// Reads the due index from its start up to `now_ms`, so the cost is that of what is due,
    /// not of what is pending.
    pub fn due_alarms(&self, now_ms: u64, limit: usize) -> Result<Vec<DueAlarm>, RegistryError> {
        let read = self.run(|tx| {
            let entries = tx.get_range(&RangeOptions {
                limit: Some(limit),
                ..keys::due_until(now_ms)
            })?;
            let mut due = Vec::with_capacity(entries.len());
            for (k, _) in entries {
                let (actor_type, key, name) = due_entry(&k)?;
                let record = read_alarm(tx, &keys::alarm(&actor_type, &key, &name))?
                    .ok_or_else(|| corrupt("due index", format!("no alarm {name:?}")))?;
                due.push(DueAlarm {
                    actor_type,
                    key,
                    alarm: record,
                });
            }
            Ok(due)
        })?;
        Ok(read.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(name: &str) -> Option<Alarm> {
        Some(Alarm {
            name: name.into(),
            due_ms: 1,
            payload: Vec::new(),
            attempts: 0,
        })
    }

    fn change(name: &str, before: Option<Alarm>, after: Option<Alarm>) -> Change {
        Change {
            name: name.into(),
            before,
            after,
        }
    }

    #[test]
    fn the_count_after_adds_new_names_and_drops_cancelled_ones() {
        let changes = vec![
            change("new", None, alarm("new")),
            change("moved", alarm("moved"), alarm("moved")),
            change("gone", alarm("gone"), None),
            change("never", None, None),
        ];
        assert_eq!(count_after(5, &changes), Ok(5));
        let add = vec![change("a", None, alarm("a"))];
        assert_eq!(
            count_after(MAX_ALARMS_PER_ACTOR - 1, &add),
            Ok(MAX_ALARMS_PER_ACTOR)
        );
        assert_eq!(
            count_after(MAX_ALARMS_PER_ACTOR, &add),
            Err(AlarmLimit::TooMany(MAX_ALARMS_PER_ACTOR + 1))
        );
        // Over the limit already (the limit was lowered): cancelling is still allowed.
        let cancel = vec![change("a", alarm("a"), None)];
        assert_eq!(
            count_after(MAX_ALARMS_PER_ACTOR + 5, &cancel),
            Ok(MAX_ALARMS_PER_ACTOR + 4)
        );
    }
}
