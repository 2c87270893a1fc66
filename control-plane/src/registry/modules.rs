//! Modules: WASM components uploaded once, addressed by the SHA-256 of their bytes, validated
//! against the actor world at upload, stored in 64 KiB chunks (FoundationDB values are limited to
//! 100 kB).
//!
//! A module belongs to the actor types it was uploaded for: a token scoped to one actor type
//! (its *scope*, `Some(type)`) adds that type when it uploads, and sees, deletes and deploys
//! only modules of its type; an unscoped token (`None`) adds no type and reaches every module.

use latchkey_wire::admin::ModuleInfo;
use sha2::{Digest, Sha256};

use super::Registry;
use crate::error::RegistryError;
use crate::keys;
use crate::records::{ModuleRecord, get_json, put_json};
use crate::validate::validate_component;

const CHUNK: usize = 64 << 10;

/// The module as `scope` may see it: a scoped token sees only its own type among the module's.
fn info(content_id: &str, record: ModuleRecord, scope: Option<&str>) -> ModuleInfo {
    let actor_types = match scope {
        None => record.actor_types.into_iter().collect(),
        Some(t) => record
            .actor_types
            .contains(t)
            .then(|| t.to_owned())
            .into_iter()
            .collect(),
    };
    ModuleInfo {
        content_id: content_id.to_owned(),
        size: record.size,
        uploaded_at: record.uploaded_at,
        exports: record.exports,
        imports: record.imports,
        actor_types,
    }
}

/// Whether a token of `scope` reaches a module of `record`'s types.
pub(crate) fn reaches(record: &ModuleRecord, scope: Option<&str>) -> bool {
    scope.is_none_or(|t| record.actor_types.contains(t))
}

/// The error for a module `scope` does not reach (the same as for a missing one, so a scoped
/// token learns nothing of other types' modules).
pub(crate) fn not_reached(content_id: &str, scope: Option<&str>) -> RegistryError {
    match scope {
        None => RegistryError::NotFound(format!("no module with content id {content_id}")),
        Some(t) => RegistryError::NotFound(format!(
            "no module with content id {content_id} among the modules of actor type `{t}` (your token is scoped to `{t}`; a module belongs to the types it was uploaded for)"
        )),
    }
}

/// The content id of module bytes: hex SHA-256.
pub(crate) fn content_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Registry {
    /// Validates and stores a component uploaded by an unscoped token (it belongs to no actor
    /// type). Uploading the same bytes again returns the existing module unchanged.
    pub fn put_module(&self, bytes: &[u8]) -> Result<ModuleInfo, RegistryError> {
        self.put_module_as(bytes, None)
    }

    /// Validates and stores a component uploaded by a token of `scope`: a scoped upload adds its
    /// actor type to the module's (the same bytes uploaded for another type keep one module, of
    /// both types); an unscoped one adds none.
    pub fn put_module_as(
        &self,
        bytes: &[u8],
        scope: Option<&str>,
    ) -> Result<ModuleInfo, RegistryError> {
        if let Some(t) = scope {
            self.check_name("actor type", t)?;
        }
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
            if let Some(mut existing) = get_json::<ModuleRecord>(tx, &key)? {
                if let Some(t) = scope
                    && existing.actor_types.insert(t.to_owned())
                {
                    put_json(tx, &key, &existing)?;
                }
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
                actor_types: scope.map(str::to_owned).into_iter().collect(),
            };
            put_json(tx, &key, &record)?;
            Ok(record)
        })?;
        Ok(info(&id, committed.value, scope))
    }

    /// A module's metadata.
    pub fn module(&self, content_id: &str) -> Result<ModuleInfo, RegistryError> {
        self.module_as(content_id, None)
    }

    /// A module's metadata, if a token of `scope` reaches it.
    pub fn module_as(
        &self,
        content_id: &str,
        scope: Option<&str>,
    ) -> Result<ModuleInfo, RegistryError> {
        let record = self
            .run(|tx| get_json::<ModuleRecord>(tx, &keys::module(content_id)))?
            .value;
        record
            .filter(|r| reaches(r, scope))
            .map(|r| info(content_id, r, scope))
            .ok_or_else(|| not_reached(content_id, scope))
    }

    /// Every module's metadata.
    pub fn modules(&self) -> Result<Vec<ModuleInfo>, RegistryError> {
        self.modules_as(None)
    }

    /// The metadata of every module a token of `scope` reaches.
    pub fn modules_as(&self, scope: Option<&str>) -> Result<Vec<ModuleInfo>, RegistryError> {
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
                    Ok(reaches(&record, scope).then(|| info(&id, record, scope)))
                })
                .filter_map(Result::transpose)
                .collect::<Result<Vec<_>, RegistryError>>()
        })?;
        Ok(committed.value)
    }

    /// Deletes a module no deployment uses (as its active, previous or canary version).
    /// Actors whose last activation ran it start on their type's deployed version next time.
    pub fn delete_module(&self, content_id: &str) -> Result<(), RegistryError> {
        self.delete_module_as(content_id, None)
    }

    /// Deletes a module for a token of `scope`, which must cover every actor type the module
    /// belongs to: a scoped token deletes only a module of its type alone.
    pub fn delete_module_as(
        &self,
        content_id: &str,
        scope: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.run(|tx| {
            let record = get_json::<ModuleRecord>(tx, &keys::module(content_id))?
                .filter(|r| reaches(r, scope))
                .ok_or_else(|| not_reached(content_id, scope))?;
            if let Some(t) = scope {
                let others = record.actor_types.iter().filter(|o| *o != t).count();
                if others > 0 {
                    return Err(RegistryError::Forbidden(format!(
                        "module {content_id} also belongs to {others} actor type(s) other than `{t}`, the one your token is scoped to; deleting it needs a token covering every type it belongs to"
                    )));
                }
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
