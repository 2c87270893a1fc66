//! Activations: `ensure_activation` returns an actor's live activation or places it (one
//! transaction), and operators list them.

use latchkey_store::{RangeOptions, Versionstamp, prefix_end};
use latchkey_wire::Generation;
use latchkey_wire::admin::{ActivationInfo, DEFAULT_REGION_WEIGHT};
use latchkey_wire::node::{Activation, EnsureActivationRequest, UpgradeRequest};

use super::Registry;
use super::deployments::DeploymentRecord;
use super::nodes::{lease_of, node_id_of};
use crate::error::RegistryError;
use crate::fencing::{self, Candidate};
use crate::keys;
use crate::records::{
    ActivationRecord, NodeRecord, decode_stamped, get_json, get_stamped, put_stamped,
};

/// What `ensure_activation`'s transaction found or did.
enum Ensured {
    Live(Activation),
    Placed {
        record: ActivationRecord,
        address: String,
        /// The actor had no stored state.
        no_state: bool,
        /// The deployment's revision the placement was decided under.
        revision: u64,
    },
}

impl Registry {
    /// The actor's live activation; if it has none (never placed, or its node's lease expired or
    /// epoch changed), places it — on `requester` if eligible and in the hinted region — with a
    /// new generation: the versionstamp of this transaction. Placing an actor that has no
    /// activation record (a new one) takes one from the bucket of `request.token_id`
    /// (`RateLimited` when empty; nothing is written).
    pub fn ensure_activation(
        &self,
        requester: &str,
        request: &EnsureActivationRequest,
    ) -> Result<Activation, RegistryError> {
        let (actor_type, key) = (request.actor_type.as_str(), request.key.as_str());
        self.check_name("actor type", actor_type)?;
        self.check_name("actor key", key)?;
        let settings = *self.settings();
        let act_key = keys::activation(actor_type, key);
        // A new actor is charged to its token once, however often the transaction retries.
        let mut charged = false;
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let deployment = get_json::<DeploymentRecord>(tx, &keys::deployment(actor_type))?;
            let revision = deployment.as_ref().map_or(0, |d| d.revision);
            let target = deployment
                .as_ref()
                .and_then(|d| d.version_for(actor_type, key))
                .ok_or_else(|| {
                    RegistryError::NotFound(format!(
                        "actor type `{actor_type}` has no deployed version; deploy a module first"
                    ))
                })?;
            let existing = get_stamped::<ActivationRecord>(tx, &act_key, false)?;
            if existing.is_none()
                && !charged
                && let Some(token_id) = &request.token_id
            {
                self.creations
                    .admit(token_id, now)
                    .map_err(|e| RegistryError::RateLimited(e.to_string()))?;
                charged = true;
            }
            // The version that last ran the actor (its stored state is in that version's
            // format), unless its module was deleted since: then there is no old code to run or
            // to hand over from, and the actor starts afresh on `target` in a new generation.
            let mut last_version = existing.as_ref().map(|(_, r)| r.module_version.clone());
            let code_gone = match &last_version {
                Some(last) if *last != target => tx.get(&keys::module(last))?.is_none(),
                _ => false,
            };
            if code_gone {
                last_version = None;
            }
            if let Some((generation, record)) = existing {
                // A conflicting read: a heartbeat of the owner racing this placement makes one of
                // the two transactions retry, so a renewal and a move are never both decided on
                // the same lease.
                let owner = get_stamped::<NodeRecord>(tx, &keys::node(&record.node_id), false)?;
                let lease = owner.as_ref().map(|(s, r)| lease_of(*s, r));
                let live = fencing::activation_live(&record.node_id, record.node_epoch, lease.as_ref(), now, &settings);
                if let (Ok(()), Some((_, owner))) = (live, owner) {
                    if code_gone {
                        // A new generation on the same node: the only one that may still hold
                        // an instance of the old one, which its next commit then fences.
                        let record = ActivationRecord {
                            module_version: target,
                            ..record
                        };
                        put_stamped(tx, &act_key, &record)?;
                        let address = owner.address;
                        return Ok(Ensured::Placed { record, address, no_state: false, revision });
                    }
                    return Ok(Ensured::Live(Activation {
                        actor_type: actor_type.to_owned(),
                        key: key.to_owned(),
                        node_id: record.node_id,
                        node_address: owner.address,
                        node_epoch: record.node_epoch,
                        generation: Generation(generation.to_bytes()),
                        module_version: record.module_version,
                        no_state: false,
                        deployment_revision: revision,
                    }));
                }
            }
            // An actor placed again resumes on the version that last ran it; the node then
            // switches it to `target` through the upgrade path, so the new version's upgrade
            // hook sees every change of version. A new actor starts on `target`.
            let version = last_version.unwrap_or(target);
            // Try the requester alone first, so a placement does not read (and conflict with)
            // every node record in the fleet.
            let weights = super::regions::weights(tx)?;
            let weight_of = |region: &str| {
                weights.get(region).copied().unwrap_or(DEFAULT_REGION_WEIGHT)
            };
            let me = get_stamped::<NodeRecord>(tx, &keys::node(requester), false)?;
            let mut nodes: Vec<(String, NodeRecord, Versionstamp)> = Vec::new();
            if let Some((stamp, record)) = me {
                let lease = lease_of(stamp, &record);
                let hinted = request.region_hint.as_deref().is_none_or(|r| r == record.region);
                if lease.is_eligible(now, &settings) && hinted && weight_of(&record.region) > 0 {
                    nodes.push((requester.to_owned(), record, stamp));
                }
            }
            if nodes.is_empty() {
                for (k, v) in tx.get_range(&keys::nodes())? {
                    let (stamp, record) = decode_stamped::<NodeRecord>(&v)?;
                    nodes.push((node_id_of(&k)?, record, stamp));
                }
            }
            let candidates: Vec<Candidate<'_>> = nodes
                .iter()
                .map(|(id, record, stamp)| Candidate {
                    id,
                    region: &record.region,
                    lease: lease_of(*stamp, record),
                    weight: weight_of(&record.region),
                })
                .collect();
            let chosen = fencing::choose_node(
                requester,
                actor_type,
                key,
                request.region_hint.as_deref(),
                &candidates,
                now,
                &settings,
            )
            .ok_or_else(|| {
                RegistryError::Unavailable(
                    "no node is eligible for placement (live, with enough heartbeats, in a region whose placement weight is not 0); retry shortly"
                        .into(),
                )
            })?;
            let record = ActivationRecord {
                node_id: chosen.id.to_owned(),
                node_epoch: chosen.lease.epoch,
                module_version: version,
            };
            let address = nodes
                .iter()
                .find(|(id, _, _)| id == chosen.id)
                .map(|(_, r, _)| r.address.clone())
                .unwrap_or_default();
            put_stamped(tx, &act_key, &record)?;
            let state = keys::state_prefix(actor_type, key);
            let no_state = tx
                .get_range(&RangeOptions::between(state.clone(), prefix_end(&state)).limit(1))?
                .is_empty();
            Ok(Ensured::Placed { record, address, no_state, revision })
        })?;
        Ok(match committed.value {
            Ensured::Live(activation) => activation,
            Ensured::Placed {
                record,
                address,
                no_state,
                revision,
            } => {
                let stamp = committed.versionstamp.ok_or_else(|| {
                    RegistryError::Unavailable("placement committed without a versionstamp".into())
                })?;
                Activation {
                    actor_type: actor_type.to_owned(),
                    key: key.to_owned(),
                    node_id: record.node_id,
                    node_address: address,
                    node_epoch: record.node_epoch,
                    generation: Generation(stamp.to_bytes()),
                    module_version: record.module_version,
                    no_state,
                    deployment_revision: revision,
                }
            }
        })
    }

    /// Switches a live activation to `request.version` (the deployment's version for its key):
    /// checks the old fence, writes a new activation record (a new generation: nothing running
    /// the old code can read or commit again) and applies the upgrade hook's writes, in one
    /// transaction. The next commit of the new generation is number 1.
    pub fn upgrade_activation(
        &self,
        node_id: &str,
        request: &UpgradeRequest,
    ) -> Result<Activation, RegistryError> {
        self.check_writes(&request.writes)?;
        let fence = &request.fence;
        let (actor_type, key) = (fence.actor_type.as_str(), fence.key.as_str());
        let act_key = keys::activation(actor_type, key);
        let prefix = keys::state_prefix(actor_type, key);
        let quota = self.limits().max_actor_storage_bytes;
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            self.check_fence(tx, node_id, fence, now)?;
            let deployment = get_json::<DeploymentRecord>(tx, &keys::deployment(actor_type))?
                .ok_or_else(|| RegistryError::NotFound(format!("actor type `{actor_type}` has no deployment")))?;
            let target = deployment.version_for(actor_type, key);
            if target.as_deref() != Some(request.version.as_str()) {
                return Err(RegistryError::Conflict(format!(
                    "the deployment of `{actor_type}` runs {} for key `{key}`, not {}; follow the deployment and retry",
                    target.as_deref().unwrap_or("nothing"),
                    request.version
                )));
            }
            let address = get_stamped::<NodeRecord>(tx, &keys::node(node_id), true)?
                .map(|(_, n)| n.address)
                .unwrap_or_default();
            let revision = deployment.revision;
            put_stamped(
                tx,
                &act_key,
                &ActivationRecord {
                    node_id: node_id.to_owned(),
                    node_epoch: fence.node_epoch,
                    module_version: request.version.clone(),
                },
            )?;
            // The new generation starts its commit numbering afresh (its stamp is this commit's).
            super::usage::meter(tx, (actor_type, key), &request.writes, quota)?;
            let mut last = latchkey_store::INCOMPLETE_VERSIONSTAMP.to_vec();
            last.extend_from_slice(&0u64.to_be_bytes());
            tx.set_versionstamped_value(&keys::last_commit(actor_type, key), &last, 0)?;
            super::state::apply_writes(tx, &prefix, &request.writes)?;
            Ok((address, revision))
        })?;
        let stamp = committed.versionstamp.ok_or_else(|| {
            RegistryError::Unavailable("the upgrade committed without a versionstamp".into())
        })?;
        Ok(Activation {
            actor_type: actor_type.to_owned(),
            key: key.to_owned(),
            node_id: node_id.to_owned(),
            node_address: committed.value.0,
            node_epoch: fence.node_epoch,
            generation: Generation(stamp.to_bytes()),
            module_version: request.version.clone(),
            no_state: false,
            deployment_revision: committed.value.1,
        })
    }

    /// Activation records (of one actor type, or all), with whether each is live now.
    pub fn activations(
        &self,
        actor_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActivationInfo>, RegistryError> {
        let settings = *self.settings();
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let rows = tx.get_range(&keys::activations(actor_type).limit(limit))?;
            let mut out = Vec::with_capacity(rows.len());
            for (k, v) in rows {
                let (_, _, t, key): (String, String, String, String) =
                    foundationdb_tuple::unpack(&k).map_err(|e| {
                        RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                            "activation key: {e:?}"
                        )))
                    })?;
                let (generation, record) = decode_stamped::<ActivationRecord>(&v)?;
                let owner = get_stamped::<NodeRecord>(tx, &keys::node(&record.node_id), true)?;
                let lease = owner.as_ref().map(|(s, r)| lease_of(*s, r));
                let live = fencing::activation_live(
                    &record.node_id,
                    record.node_epoch,
                    lease.as_ref(),
                    now,
                    &settings,
                )
                .is_ok();
                out.push(ActivationInfo {
                    actor_type: t,
                    key,
                    node_id: record.node_id,
                    node_epoch: record.node_epoch,
                    generation: hex::encode(generation.to_bytes()),
                    module_version: record.module_version,
                    live,
                });
            }
            Ok(out)
        })?;
        Ok(committed.value)
    }
}
