//! Records the registry stores, and their encoding: JSON, optionally behind a 10-byte
//! versionstamp that the store fills in at commit (a heartbeat's commit version, an activation's
//! generation).

use latchkey_store::{INCOMPLETE_VERSIONSTAMP, StoreError, Transaction, Versionstamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// A registered edge node. Its last heartbeat's commit version is the value's versionstamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Region it runs in.
    pub region: String,
    /// Forwarding address.
    pub address: String,
    /// Incremented at every registration and every heartbeat after a lapse.
    pub epoch: u64,
    /// Successive heartbeats without a lapse.
    pub streak: u32,
}

/// A node's enrolled identity: the public key its certificates certify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// The node's public key (`lk-pub-v1:…`).
    pub public_key: String,
    /// Store version of the enrolment.
    pub enrolled_at: u64,
    /// Token id of the enrolment capability used.
    pub enrolment_token_id: String,
}

/// Where an actor is activated. The placement's versionstamp (its generation) prefixes the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    /// Node holding it.
    pub node_id: String,
    /// That node's epoch at placement.
    pub node_epoch: u64,
    /// Module version (content id) it runs.
    pub module_version: String,
}

/// An uploaded module's metadata; its bytes are in chunks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// Store version at upload.
    pub uploaded_at: u64,
    /// Exported interfaces.
    pub exports: Vec<String>,
    /// Imported interfaces.
    pub imports: Vec<String>,
    /// The actor types it was uploaded for (by tokens scoped to one type); empty when only
    /// unscoped tokens uploaded it. Records from before this field read as empty.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub actor_types: std::collections::BTreeSet<String>,
}

/// A revoked token id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// Store version of the revocation.
    pub revoked_at: u64,
    /// Why.
    pub reason: Option<String>,
}

/// An issuer key known to the fleet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `lk-pub-v1:…`.
    pub public_key: String,
    /// `active` (mints), `trusted` (verifies only) or `retired`.
    pub state: KeyState,
    /// Store version at creation.
    pub created_at: u64,
}

/// Lifecycle of an issuer key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Mints new tokens, and verifies.
    Active,
    /// Verifies tokens it minted earlier.
    Trusted,
    /// No longer trusted.
    Retired,
}

impl KeyState {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Trusted => "trusted",
            KeyState::Retired => "retired",
        }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Store(StoreError::Corrupt(format!("{what}: {e}")))
}

/// Reads a JSON record.
pub fn get_json<T: DeserializeOwned>(
    tx: &mut dyn Transaction,
    key: &[u8],
) -> Result<Option<T>, RegistryError> {
    match tx.get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(std::any::type_name::<T>(), e)),
    }
}

/// Writes a JSON record.
pub fn put_json<T: Serialize>(
    tx: &mut dyn Transaction,
    key: &[u8],
    value: &T,
) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec(value).expect("records always serialise");
    Ok(tx.set(key, &bytes)?)
}

/// Decodes a `versionstamp ++ JSON` value.
pub fn decode_stamped<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Versionstamp, T), RegistryError> {
    let stamp = Versionstamp::read(bytes)
        .ok_or_else(|| corrupt("stamped record", "shorter than 10 bytes"))?;
    let value =
        serde_json::from_slice(&bytes[10..]).map_err(|e| corrupt(std::any::type_name::<T>(), e))?;
    Ok((stamp, value))
}

/// Reads a `versionstamp ++ JSON` record, with or without a read conflict.
pub fn get_stamped<T: DeserializeOwned>(
    tx: &mut dyn Transaction,
    key: &[u8],
    snapshot: bool,
) -> Result<Option<(Versionstamp, T)>, RegistryError> {
    let bytes = if snapshot {
        tx.get_snapshot(key)?
    } else {
        tx.get(key)?
    };
    bytes.map(|b| decode_stamped(&b)).transpose()
}

/// Writes a `versionstamp ++ JSON` record whose versionstamp is this transaction's.
pub fn put_stamped<T: Serialize>(
    tx: &mut dyn Transaction,
    key: &[u8],
    value: &T,
) -> Result<(), RegistryError> {
    let mut bytes = INCOMPLETE_VERSIONSTAMP.to_vec();
    serde_json::to_writer(&mut bytes, value).expect("records always serialise");
    Ok(tx.set_versionstamped_value(key, &bytes, 0)?)
}

/// A declared region (see [`latchkey_wire::admin::RegionInfo`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRecord {
    /// Relative share of placements outside the requester's region (0: none).
    pub placement_weight: u32,
    /// Jurisdiction tag.
    pub jurisdiction: Option<String>,
    /// Store version of the last change.
    pub updated_at: u64,
}
