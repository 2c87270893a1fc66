//! Data sources: `latchkey_nodes` (the fleet's edge nodes, by region) and `latchkey_module`
//! (a module by content id, or the version an actor type runs).

use std::collections::HashMap;

use async_trait::async_trait;
use latchkey_wire::admin::ModuleInfo;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueBool, ValueEmpty, ValueList, ValueString};
use tf_provider::{DataSource, Diagnostics};

use crate::diag::{api_error, attribute_error};
use crate::number::Number;
use crate::provider::Shared;
use crate::schema::{Set, attr, block, strings};

/// `latchkey_nodes`.
pub(crate) struct NodesData(pub(crate) Shared);

/// One node.
#[derive(Serialize, Deserialize)]
pub(crate) struct Node<'a> {
    id: ValueString<'a>,
    region: ValueString<'a>,
    address: ValueString<'a>,
    epoch: Value<Number>,
    live: ValueBool,
    eligible: ValueBool,
}

/// `latchkey_nodes`' state.
#[derive(Serialize, Deserialize)]
pub(crate) struct Nodes<'a> {
    region: ValueString<'a>,
    live_only: ValueBool,
    nodes: ValueList<Node<'a>>,
}

#[async_trait]
impl DataSource for NodesData {
    type State<'a> = Nodes<'a>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _: &mut Diagnostics) -> Option<Schema> {
        let node = HashMap::from([
            ("id".to_owned(), AttributeType::String),
            ("region".to_owned(), AttributeType::String),
            ("address".to_owned(), AttributeType::String),
            ("epoch".to_owned(), AttributeType::Number),
            ("live".to_owned(), AttributeType::Bool),
            ("eligible".to_owned(), AttributeType::Bool),
        ]);
        Some(Schema {
            version: 1,
            block: block(
                "The edge nodes registered with the control plane, optionally of one region.",
                vec![
                    (
                        "region",
                        attr(
                            AttributeType::String,
                            Set::Optional,
                            "Only nodes of this region.",
                        ),
                    ),
                    (
                        "live_only",
                        attr(
                            AttributeType::Bool,
                            Set::Optional,
                            "Only nodes holding a valid lease now (default true).",
                        ),
                    ),
                    (
                        "nodes",
                        attr(
                            AttributeType::List(Box::new(AttributeType::Object(node))),
                            Set::Computed,
                            "The nodes, by id: `id`, `region`, `address` (where nodes forward calls), `epoch`, `live` (lease valid), `eligible` (receives placements).",
                        ),
                    ),
                ],
            ),
        })
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        mut config: Nodes<'a>,
        _: ValueEmpty,
    ) -> Option<Nodes<'a>> {
        let client = self.0.client(diags)?;
        let mut nodes = match client.nodes().await {
            Ok(nodes) => nodes,
            Err(e) => {
                api_error(diags, "listing nodes", None, &e);
                return None;
            }
        };
        let region = config.region.as_deref_option().map(str::to_owned);
        let live_only = config.live_only.as_ref_option().copied().unwrap_or(true);
        nodes.retain(|n| region.as_deref().is_none_or(|r| n.region == r) && (n.live || !live_only));
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        config.nodes = Value::Value(
            nodes
                .into_iter()
                .map(|n| Node {
                    id: Value::Value(n.id.into()),
                    region: Value::Value(n.region.into()),
                    address: Value::Value(n.address.into()),
                    epoch: Value::Value(Number::from_u64(n.epoch)),
                    live: Value::Value(n.live),
                    eligible: Value::Value(n.eligible),
                })
                .collect(),
        );
        Some(config)
    }
}

/// `data "latchkey_module"`.
pub(crate) struct ModuleData(pub(crate) Shared);

/// Its state.
#[derive(Serialize, Deserialize)]
pub(crate) struct Module<'a> {
    actor_type: ValueString<'a>,
    content_id: ValueString<'a>,
    size: Value<Number>,
    uploaded_at: Value<Number>,
    exports: ValueList<ValueString<'a>>,
    imports: ValueList<ValueString<'a>>,
}

fn names<'a>(items: Vec<String>) -> ValueList<ValueString<'a>> {
    Value::Value(items.into_iter().map(|s| Value::Value(s.into())).collect())
}

impl<'a> Module<'a> {
    fn with_info(mut self, info: ModuleInfo) -> Self {
        self.content_id = Value::Value(info.content_id.into());
        self.size = Value::Value(Number::from_u64(info.size));
        self.uploaded_at = Value::Value(Number::from_u64(info.uploaded_at));
        self.exports = names(info.exports);
        self.imports = names(info.imports);
        self
    }
}

#[async_trait]
impl DataSource for ModuleData {
    type State<'a> = Module<'a>;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _: &mut Diagnostics) -> Option<Schema> {
        let computed = |description| attr(AttributeType::Number, Set::Computed, description);
        Some(Schema {
            version: 1,
            block: block(
                "A module uploaded to the control plane: by `content_id`, or the version `actor_type` runs now.",
                vec![
                    (
                        "actor_type",
                        attr(
                            AttributeType::String,
                            Set::Optional,
                            "Look up the version this actor type runs (its deployment's active version).",
                        ),
                    ),
                    (
                        "content_id",
                        attr(
                            AttributeType::String,
                            Set::Defaulted,
                            "Look up this version; computed when `actor_type` is given instead.",
                        ),
                    ),
                    ("size", computed("Size in bytes.")),
                    ("uploaded_at", computed("Store version at upload.")),
                    (
                        "exports",
                        attr(strings(), Set::Computed, "Interfaces it exports."),
                    ),
                    (
                        "imports",
                        attr(strings(), Set::Computed, "Interfaces it imports."),
                    ),
                ],
            ),
        })
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Module<'a>,
        _: ValueEmpty,
    ) -> Option<Module<'a>> {
        let client = self.0.client(diags)?;
        let id = match (
            config.content_id.as_deref_option(),
            config.actor_type.as_deref_option(),
        ) {
            (Some(id), _) => id.to_owned(),
            (None, Some(actor_type)) => match client.deployment(actor_type).await {
                Ok(detail) => match detail.deployment.active {
                    Some(v) => v,
                    None => {
                        attribute_error(
                            diags,
                            "actor_type",
                            format!("actor type `{actor_type}` has no deployed version"),
                        );
                        return None;
                    }
                },
                Err(e) => {
                    let what = format!("reading the deployment of `{actor_type}`");
                    api_error(diags, &what, Some("actor_type"), &e);
                    return None;
                }
            },
            (None, None) => {
                attribute_error(
                    diags,
                    "content_id",
                    "give `content_id` or `actor_type` to say which module",
                );
                return None;
            }
        };
        match client.module(&id).await {
            Ok(info) => Some(config.with_info(info)),
            Err(e) => {
                api_error(
                    diags,
                    &format!("reading module {id}"),
                    Some("content_id"),
                    &e,
                );
                None
            }
        }
    }
}
