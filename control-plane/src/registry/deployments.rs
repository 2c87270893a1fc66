//! Deployments: which module version each actor type runs. The transitions (deploy, canary,
//! promote, abort, rollback) are a pure function over the current record; the registry applies
//! them in a transaction that also appends the history entry and the feed event nodes follow.

use latchkey_wire::admin::{
    CanaryInfo, DeploymentDetail, DeploymentInfo, HistoryEntry, RollbackPolicy,
};
use latchkey_wire::node::Event;
use serde::{Deserialize, Serialize};

use super::Registry;
use super::feed::append_event;
use crate::error::RegistryError;
use crate::keys;
use crate::records::{get_json, put_json};

/// An actor type's deployment as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Version every key outside the canary runs.
    pub active: Option<String>,
    /// Version active before the last change of `active`.
    pub previous: Option<String>,
    /// Canary in progress.
    pub canary: Option<CanaryInfo>,
    /// Automatic rollback policy.
    pub policy: RollbackPolicy,
    /// Counts changes.
    pub revision: u64,
    /// Second (of the store's clock) since which the version on trial has been on trial: only
    /// outcomes from then on count towards an automatic rollback.
    #[serde(default)]
    pub trial_since: u64,
}

impl DeploymentRecord {
    /// The version actor `key` runs ([`DeploymentInfo::version_for`]: the canary's for keys in
    /// its buckets, else the active one).
    pub fn version_for(&self, actor_type: &str, key: &str) -> Option<String> {
        self.info(actor_type).version_for(key).map(str::to_owned)
    }

    /// The API view.
    pub fn info(&self, actor_type: &str) -> DeploymentInfo {
        DeploymentInfo {
            actor_type: actor_type.to_owned(),
            active: self.active.clone(),
            previous: self.previous.clone(),
            canary: self.canary.clone(),
            policy: self.policy,
            revision: self.revision,
        }
    }
}

/// A change to a deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum DeployOp {
    /// Make a version active for every key (ends nothing: fails during a canary).
    Deploy(String),
    /// Run a version on a share of keys (basis points).
    Canary(String, u32),
    /// Make the canary version active for every key.
    Promote,
    /// Drop the canary.
    Abort,
    /// Undo: drop a canary in progress, else return to the previous version.
    Rollback,
    /// A rollback decided by the control plane from reported outcomes.
    AutoRollback,
    /// Replace the rollback policy.
    SetPolicy(RollbackPolicy),
    /// Stop running the type: no active version, no canary, nothing to roll back to. Its
    /// activations end between calls and its keys are not placed until a version is deployed
    /// again; stored state is kept.
    Remove,
}

impl DeployOp {
    /// The name recorded in the history.
    pub fn action(&self) -> &'static str {
        match self {
            DeployOp::Deploy(_) => "deploy",
            DeployOp::Canary(..) => "canary",
            DeployOp::Promote => "promote",
            DeployOp::Abort => "abort",
            DeployOp::Rollback => "rollback",
            DeployOp::AutoRollback => "auto-rollback",
            DeployOp::SetPolicy(_) => "policy",
            DeployOp::Remove => "remove",
        }
    }

    /// The module version the operation names, if any.
    pub fn version(&self) -> Option<&str> {
        match self {
            DeployOp::Deploy(v) | DeployOp::Canary(v, _) => Some(v),
            _ => None,
        }
    }
}

