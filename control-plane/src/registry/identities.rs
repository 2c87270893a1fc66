//! Node identities: the key each node enrolled with. Enrolment uses a single-purpose enrolment
//! capability once (it is revoked in the same transaction); enrolling again with a new key, or
//! removing a node, revokes the old key, which kills every certificate issued for it.

use latchkey_caps::PublicKey;
use latchkey_caps::node::NodeCertificate;
use latchkey_wire::admin::RevocationInfo;

use super::Registry;
use super::feed::revoke_in;
use super::nodes::check_node_id;
use crate::error::RegistryError;
use crate::keys;
use crate::records::{IdentityRecord, get_json, put_json};

fn key_revocation(public_key: &str) -> Result<String, RegistryError> {
    let key: PublicKey = public_key
        .parse()
        .map_err(|e| RegistryError::BadRequest(format!("node public key: {e}")))?;
    Ok(NodeCertificate::key_revocation_id(&key).to_string())
}

impl Registry {
    /// Enrols `node_id` with `public_key` (`lk-pub-v1:…`), using the enrolment capability whose
    /// token id is `token_id`. Refused if that capability was used (or revoked) before, except
    /// by the same key for the same node (a retry).
    pub fn enrol_node(
        &self,
        node_id: &str,
        public_key: &str,
        token_id: &str,
    ) -> Result<IdentityRecord, RegistryError> {
        check_node_id(node_id)?;
        let revocation = key_revocation(public_key)?;
        let key = keys::node_identity(node_id);
        let committed = self.run(|tx| {
            let previous = get_json::<IdentityRecord>(tx, &key)?;
            if get_json::<serde_json::Value>(tx, &keys::revoked(token_id))?.is_some() {
                // The same key asking again with the capability it used (its answer was lost,
                // or it crashed before storing it) gets its certificate again.
                if let Some(record) = previous.filter(|p| {
                    p.enrolment_token_id == token_id && p.public_key == public_key
                }) {
                    return Ok(record);
                }
                return Err(RegistryError::Forbidden(format!(
                    "enrolment token {token_id} was already used or revoked; make a new one with `latchkey node-enrolment {node_id}`"
                )));
            }
            revoke_in(
                tx,
                token_id,
                Some(&format!("enrolment token used by node {node_id}")),
            )?;
            if let Some(previous) = previous
                && previous.public_key != public_key
            {
                let old = key_revocation(&previous.public_key)?;
                revoke_in(
                    tx,
                    &old,
                    Some(&format!("node {node_id} enrolled again with a new key")),
                )?;
            }
            if get_json::<serde_json::Value>(tx, &keys::revoked(&revocation))?.is_some() {
                return Err(RegistryError::Forbidden(format!(
                    "this key of node {node_id} was revoked; a node that was removed enrols with a new key (delete its key file)"
                )));
            }
            let record = IdentityRecord {
                public_key: public_key.to_owned(),
                enrolled_at: tx.read_version()?,
                enrolment_token_id: token_id.to_owned(),
            };
            put_json(tx, &key, &record)?;
            Ok(record)
        })?;
        Ok(committed.value)
    }

    /// The identity `node_id` enrolled with, if any.
    pub fn node_identity(&self, node_id: &str) -> Result<Option<IdentityRecord>, RegistryError> {
        let key = keys::node_identity(node_id);
        Ok(self.run(|tx| get_json::<IdentityRecord>(tx, &key))?.value)
    }

    /// Removes `node_id`'s identity and revokes its key: its certificates stop verifying
    /// everywhere once the revocation reaches each verifier.
    pub fn remove_node_identity(
        &self,
        node_id: &str,
        reason: Option<&str>,
    ) -> Result<RevocationInfo, RegistryError> {
        let key = keys::node_identity(node_id);
        let committed = self.run(|tx| {
            let identity = get_json::<IdentityRecord>(tx, &key)?.ok_or_else(|| {
                RegistryError::NotFound(format!("node `{node_id}` is not enrolled"))
            })?;
            let id = key_revocation(&identity.public_key)?;
            let reason = reason.map_or_else(|| format!("node {node_id} removed"), str::to_owned);
            let record = revoke_in(tx, &id, Some(&reason))?;
            tx.clear(&key)?;
            Ok(RevocationInfo {
                token_id: id,
                revoked_at: record.revoked_at,
                reason: record.reason,
            })
        })?;
        Ok(committed.value)
    }
}
