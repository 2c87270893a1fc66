//! Activations: `ensure_activation` returns an actor's live activation or places it (one
//! transaction), and operators list them.

use latchkey_store::{RangeOptions, Transaction, Versionstamp, prefix_end};
use latchkey_wire::Generation;
use latchkey_wire::admin::{ActivationInfo, DEFAULT_REGION_WEIGHT};
use latchkey_wire::lease::LeaseSettings;
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

/// One `ensure_activation`, inside its transaction: who asks, for what, when.
struct Asked<'a> {
    requester: &'a str,
    request: &'a EnsureActivationRequest,
    act_key: &'a [u8],
    now: u64,
    settings: &'a LeaseSettings,
}

/// The version the actor type's deployment runs for a key, and the deployment's revision.
struct Deployed {
    version: String,
    revision: u64,
}

/// What last ran an actor.
enum LastRun {
    /// Nothing: it was never placed.
    Never,
    /// This version (its stored state is in that version's format).
    Version(String),
    /// A version whose module was deleted since: there is no old code to run or to hand over
    /// from, so the actor starts afresh, in a new generation.
    CodeGone,
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
            let asked = Asked {
                requester,
                request,
                act_key: &act_key,
                now: tx.read_version()?,
                settings: &settings,
            };
            let deployed = deployed_version(tx, actor_type, key)?;
            let existing = get_stamped::<ActivationRecord>(tx, &act_key, false)?;
            if existing.is_none() && !charged {
                self.charge_new_actor(request, asked.now)?;
                charged = true;
            }
            let last = last_run(tx, existing.as_ref().map(|(_, r)| r), &deployed.version)?;
            if let Some(existing) = existing
                && let Some(live) = still_live(tx, &asked, existing, &last, &deployed)?
            {
                return Ok(live);
            }
            // An actor placed again resumes on the version that last ran it; the node then
            // switches it to the deployed one through the upgrade path, so the new version's
            // upgrade hook sees every change of version. A new actor starts on the deployed one.
            let version = match last {
                LastRun::Version(v) => v,
                LastRun::Never | LastRun::CodeGone => deployed.version,
            };
            place(tx, &asked, version, deployed.revision)
        })?;
        activation_of(actor_type, key, committed.value, committed.versionstamp)
    }

    /// Takes a new actor's placement from the bucket of the token that asked (if it names one).
    fn charge_new_actor(
        &self,
        request: &EnsureActivationRequest,
        now: u64,
    ) -> Result<(), RegistryError> {
        match &request.token_id {
            Some(token_id) => self
                .creations
                .admit(token_id, now)
                .map_err(|e| RegistryError::RateLimited(e.to_string())),
            None => Ok(()),
        }
    }
}

/// The version the deployment of `actor_type` runs for `key`.
fn deployed_version(
    tx: &mut dyn Transaction,
    actor_type: &str,
    key: &str,
) -> Result<Deployed, RegistryError> {
    let deployment = get_json::<DeploymentRecord>(tx, &keys::deployment(actor_type))?;
    let revision = deployment.as_ref().map_or(0, |d| d.revision);
    let version = deployment
        .as_ref()
        .and_then(|d| d.version_for(actor_type, key))
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "actor type `{actor_type}` has no deployed version; deploy a module first"
            ))
        })?;
    Ok(Deployed { version, revision })
}

/// What last ran the actor whose activation record is `existing`.
fn last_run(
    tx: &mut dyn Transaction,
    existing: Option<&ActivationRecord>,
    deployed: &str,
) -> Result<LastRun, RegistryError> {
    Ok(match existing {
        None => LastRun::Never,
        Some(r)
            if r.module_version != deployed
                && tx.get(&keys::module(&r.module_version))?.is_none() =>
        {
            LastRun::CodeGone
        }
        Some(r) => LastRun::Version(r.module_version.clone()),
    })
}

