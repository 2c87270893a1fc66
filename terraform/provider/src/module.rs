//! `latchkey_module`: a WASM component uploaded from a file. The file's SHA-256 is its content
//! id, so a changed file plans an update (a new upload; the old version stays in the control
//! plane as a rollback target) and the new id is known at plan time.

use async_trait::async_trait;
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::ModuleInfo;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueList, ValueNumber, ValueString};
use tf_provider::{AttributePath, Diagnostics};

use crate::diag::{api_error, attribute_error, removed};
use crate::managed::Managed;
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
    size: ValueNumber,
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

fn size_of(n: u64) -> ValueNumber {
    Value::Value(i64::try_from(n).unwrap_or(i64::MAX))
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
                self.size = p.size;
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

impl ModuleResource {
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
        removed(
            diags,
            &format!("deleting module {id}"),
            client.delete_module(id).await,
        )
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
