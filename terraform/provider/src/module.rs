//! `latchkey_module`: a WASM component uploaded from a file. The file's SHA-256 is its content
//! id, so a changed file plans an update (a new upload; the old version stays in the control
//! plane as a rollback target) and the new id is known at plan time.
//!
//! Modules are content-addressed: a deployment outside the configuration may run the same bytes.
//! Destroy then *releases* the module: it leaves the state, the control plane keeps it for that
//! deployment (it refuses to delete a module in use, atomically), and a warning names the
//! deployment.

use async_trait::async_trait;
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{DeploymentInfo, ModuleInfo};
use latchkey_wire::client::{Client, ClientError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueList, ValueString};
use tf_provider::{AttributePath, Diagnostic, Diagnostics};

use crate::diag::{api_error, attribute_error};
use crate::managed::Managed;
use crate::number::Number;
use crate::provider::Shared;
use crate::schema::{Set, attr, block, strings};

/// The resource.
pub(crate) struct ModuleResource(pub(crate) Shared);

/// Its state.
#[derive(Serialize, Deserialize)]
pub(crate) struct State<'a> {
    source: ValueString<'a>,
    sha256: ValueString<'a>,
    content_id: ValueString<'a>,
    size: Value<Number>,
    exports: ValueList<ValueString<'a>>,
}

/// A component file, read and hashed.
struct Component {
    bytes: Vec<u8>,
    sha256: String,
}

fn read_source(diags: &mut Diagnostics, path: &str) -> Option<Component> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            Some(Component { bytes, sha256 })
        }
        Err(e) => {
            attribute_error(diags, "source", format!("cannot read `{path}`: {e}"));
            None
        }
    }
}

fn size_of(n: u64) -> Value<Number> {
    Value::Value(Number::from_u64(n))
}

impl<'a> State<'a> {
    fn with_info(mut self, info: ModuleInfo) -> Self {
        self.content_id = Value::Value(info.content_id.into());
        self.size = size_of(info.size);
        self.exports = Value::Value(
            info.exports
                .into_iter()
                .map(|e| Value::Value(e.into()))
                .collect(),
        );
        self
    }

    /// The planned state for the file `source` names now (`prior`: the state before, if any).
    fn planned(mut self, diags: &mut Diagnostics, prior: Option<&State<'a>>) -> Option<Self> {
        let Some(path) = self.source.as_deref_option().map(str::to_owned) else {
            // Unknown until other resources are applied: so is everything computed.
            self.sha256 = Value::Unknown;
            self.content_id = Value::Unknown;
            self.size = Value::Unknown;
            self.exports = Value::Unknown;
            return Some(self);
        };
        let component = read_source(diags, &path)?;
        match prior {
            Some(p) if p.sha256.as_deref_option() == Some(component.sha256.as_str()) => {
                self.sha256 = p.sha256.clone();
                self.content_id = p.content_id.clone();
                self.size = p.size.clone();
                self.exports = p.exports.clone();
            }
            _ => {
                self.content_id = Value::Value(component.sha256.clone().into());
                self.sha256 = Value::Value(component.sha256.into());
                self.size = size_of(component.bytes.len() as u64);
                self.exports = Value::Unknown;
            }
        }
        Some(self)
    }
}

/// The deployments that use module `content_id`, each with how: "`counter` (active version)".
fn users_of(deployments: &[DeploymentInfo], content_id: &str) -> Vec<String> {
    deployments
        .iter()
        .flat_map(|d| {
            let canary = d.canary.as_ref().map(|c| c.version.as_str());
            [
                (d.active.as_deref(), "active version"),
                (canary, "canary version"),
                (
                    d.previous.as_deref(),
                    "previous version, its rollback target",
                ),
            ]
            .into_iter()
            .filter(|(version, _)| *version == Some(content_id))
            .map(|(_, role)| format!("`{}` ({role})", d.actor_type))
        })
        .collect()
}