/// The new record after `op`, or why `op` is not possible now. Pure.
pub fn apply(current: &DeploymentRecord, op: &DeployOp) -> Result<DeploymentRecord, RegistryError> {
    let mut next = current.clone();
    match op {
        DeployOp::Deploy(version) => {
            if let Some(c) = &current.canary {
                return Err(RegistryError::Conflict(format!(
                    "a canary of {} is in progress on {}% of keys; promote or abort it first",
                    c.version,
                    f64::from(c.basis_points) / 100.0
                )));
            }
            if current.active.as_deref() == Some(version) {
                return Ok(next); // already active: nothing to do
            }
            next.previous = current.active.clone();
            next.active = Some(version.clone());
        }
        DeployOp::Canary(version, basis_points) => {
            if current.active.is_none() {
                return Err(RegistryError::Conflict(
                    "nothing is deployed yet: deploy a version before starting a canary".into(),
                ));
            }
            if current.active.as_deref() == Some(version) {
                return Err(RegistryError::Conflict(format!(
                    "{version} is already the active version"
                )));
            }
            match &current.canary {
                Some(c) if c.version != *version => {
                    return Err(RegistryError::Conflict(format!(
                        "a canary of {} is in progress; promote or abort it first",
                        c.version
                    )));
                }
                _ => {}
            }
            if *basis_points > latchkey_wire::canary::BUCKETS {
                return Err(RegistryError::BadRequest(
                    "a canary covers 0 to 100% of keys".into(),
                ));
            }
            next.canary = Some(CanaryInfo {
                version: version.clone(),
                basis_points: *basis_points,
            });
        }
        DeployOp::Promote => {
            let c = current.canary.as_ref().ok_or_else(|| {
                RegistryError::Conflict("no canary in progress to promote".into())
            })?;
            next.previous = current.active.clone();
            next.active = Some(c.version.clone());
            next.canary = None;
        }
        DeployOp::Abort => {
            if current.canary.is_none() {
                return Err(RegistryError::Conflict(
                    "no canary in progress to abort".into(),
                ));
            }
            next.canary = None;
        }
        DeployOp::Rollback | DeployOp::AutoRollback => {
            if current.canary.is_some() {
                next.canary = None;
            } else {
                let previous = current.previous.clone().ok_or_else(|| {
                    RegistryError::Conflict("no previous version to roll back to".into())
                })?;
                next.active = Some(previous);
                next.previous = None;
            }
        }
        DeployOp::Remove => {
            if current.active.is_none() && current.canary.is_none() {
                return Err(RegistryError::NotFound(
                    "nothing is deployed to remove".into(),
                ));
            }
            next.active = None;
            next.previous = None;
            next.canary = None;
        }
        DeployOp::SetPolicy(policy) => {
            let ok = (0.0..=1.0).contains(&policy.max_error_rate)
                && policy.window_secs > 0
                && policy.min_calls > 0;
            if !ok {
                return Err(RegistryError::BadRequest(
                    "a rollback policy needs 0 <= max_error_rate <= 1, window_secs > 0 and min_calls > 0"
                        .into(),
                ));
            }
            next.policy = *policy;
        }
    }
    if next != *current {
        next.revision = current.revision + 1;
    }
    Ok(next)
}

impl Registry {
    /// Applies a deployment change, recording it in the history (with `reason`) and the feed.
    pub fn change_deployment(
        &self,
        actor_type: &str,
        op: &DeployOp,
        reason: Option<&str>,
    ) -> Result<DeploymentInfo, RegistryError> {
        self.change_deployment_as(actor_type, op, reason, false)
    }

    /// [`Registry::change_deployment`] for a token scoped to `actor_type` (`scoped`) or
    /// unscoped: a scoped token may deploy or canary only a module that belongs to that type
    /// (one uploaded for it); an unscoped token may deploy any module.
    pub fn change_deployment_as(
        &self,
        actor_type: &str,
        op: &DeployOp,
        reason: Option<&str>,
        scoped: bool,
    ) -> Result<DeploymentInfo, RegistryError> {
        self.check_name("actor type", actor_type)?;
        let committed = self.run(|tx| {
            if scoped && let Some(version) = op.version() {
                let record = get_json::<crate::records::ModuleRecord>(tx, &keys::module(version))?;
                if !record.is_some_and(|r| super::modules::reaches(&r, Some(actor_type))) {
                    return Err(super::modules::not_reached(version, Some(actor_type)));
                }
            }
            change_in(tx, actor_type, op, reason)
        })?;
        Ok(committed.value.info(actor_type))
    }

