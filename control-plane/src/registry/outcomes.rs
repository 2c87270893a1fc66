//! Outcomes nodes report per version, in one-second buckets, and the automatic rollback they can
//! trigger: recorded and decided in the same transaction, with the evidence in the history.

use std::collections::{BTreeMap, BTreeSet};

use latchkey_store::VERSIONS_PER_SECOND;
use latchkey_wire::admin::OutcomeCounts;
use latchkey_wire::node::{OutcomeAck, OutcomeReport};

use super::Registry;
use super::deployments::{DeployOp, DeploymentRecord, change_in};
use crate::error::RegistryError;
use crate::keys;
use crate::records::{get_json, put_json};
use crate::rollout;

/// Buckets older than this are deleted as reports arrive.
const RETAIN_SECS: u64 = 3600;

impl Registry {
    /// Adds a node's outcome counts and rolls back any actor type whose version on trial now
    /// breaks its rollback policy.
    pub fn record_outcomes(&self, report: &OutcomeReport) -> Result<OutcomeAck, RegistryError> {
        let committed = self.run(|tx| {
            let second = tx.read_version()? / VERSIONS_PER_SECOND;
            let mut merged: BTreeMap<(&str, &str), OutcomeCounts> = BTreeMap::new();
            for o in &report.outcomes {
                merged
                    .entry((&o.actor_type, &o.version))
                    .or_default()
                    .add(&o.counts);
            }
            let mut types = BTreeSet::new();
            for ((actor_type, version), counts) in &merged {
                let key = keys::outcome(actor_type, version, second);
                let mut stored = get_json::<OutcomeCounts>(tx, &key)?.unwrap_or_default();
                stored.add(counts);
                put_json(tx, &key, &stored)?;
                let old =
                    keys::outcomes(actor_type, version, 0, second.saturating_sub(RETAIN_SECS));
                tx.clear_range(&old.begin, &old.end)?;
                types.insert(*actor_type);
            }
            let mut rolled_back = Vec::new();
            for actor_type in types {
                let Some(record) = get_json::<DeploymentRecord>(tx, &keys::deployment(actor_type))?
                else {
                    continue;
                };
                let info = record.info(actor_type);
                let Some(version) = rollout::on_trial(&info) else {
                    continue;
                };
                let window = info.policy.window_secs.max(1);
                let from = (second + 1 - window.min(second + 1)).max(record.trial_since);
                let mut total = OutcomeCounts::default();
                let range = keys::outcomes(actor_type, version, from, second);
                for (_, v) in tx.get_range(&range)? {
                    let counts: OutcomeCounts = serde_json::from_slice(&v).map_err(|e| {
                        RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                            "outcome counts: {e}"
                        )))
                    })?;
                    total.add(&counts);
                }
                if let Some(evidence) = rollout::decide(&info.policy, version, &total) {
                    change_in(
                        tx,
                        actor_type,
                        &DeployOp::AutoRollback,
                        Some(&evidence.to_string()),
                    )?;
                    rolled_back.push(actor_type.to_owned());
                }
            }
            Ok(rolled_back)
        })?;
        Ok(OutcomeAck {
            rolled_back: committed.value,
        })
    }
}