/// The existing activation, if it is still live (its node holds the lease of its epoch); if
/// its code is gone, a new generation of it on the same node.
fn still_live(
    tx: &mut dyn Transaction,
    asked: &Asked<'_>,
    (generation, record): (Versionstamp, ActivationRecord),
    last: &LastRun,
    deployed: &Deployed,
) -> Result<Option<Ensured>, RegistryError> {
    // A conflicting read: a heartbeat of the owner racing this placement makes one of the two
    // transactions retry, so a renewal and a move are never both decided on the same lease.
    let owner = get_stamped::<NodeRecord>(tx, &keys::node(&record.node_id), false)?;
    let lease = owner.as_ref().map(|(s, r)| lease_of(*s, r));
    let live = fencing::activation_live(
        &record.node_id,
        record.node_epoch,
        lease.as_ref(),
        asked.now,
        asked.settings,
    );
    let (Ok(()), Some((_, owner))) = (live, owner) else {
        return Ok(None);
    };
    if matches!(last, LastRun::CodeGone) {
        // A new generation on the same node: the only one that may still hold an instance of
        // the old one, which its next commit then fences.
        let record = ActivationRecord {
            module_version: deployed.version.clone(),
            ..record
        };
        put_stamped(tx, asked.act_key, &record)?;
        return Ok(Some(Ensured::Placed {
            record,
            address: owner.address,
            no_state: false,
            revision: deployed.revision,
        }));
    }
    let request = asked.request;
    Ok(Some(Ensured::Live(Activation {
        actor_type: request.actor_type.clone(),
        key: request.key.clone(),
        node_id: record.node_id,
        node_address: owner.address,
        node_epoch: record.node_epoch,
        generation: Generation(generation.to_bytes()),
        module_version: record.module_version,
        no_state: false,
        deployment_revision: deployed.revision,
    })))
}

/// The nodes a placement may choose from: the requester alone if it is eligible and in the
/// hinted region (so a placement does not read, and conflict with, every node record in the
/// fleet), else every node.
fn candidates(
    tx: &mut dyn Transaction,
    asked: &Asked<'_>,
    weight_of: impl Fn(&str) -> u32,
) -> Result<Vec<(String, NodeRecord, Versionstamp)>, RegistryError> {
    let me = get_stamped::<NodeRecord>(tx, &keys::node(asked.requester), false)?;
    if let Some((stamp, record)) = me {
        let lease = lease_of(stamp, &record);
        let hint = asked.request.region_hint.as_deref();
        let hinted = hint.is_none_or(|r| r == record.region);
        if lease.is_eligible(asked.now, asked.settings) && hinted && weight_of(&record.region) > 0 {
            return Ok(vec![(asked.requester.to_owned(), record, stamp)]);
        }
    }
    let mut nodes = Vec::new();
    for (k, v) in tx.get_range(&keys::nodes())? {
        let (stamp, record) = decode_stamped::<NodeRecord>(&v)?;
        nodes.push((node_id_of(&k)?, record, stamp));
    }
    Ok(nodes)
}

/// Places the actor on `version`, on the node `fencing::choose_node` picks.
fn place(
    tx: &mut dyn Transaction,
    asked: &Asked<'_>,
    version: String,
    revision: u64,
) -> Result<Ensured, RegistryError> {
    let weights = super::regions::weights(tx)?;
    let weight_of = |region: &str| {
        weights
            .get(region)
            .copied()
            .unwrap_or(DEFAULT_REGION_WEIGHT)
    };
    let nodes = candidates(tx, asked, weight_of)?;
    let candidates: Vec<Candidate<'_>> = nodes
        .iter()
        .map(|(id, record, stamp)| Candidate {
            id,
            region: &record.region,
            lease: lease_of(*stamp, record),
            weight: weight_of(&record.region),
        })
        .collect();
    let request = asked.request;
    let chosen = fencing::choose_node(
        asked.requester,
        &request.actor_type,
        &request.key,
        request.region_hint.as_deref(),
        &candidates,
        asked.now,
        asked.settings,
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
    put_stamped(tx, asked.act_key, &record)?;
    let state = keys::state_prefix(&request.actor_type, &request.key);
    let no_state = tx
        .get_range(&RangeOptions::between(state.clone(), prefix_end(&state)).limit(1))?
        .is_empty();
    Ok(Ensured::Placed {
        record,
        address,
        no_state,
        revision,
    })
}

/// The activation `ensured` found or placed; a placement's generation is the versionstamp of
/// its transaction.
fn activation_of(
    actor_type: &str,
    key: &str,
    ensured: Ensured,
    versionstamp: Option<Versionstamp>,
) -> Result<Activation, RegistryError> {
    let (record, address, no_state, revision) = match ensured {
        Ensured::Live(activation) => return Ok(activation),
        Ensured::Placed {
            record,
            address,
            no_state,
            revision,
        } => (record, address, no_state, revision),
    };
    let stamp = versionstamp.ok_or_else(|| {
        RegistryError::Unavailable("placement committed without a versionstamp".into())
    })?;
    Ok(Activation {
        actor_type: actor_type.to_owned(),
        key: key.to_owned(),
        node_id: record.node_id,
        node_address: address,
        node_epoch: record.node_epoch,
        generation: Generation(stamp.to_bytes()),
        module_version: record.module_version,
        no_state,
        deployment_revision: revision,
    })
}

impl Registry {
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