/// The warning of a module released rather than deleted; `why`: who still uses it.
fn released(content_id: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        format!("module {content_id} released, not deleted: {why}"),
        format!(
            "Modules are content-addressed: the bytes of this latchkey_module are also a version \
             of a deployment that this destroy did not remove (typically one made outside this \
             configuration). Terraform no longer manages the module (it left the state); the \
             control plane keeps it for that deployment. Once no deployment uses it, delete it \
             with `DELETE /v1/modules/{content_id}` (admin API), or leave it: uploading the same \
             bytes again finds it there."
        ),
        AttributePath::root(),
    )
}

impl ModuleResource {
    /// Deletes module `id`: `Some(None)` when deleted (or already gone), `Some(Some(refusal))`
    /// when the control plane refused because a deployment uses it (409: it checks and deletes
    /// in one transaction), `None` on any other error (reported).
    async fn delete(
        &self,
        diags: &mut Diagnostics,
        client: &Client,
        id: &str,
    ) -> Option<Option<String>> {
        match client.delete_module(id).await {
            Ok(()) => Some(None),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Some(None),
            Err(ClientError::Api(e)) if e.code == ErrorCode::Conflict => Some(Some(e.message)),
            Err(e) => {
                api_error(diags, &format!("deleting module {id}"), None, &e);
                None
            }
        }
    }

    /// Deletes module `id`, or releases it (a warning, no error) while a deployment uses it.
    async fn delete_or_release(
        &self,
        diags: &mut Diagnostics,
        client: &Client,
        id: &str,
    ) -> Option<()> {
        let Some(refusal) = self.delete(diags, client, id).await? else {
            return Some(());
        };
        let why = match client.deployments().await {
            Ok(deployments) => match users_of(&deployments, id) {
                users if !users.is_empty() => {
                    format!("still used by the deployment of {}", users.join(", "))
                }
                // Nobody uses it any more (it changed since the refusal): delete it now.
                _ => match self.delete(diags, client, id).await? {
                    None => return Some(()),
                    Some(refusal) => refusal,
                },
            },
            // Who uses it cannot be listed: the control plane's refusal names them.
            Err(_) => refusal,
        };
        diags.add_warning(released(id, &why));
        Some(())
    }

    /// Uploads the file the planned state names.
    async fn upload<'a>(&self, diags: &mut Diagnostics, planned: State<'a>) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        let path = planned
            .source
            .as_deref_option()
            .unwrap_or_default()
            .to_owned();
        let component = read_source(diags, &path)?;
        if let Some(expected) = planned.sha256.as_deref_option()
            && expected != component.sha256
        {
            attribute_error(
                diags,
                "source",
                format!(
                    "`{path}` changed between plan and apply (planned sha256 {expected}, now {}); plan again",
                    component.sha256
                ),
            );
            return None;
        }
        let sha256 = component.sha256.clone();
        match client.upload_module(component.bytes).await {
            Ok(info) => {
                let mut state = planned.with_info(info);
                state.sha256 = Value::Value(sha256.into());
                Some(state)
            }
            Err(e) => {
                api_error(diags, &format!("uploading `{path}`"), Some("source"), &e);
                None
            }
        }
    }
}

#[async_trait]
impl Managed for ModuleResource {
    type State<'a> = State<'a>;

    fn schema(&self) -> Schema {
        Schema {
            version: 1,
            block: block(
                "A WASM actor component (built for `wasm32-wasip2` with the actor SDK), uploaded to the control plane. Modules are content-addressed: deploy one by its `content_id`.",
                vec![
                    (
                        "source",
                        attr(
                            AttributeType::String,
                            Set::Required,
                            "Path of the component file. When its contents change, Terraform plans an update that uploads the new version.",
                        ),
                    ),
                    (
                        "sha256",
                        attr(
                            AttributeType::String,
                            Set::Computed,
                            "Hex SHA-256 of the file as last uploaded.",
                        ),
                    ),
                    (
                        "content_id",
                        attr(
                            AttributeType::String,
                            Set::Computed,
                            "The module's version name in the control plane (the SHA-256 of its bytes): what `latchkey_deployment.version` takes.",
                        ),
                    ),
                    (
                        "size",
                        attr(AttributeType::Number, Set::Computed, "Size in bytes."),
                    ),
                    (
                        "exports",
                        attr(
                            strings(),
                            Set::Computed,
                            "The actor interfaces the component exports.",
                        ),
                    ),
                ],
            ),
        }
    }

