//! `latchkey_region`: a region edge nodes join (`--region`) and placement weighs.

use async_trait::async_trait;
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{DEFAULT_REGION_WEIGHT, MAX_REGION_WEIGHT, RegionInfo, RegionRequest};
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueString};
use tf_provider::{AttributePath, Diagnostics};

use crate::diag::{api_error, attribute_error, removed};
use crate::managed::Managed;
use crate::number::{Number, whole_in};
use crate::provider::Shared;
use crate::schema::{Set, attr, block};

/// The resource.
pub(crate) struct RegionResource(pub(crate) Shared);

/// Its state.
#[derive(Serialize, Deserialize)]
pub(crate) struct State<'a> {
    name: ValueString<'a>,
    placement_weight: Value<Number>,
    jurisdiction: ValueString<'a>,
}

impl State<'_> {
    fn from_info(info: RegionInfo) -> Self {
        State {
            name: Value::Value(info.name.into()),
            placement_weight: Value::Value(Number::from_u64(info.placement_weight.into())),
            jurisdiction: info.jurisdiction.map(Into::into).into(),
        }
    }

    fn with_default_weight(mut self) -> Self {
        if self.placement_weight.is_null() {
            self.placement_weight = Value::Value(Number::from_u64(DEFAULT_REGION_WEIGHT.into()));
        }
        self
    }

    fn request(&self, diags: &mut Diagnostics) -> Option<RegionRequest> {
        let placement_weight = match self.placement_weight.as_ref_option() {
            None => DEFAULT_REGION_WEIGHT,
            Some(n) => match whole_in("placement_weight", n, 0, MAX_REGION_WEIGHT.into()) {
                // At most MAX_REGION_WEIGHT, so it fits.
                Ok(w) => u32::try_from(w).unwrap_or(MAX_REGION_WEIGHT),
                Err(message) => {
                    attribute_error(diags, "placement_weight", message);
                    return None;
                }
            },
        };
        Some(RegionRequest {
            placement_weight,
            jurisdiction: self.jurisdiction.as_deref_option().map(str::to_owned),
        })
    }

    fn name(&self) -> &str {
        self.name.as_deref_option().unwrap_or_default()
    }
}

impl RegionResource {
    async fn put<'a>(&self, diags: &mut Diagnostics, planned: State<'a>) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        let request = planned.request(diags)?;
        match client.put_region(planned.name(), &request).await {
            Ok(info) => Some(State::from_info(info)),
            Err(e) => {
                let attribute = match &e {
                    latchkey_wire::client::ClientError::Api(api)
                        if api.message.contains("jurisdiction") =>
                    {
                        "jurisdiction"
                    }
                    latchkey_wire::client::ClientError::Api(api)
                        if api.message.contains("placement_weight") =>
                    {
                        "placement_weight"
                    }
                    _ => "name",
                };
                let what = format!("declaring region `{}`", planned.name());
                api_error(diags, &what, Some(attribute), &e);
                None
            }
        }
    }

    async fn fetch<'a>(&self, diags: &mut Diagnostics, name: &str) -> Option<Option<State<'a>>> {
        let client = self.0.client(diags)?;
        match client.region(name).await {
            Ok(info) => Some(Some(State::from_info(info))),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Some(None),
            Err(e) => {
                api_error(diags, &format!("reading region `{name}`"), None, &e);
                None
            }
        }
    }
}

#[async_trait]
impl Managed for RegionResource {
    type State<'a> = State<'a>;

    fn schema(&self) -> Schema {
        Schema {
            version: 1,
            block: block(
                "A region: edge nodes started with `--region <name>` belong to it, and placement gives each region a share of new actors by its weight.",
                vec![
                    (
                        "name",
                        attr(
                            AttributeType::String,
                            Set::Required,
                            "The region's name, as edge nodes pass it to `--region`. Changing it replaces the region.",
                        ),
                    ),
                    (
                        "placement_weight",
                        attr(
                            AttributeType::Number,
                            Set::Defaulted,
                            "Relative share of new placements that land outside the calling node's region (0 to 10000, default 100). 0 drains the region: it takes no new actors.",
                        ),
                    ),
                    (
                        "jurisdiction",
                        attr(
                            AttributeType::String,
                            Set::Optional,
                            "A jurisdiction tag, e.g. `eu`.",
                        ),
                    ),
                ],
            ),
        }
    }

    fn check(&self, diags: &mut Diagnostics, config: &State<'_>) -> Option<()> {
        if config.placement_weight.is_unknown() {
            return Some(());
        }
        config.request(diags).map(drop)
    }

    async fn plan<'a>(
        &self,
        _: &mut Diagnostics,
        prior: Option<&State<'a>>,
        proposed: State<'a>,
    ) -> Option<(State<'a>, Vec<AttributePath>)> {
        let replace = prior
            .filter(|p| p.name != proposed.name)
            .map(|_| AttributePath::new("name"))
            .into_iter()
            .collect();
        Some((proposed.with_default_weight(), replace))
    }

    async fn read<'a>(&self, diags: &mut Diagnostics, state: State<'a>) -> Option<State<'a>> {
        let name = state.name().to_owned();
        self.fetch(diags, &name).await?
    }

    async fn apply<'a>(
        &self,
        diags: &mut Diagnostics,
        _: Option<State<'a>>,
        planned: State<'a>,
    ) -> Option<State<'a>> {
        self.put(diags, planned).await
    }

    async fn remove<'a>(&self, diags: &mut Diagnostics, prior: State<'a>) -> Option<()> {
        let client = self.0.client(diags)?;
        let result = client.delete_region(prior.name()).await;
        removed(
            diags,
            &format!("removing region `{}`", prior.name()),
            result,
        )
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<State<'a>> {
        let found = self.fetch(diags, &id).await?;
        if found.is_none() {
            diags.root_error_short(format!("cannot import: region `{id}` is not declared"));
        }
        found
    }
}
