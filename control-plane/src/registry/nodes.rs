//! Nodes: registration (a new epoch every time), heartbeats (a new epoch after a lapse), listing.

use latchkey_store::Versionstamp;
use latchkey_wire::admin::NodeInfo;
use latchkey_wire::node::{HeartbeatResponse, RegisterRequest, RegisterResponse};

use super::Registry;
use crate::error::RegistryError;
use crate::fencing::{self, NodeLease};
use crate::keys;
use crate::records::{NodeRecord, decode_stamped, get_stamped, put_stamped};

/// A node record's lease, given the record's versionstamp (its last heartbeat).
pub(crate) fn lease_of(stamp: Versionstamp, record: &NodeRecord) -> NodeLease {
    NodeLease {
        epoch: record.epoch,
        last_heartbeat: stamp.version(),
        streak: record.streak,
    }
}

pub(crate) fn check_node_id(id: &str) -> Result<(), RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadRequest(format!(
            "node id `{}` must be 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `-`",
            id.escape_debug()
        )))
    }
}

impl Registry {
    /// Registers (or re-registers) a node, starting a new epoch.
    pub fn register(
        &self,
        node_id: &str,
        request: &RegisterRequest,
    ) -> Result<RegisterResponse, RegistryError> {
        check_node_id(node_id)?;
        self.check_name("region", &request.region)?;
        self.check_name("address", &request.address)?;
        let key = keys::node(node_id);
        let settings = *self.settings();
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let previous = get_stamped::<NodeRecord>(tx, &key, false)?;
            let lease = previous.as_ref().map(|(s, r)| lease_of(*s, r));
            let (epoch, streak) = fencing::register(lease.as_ref(), now, &settings)
                .map_err(|e| RegistryError::Unavailable(format!("node `{node_id}`: {e}; retry")))?;
            let record = NodeRecord {
                region: request.region.clone(),
                address: request.address.clone(),
                epoch,
                streak,
            };
            put_stamped(tx, &key, &record)?;
            Ok(epoch)
        })?;
        Ok(RegisterResponse {
            epoch: committed.value,
            lease_version: committed.versionstamp.map_or(0, Versionstamp::version),
            settings: *self.settings(),
        })
    }

    /// Records a heartbeat: renews the lease, or starts a new epoch if it had lapsed.
    pub fn heartbeat(&self, node_id: &str) -> Result<HeartbeatResponse, RegistryError> {
        let key = keys::node(node_id);
        let settings = *self.settings();
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let (stamp, mut record) =
                get_stamped::<NodeRecord>(tx, &key, false)?.ok_or_else(|| {
                    RegistryError::NotFound(format!(
                        "node `{node_id}` is not registered; register it first"
                    ))
                })?;
            let outcome = fencing::heartbeat(&lease_of(stamp, &record), now, &settings);
            record.epoch = outcome.epoch;
            record.streak = outcome.streak;
            put_stamped(tx, &key, &record)?;
            Ok(outcome)
        })?;
        let outcome = committed.value;
        Ok(HeartbeatResponse {
            epoch: outcome.epoch,
            lease_version: committed.versionstamp.map_or(0, Versionstamp::version),
            eligible: outcome.streak >= settings.min_heartbeats,
            settings,
        })
    }

    /// Every registered node, with its liveness now.
    pub fn nodes(&self) -> Result<Vec<NodeInfo>, RegistryError> {
        let settings = *self.settings();
        let committed = self.run(|tx| {
            let now = tx.read_version()?;
            let rows = tx.get_range(&keys::nodes())?;
            rows.iter()
                .map(|(k, v)| {
                    let (stamp, record) = decode_stamped::<NodeRecord>(v)?;
                    let lease = lease_of(stamp, &record);
                    Ok(NodeInfo {
                        id: node_id_of(k)?,
                        region: record.region,
                        address: record.address,
                        epoch: record.epoch,
                        last_heartbeat: stamp.version(),
                        streak: record.streak,
                        live: lease.is_live(now, &settings),
                        eligible: lease.is_eligible(now, &settings),
                    })
                })
                .collect::<Result<Vec<_>, RegistryError>>()
        })?;
        Ok(committed.value)
    }
}

/// The node id in a node record's key.
pub(crate) fn node_id_of(key: &[u8]) -> Result<String, RegistryError> {
    let (_, _, id): (String, String, String) = foundationdb_tuple::unpack(key).map_err(|e| {
        RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
            "node key: {e:?}"
        )))
    })?;
    Ok(id)
}