    /// An actor type's deployment and its newest `history` entries.
    pub fn deployment(
        &self,
        actor_type: &str,
        history: usize,
    ) -> Result<DeploymentDetail, RegistryError> {
        let committed = self.run(|tx| {
            let record = get_json::<DeploymentRecord>(tx, &keys::deployment(actor_type))?
                .ok_or_else(|| {
                    RegistryError::NotFound(format!("actor type `{actor_type}` has no deployment"))
                })?;
            let prefix = keys::history_prefix(actor_type);
            let rows = tx.get_range(
                &latchkey_store::RangeOptions::prefix(&prefix)
                    .reverse()
                    .limit(history),
            )?;
            let entries = rows
                .iter()
                .map(|(_, v)| {
                    serde_json::from_slice::<HistoryEntry>(v).map_err(|e| {
                        RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                            "history entry: {e}"
                        )))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DeploymentDetail {
                deployment: record.info(actor_type),
                history: entries,
            })
        })?;
        Ok(committed.value)
    }

    /// Every actor type's deployment.
    pub fn deployments(&self) -> Result<Vec<DeploymentInfo>, RegistryError> {
        Ok(self.run(|tx| read_deployments(tx))?.value)
    }
}

/// Applies a deployment change inside `tx`: the record, a history entry and a feed event.
pub(crate) fn change_in(
    tx: &mut dyn latchkey_store::Transaction,
    actor_type: &str,
    op: &DeployOp,
    reason: Option<&str>,
) -> Result<DeploymentRecord, RegistryError> {
    let now = tx.read_version()?;
    if let Some(version) = op.version()
        && tx.get(&keys::module(version))?.is_none()
    {
        return Err(RegistryError::NotFound(format!(
            "no module with content id {version}; upload it first"
        )));
    }
    let key = keys::deployment(actor_type);
    let current = get_json::<DeploymentRecord>(tx, &key)?.unwrap_or_default();
    let mut next = apply(&current, op)?;
    if next == current {
        return Ok(next);
    }
    if crate::rollout::on_trial(&next.info(actor_type))
        != crate::rollout::on_trial(&current.info(actor_type))
    {
        next.trial_since = now / latchkey_store::VERSIONS_PER_SECOND;
    }
    put_json(tx, &key, &next)?;
    let entry = HistoryEntry {
        at: now,
        action: op.action().into(),
        version: match op {
            DeployOp::Canary(v, _) => Some(v.clone()),
            _ => next.active.clone(),
        },
        from: current.active.clone(),
        reason: reason.map(str::to_owned),
    };
    let (history_key, offset) = keys::history_entry(actor_type);
    let body = serde_json::to_vec(&entry).expect("history entries serialise");
    tx.set_versionstamped_key(&history_key, offset, &body)?;
    append_event(tx, &Event::Deployment(next.info(actor_type)))?;
    Ok(next)
}

