//! Regions: names that edge nodes join (`--region`) and placement refers to, each with a
//! placement weight and a jurisdiction tag. A node may run in a region nobody declared; it then
//! counts with the default weight.

use std::collections::HashMap;

use latchkey_wire::admin::{MAX_REGION_WEIGHT, RegionInfo, RegionRequest};

use super::Registry;
use crate::error::RegistryError;
use crate::keys;
use crate::records::{RegionRecord, get_json, put_json};

fn info(name: &str, record: RegionRecord) -> RegionInfo {
    RegionInfo {
        name: name.to_owned(),
        placement_weight: record.placement_weight,
        jurisdiction: record.jurisdiction,
        updated_at: record.updated_at,
    }
}

impl Registry {
    /// Declares `name`, or changes it. Writing the same settings again changes nothing.
    pub fn put_region(
        &self,
        name: &str,
        request: &RegionRequest,
    ) -> Result<RegionInfo, RegistryError> {
        self.check_name("region", name)?;
        if request.placement_weight > MAX_REGION_WEIGHT {
            return Err(RegistryError::BadRequest(format!(
                "placement_weight must be 0 to {MAX_REGION_WEIGHT}, got {}",
                request.placement_weight
            )));
        }
        if let Some(j) = &request.jurisdiction {
            self.check_name("jurisdiction", j)?;
        }
        let key = keys::region(name);
        let committed = self.run(|tx| {
            let existing = get_json::<RegionRecord>(tx, &key)?;
            if let Some(r) = existing.filter(|r| {
                r.placement_weight == request.placement_weight
                    && r.jurisdiction == request.jurisdiction
            }) {
                return Ok(r);
            }
            let record = RegionRecord {
                placement_weight: request.placement_weight,
                jurisdiction: request.jurisdiction.clone(),
                updated_at: tx.read_version()?,
            };
            put_json(tx, &key, &record)?;
            Ok(record)
        })?;
        Ok(info(name, committed.value))
    }

    /// A declared region.
    pub fn region(&self, name: &str) -> Result<RegionInfo, RegistryError> {
        let record = self
            .run(|tx| get_json::<RegionRecord>(tx, &keys::region(name)))?
            .value;
        record
            .map(|r| info(name, r))
            .ok_or_else(|| RegistryError::NotFound(format!("region `{name}` is not declared")))
    }

    /// Every declared region, by name.
    pub fn regions(&self) -> Result<Vec<RegionInfo>, RegistryError> {
        let committed = self.run(|tx| read_regions(tx))?;
        Ok(committed
            .value
            .into_iter()
            .map(|(name, r)| info(&name, r))
            .collect())
    }

    /// Removes a declared region (its nodes keep running and count with the default weight).
    /// Removing an undeclared region is `NotFound`.
    pub fn delete_region(&self, name: &str) -> Result<(), RegistryError> {
        let key = keys::region(name);
        self.run(|tx| {
            if tx.get(&key)?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "region `{name}` is not declared"
                )));
            }
            tx.clear(&key)?;
            Ok(())
        })?;
        Ok(())
    }
}

/// Every declared region, read in `tx`, by name.
pub(crate) fn read_regions(
    tx: &mut dyn latchkey_store::Transaction,
) -> Result<Vec<(String, RegionRecord)>, RegistryError> {
    tx.get_range(&keys::regions())?
        .into_iter()
        .map(|(k, v)| {
            let corrupt = |m: String| RegistryError::Store(latchkey_store::StoreError::Corrupt(m));
            let (_, _, name): (String, String, String) = foundationdb_tuple::unpack(&k)
                .map_err(|e| corrupt(format!("region key: {e:?}")))?;
            let record: RegionRecord =
                serde_json::from_slice(&v).map_err(|e| corrupt(format!("region: {e}")))?;
            Ok((name, record))
        })
        .collect()
}

/// Placement weights of the declared regions, for [`crate::fencing::choose_node`].
pub(crate) fn weights(
    tx: &mut dyn latchkey_store::Transaction,
) -> Result<HashMap<String, u32>, RegistryError> {
    Ok(read_regions(tx)?
        .into_iter()
        .map(|(name, r)| (name, r.placement_weight))
        .collect())
}
