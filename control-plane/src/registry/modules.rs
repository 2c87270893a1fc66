//! Modules: WASM components uploaded once, addressed by the SHA-256 of their bytes, validated
//! against the actor world at upload, stored in 64 KiB chunks (FoundationDB values are limited to
//! 100 kB).

use latchkey_wire::admin::ModuleInfo;
use sha2::{Digest, Sha256};

use super::Registry;
use crate::error::RegistryError;
use crate::keys;
use crate::records::{ModuleRecord, get_json, put_json};
use crate::validate::validate_component;

const CHUNK: usize = 64 << 10;

fn info(content_id: &str, record: ModuleRecord) -> ModuleInfo {
    ModuleInfo {
        content_id: content_id.to_owned(),
        size: record.size,
        uploaded_at: record.uploaded_at,
        exports: record.exports,
        imports: record.imports,
    }
}

/// The content id of module bytes: hex SHA-256.
pub(crate) fn content_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Registry {
    /// Validates and stores a component. Uploading the same bytes again returns the existing
    /// module unchanged.
    pub fn put_module(&self, bytes: &[u8]) -> Result<ModuleInfo, RegistryError> {
        let max = self.limits().max_module_bytes;
        if bytes.len() > max {
            return Err(RegistryError::TooLarge(format!(
                "module is {} bytes; the limit is {max}",
                bytes.len()
            )));
        }
        let summary =
            validate_component(bytes).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let id = content_id(bytes);
        let key = keys::module(&id);
        let committed = self.run(|tx| {
            if let Some(existing) = get_json::<ModuleRecord>(tx, &key)? {
                return Ok(existing);
            }
            let mut chunks = 0u32;
            for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
                tx.set(&keys::chunk(&id, i as u32), chunk)?;
                chunks += 1;
            }
            let record = ModuleRecord {
                size: bytes.len() as u64,
                chunks,
                uploaded_at: tx.read_version()?,
                exports: summary.exports.clone(),
                imports: summary.imports.clone(),
            };
            put_json(tx, &key, &record)?;
            Ok(record)
        })?;
        Ok(info(&id, committed.value))
    }

    /// A module's metadata.
    pub fn module(&self, content_id: &str) -> Result<ModuleInfo, RegistryError> {
        let record = self
            .run(|tx| get_json::<ModuleRecord>(tx, &keys::module(content_id)))?
            .value;
        record.map(|r| info(content_id, r)).ok_or_else(|| {
            RegistryError::NotFound(format!("no module with content id {content_id}"))
        })
    }

    /// Every module's metadata.
    pub fn modules(&self) -> Result<Vec<ModuleInfo>, RegistryError> {
        let committed = self.run(|tx| {
            tx.get_range(&keys::modules())?
                .into_iter()
                .map(|(k, v)| {
                    let (_, _, id): (String, String, String) = foundationdb_tuple::unpack(&k)
                        .map_err(|e| {
                            RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                                "module key: {e:?}"
                            )))
                        })?;
                    let record: ModuleRecord = serde_json::from_slice(&v).map_err(|e| {
                        RegistryError::Store(latchkey_store::StoreError::Corrupt(format!(
                            "module: {e}"
                        )))
                    })?;
                    Ok(info(&id, record))
                })
                .collect::<Result<Vec<_>, RegistryError>>()
        })?;
        Ok(committed.value)
    }

    /// Deletes a module no deployment uses (as its active, previous or canary version).
    /// Actors whose last activation ran it start on their type's deployed version next time.
    pub fn delete_module(&self, content_id: &str) -> Result<(), RegistryError> {
        self.run(|tx| {
            if tx.get(&keys::module(content_id))?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "no module with content id {content_id}"
                )));
            }
            let users: Vec<String> = super::deployments::read_deployments(tx)?
                .into_iter()
                .filter(|d| {
                    d.active.as_deref() == Some(content_id)
                        || d.previous.as_deref() == Some(content_id)
                        || d.canary.as_ref().is_some_and(|c| c.version == content_id)
                })
                .map(|d| format!("`{}`", d.actor_type))
                .collect();
            if !users.is_empty() {
                return Err(RegistryError::Conflict(format!(
                    "module {content_id} is in use by the deployment of {} (as its active, previous or canary version); change or remove the deployment first",
                    users.join(", ")
                )));
            }
            tx.clear(&keys::module(content_id))?;
            let chunks = keys::chunks(content_id);
            tx.clear_range(&chunks.begin, &chunks.end)?;
            Ok(())
        })?;
        Ok(())
    }

    /// A module's bytes, checked against its content id.
    pub fn module_bytes(&self, content_id: &str) -> Result<Vec<u8>, RegistryError> {
        let bytes = self.run(|tx| {
            if tx.get(&keys::module(content_id))?.is_none() {
                return Err(RegistryError::NotFound(format!(
                    "no module with content id {content_id}"
                )));
            }
            let rows = tx.get_range(&keys::chunks(content_id))?;
            Ok(rows.into_iter().flat_map(|(_, v)| v).collect::<Vec<u8>>())
        })?;
        if self::content_id(&bytes.value) != content_id {
            return Err(RegistryError::Store(latchkey_store::StoreError::Corrupt(
                format!("module {content_id}: stored bytes do not match their content id"),
            )));
        }
        Ok(bytes.value)
    }
}