/// Every deployment, read in `tx`.
pub(crate) fn read_deployments(
    tx: &mut dyn latchkey_store::Transaction,
) -> Result<Vec<DeploymentInfo>, RegistryError> {
    tx.get_range(&keys::deployments())?
        .into_iter()
        .map(|(k, v)| {
            let (_, _, actor_type): (String, String, String) = foundationdb_tuple::unpack(&k)
                .map_err(|e| {
                    RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                        "deployment key: {e:?}"
                    )))
                })?;
            let record: DeploymentRecord = serde_json::from_slice(&v).map_err(|e| {
                RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                    "deployment: {e}"
                )))
            })?;
            Ok(record.info(&actor_type))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed(active: &str, previous: Option<&str>) -> DeploymentRecord {
        DeploymentRecord {
            active: Some(active.into()),
            previous: previous.map(Into::into),
            ..DeploymentRecord::default()
        }
    }

    #[test]
    fn deploy_keeps_the_previous_version_for_rollback() {
        let d = apply(&DeploymentRecord::default(), &DeployOp::Deploy("v1".into())).unwrap();
        assert_eq!(
            (d.active.as_deref(), d.previous.as_deref(), d.revision),
            (Some("v1"), None, 1)
        );
        let d = apply(&d, &DeployOp::Deploy("v2".into())).unwrap();
        assert_eq!(
            (d.active.as_deref(), d.previous.as_deref()),
            (Some("v2"), Some("v1"))
        );
        let again = apply(&d, &DeployOp::Deploy("v2".into())).unwrap();
        assert_eq!(again, d, "redeploying the active version changes nothing");
        let back = apply(&d, &DeployOp::Rollback).unwrap();
        assert_eq!(
            (back.active.as_deref(), back.previous.as_deref()),
            (Some("v1"), None)
        );
        let err = apply(&back, &DeployOp::Rollback).unwrap_err();
        assert_eq!(err.to_string(), "no previous version to roll back to");
    }

    #[test]
    fn remove_stops_everything_and_keeps_counting_revisions() {
        let mut d = deployed("v2", Some("v1"));
        d.canary = Some(CanaryInfo {
            version: "v3".into(),
            basis_points: 500,
        });
        d.revision = 7;
        let gone = apply(&d, &DeployOp::Remove).unwrap();
        assert_eq!(
            (&gone.active, &gone.previous, &gone.canary),
            (&None, &None, &None)
        );
        assert_eq!(gone.revision, 8, "nodes order updates by revision");
        assert!(matches!(
            apply(&gone, &DeployOp::Remove),
            Err(RegistryError::NotFound(_))
        ));
        assert!(matches!(
            apply(&gone, &DeployOp::Rollback),
            Err(RegistryError::Conflict(_))
        ));
        let again = apply(&gone, &DeployOp::Deploy("v4".into())).unwrap();
        assert_eq!((again.active.as_deref(), again.revision), (Some("v4"), 9));
    }

    #[test]
    fn canaries_block_deploys_until_promoted_or_aborted() {
        let d = deployed("v1", None);
        let c = apply(&d, &DeployOp::Canary("v2".into(), 1_000)).unwrap();
        assert!(matches!(
            apply(&c, &DeployOp::Deploy("v3".into())),
            Err(RegistryError::Conflict(_))
        ));
        assert!(matches!(
            apply(&c, &DeployOp::Canary("v3".into(), 10)),
            Err(RegistryError::Conflict(_))
        ));
        let resized = apply(&c, &DeployOp::Canary("v2".into(), 5_000)).unwrap();
        assert_eq!(resized.canary.as_ref().unwrap().basis_points, 5_000);
        let promoted = apply(&c, &DeployOp::Promote).unwrap();
        assert_eq!(
            (promoted.active.as_deref(), promoted.previous.as_deref()),
            (Some("v2"), Some("v1"))
        );
        assert!(promoted.canary.is_none());
        let aborted = apply(&c, &DeployOp::Abort).unwrap();
        assert_eq!(aborted.active.as_deref(), Some("v1"));
        assert!(aborted.canary.is_none());
        let rolled = apply(&c, &DeployOp::AutoRollback).unwrap();
        assert_eq!(
            rolled.canary, None,
            "a rollback during a canary drops the canary"
        );
        assert!(matches!(
            apply(&d, &DeployOp::Promote),
            Err(RegistryError::Conflict(_))
        ));
        assert!(matches!(
            apply(
                &DeploymentRecord::default(),
                &DeployOp::Canary("v1".into(), 10)
            ),
            Err(RegistryError::Conflict(_))
        ));
    }

    #[test]
    fn keys_in_the_canary_bucket_run_the_canary() {
        let mut d = deployed("v1", None);
        d.canary = Some(CanaryInfo {
            version: "v2".into(),
            basis_points: 1_000,
        });
        let on_canary = (0..1_000)
            .filter(|i| d.version_for("counter", &format!("k{i}")).as_deref() == Some("v2"))
            .count();
        assert!(
            (60..140).contains(&on_canary),
            "{on_canary} of 1000 keys on a 10% canary"
        );
        d.canary.as_mut().unwrap().basis_points = 0;
        assert!(
            (0..100).all(|i| d.version_for("counter", &format!("k{i}")).as_deref() == Some("v1"))
        );
    }
}