    async fn plan<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Option<&State<'a>>,
        proposed: State<'a>,
    ) -> Option<(State<'a>, Vec<AttributePath>)> {
        Some((proposed.planned(diags, prior)?, vec![]))
    }

    async fn read<'a>(&self, diags: &mut Diagnostics, state: State<'a>) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        let id = state.content_id.as_deref_option()?.to_owned();
        match client.module(&id).await {
            Ok(info) => Some(state.with_info(info)),
            // Deleted behind Terraform's back: gone, so the next plan uploads it again.
            Err(e) if e.code() == Some(ErrorCode::NotFound) => None,
            Err(e) => {
                api_error(diags, &format!("reading module {id}"), None, &e);
                None
            }
        }
    }

    async fn apply<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Option<State<'a>>,
        planned: State<'a>,
    ) -> Option<State<'a>> {
        if let Some(prior) = prior
            && planned.sha256 == prior.sha256
            && planned.content_id == prior.content_id
        {
            return Some(planned); // only `source` moved: same bytes, nothing to upload
        }
        self.upload(diags, planned).await
    }

    async fn remove<'a>(&self, diags: &mut Diagnostics, prior: State<'a>) -> Option<()> {
        let client = self.0.client(diags)?;
        let id = prior.content_id.as_deref_option()?;
        self.delete_or_release(diags, &client, id).await
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        match client.module(&id).await {
            Ok(info) => {
                let state = State {
                    source: Value::Null,
                    sha256: Value::Value(info.content_id.clone().into()),
                    content_id: Value::Null,
                    size: Value::Null,
                    exports: Value::Null,
                };
                Some(state.with_info(info))
            }
            Err(e) => {
                api_error(diags, &format!("importing module {id}"), None, &e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::admin::{CanaryInfo, RollbackPolicy};

    fn deployment(
        actor_type: &str,
        active: Option<&str>,
        previous: Option<&str>,
        canary: Option<&str>,
    ) -> DeploymentInfo {
        DeploymentInfo {
            actor_type: actor_type.into(),
            active: active.map(Into::into),
            previous: previous.map(Into::into),
            canary: canary.map(|v| CanaryInfo {
                version: v.into(),
                basis_points: 1_000,
            }),
            policy: RollbackPolicy::default(),
            revision: 1,
        }
    }

    #[test]
    fn users_are_named_with_how_they_use_the_module() {
        let deployments = [
            deployment("counter", Some("abc"), None, None),
            deployment("other", Some("def"), Some("abc"), None),
            deployment("trial", Some("def"), None, Some("abc")),
            deployment("removed", None, None, None),
            deployment("unrelated", Some("def"), Some("xyz"), None),
        ];
        assert_eq!(
            users_of(&deployments, "abc"),
            [
                "`counter` (active version)",
                "`other` (previous version, its rollback target)",
                "`trial` (canary version)",
            ]
        );
        assert!(users_of(&deployments, "nothing").is_empty());
    }

    #[test]
    fn the_release_warning_names_the_module_and_its_users() {
        let d = released(
            "abc",
            "still used by the deployment of `counter-shared` (active version)",
        );
        assert_eq!(
            d.summary,
            "module abc released, not deleted: still used by the deployment of `counter-shared` (active version)"
        );
        assert!(d.detail.contains("DELETE /v1/modules/abc"), "{}", d.detail);
        assert!(d.detail.contains("left the state"), "{}", d.detail);
    }
}
