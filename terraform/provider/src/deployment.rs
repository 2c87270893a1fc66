//! `latchkey_deployment`: which module version an actor type runs, an optional canary, and the
//! automatic rollback policy. An update performs the rollout through the control plane (the
//! steps [`crate::rollout::steps`] decides); destroy removes the deployment.

use async_trait::async_trait;
use latchkey_wire::ErrorCode;
use latchkey_wire::admin::{DeploymentInfo, RollbackPolicy};
use latchkey_wire::canary::basis_points;
use latchkey_wire::client::{Client, ClientError};
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeType, Schema};
use tf_provider::value::{Value, ValueNumber, ValueString};
use tf_provider::{AttributePath, Diagnostics};

use crate::diag::{api_error, attribute_error, removed};
use crate::managed::Managed;
use crate::provider::Shared;
use crate::rollout::{Desired, Step, steps};
use crate::schema::{Set, attr, block};

/// The resource.
pub(crate) struct DeploymentResource(pub(crate) Shared);

/// `rollback_policy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Policy {
    max_error_rate: Value<f64>,
    window_secs: ValueNumber,
    min_calls: ValueNumber,
}

impl Policy {
    fn from_wire(p: RollbackPolicy) -> Self {
        Policy {
            max_error_rate: Value::Value(p.max_error_rate),
            window_secs: Value::Value(i64::try_from(p.window_secs).unwrap_or(i64::MAX)),
            min_calls: Value::Value(i64::try_from(p.min_calls).unwrap_or(i64::MAX)),
        }
    }

    /// Unset fields take the control plane's defaults.
    fn with_defaults(self) -> Self {
        let d = Policy::from_wire(RollbackPolicy::default());
        Policy {
            max_error_rate: if self.max_error_rate.is_null() {
                d.max_error_rate
            } else {
                self.max_error_rate
            },
            window_secs: if self.window_secs.is_null() {
                d.window_secs
            } else {
                self.window_secs
            },
            min_calls: if self.min_calls.is_null() {
                d.min_calls
            } else {
                self.min_calls
            },
        }
    }

    fn to_wire(&self) -> RollbackPolicy {
        let d = RollbackPolicy::default();
        let count = |v: &ValueNumber, default: u64| {
            v.as_ref_option()
                .map_or(default, |n| u64::try_from(*n).unwrap_or(0))
        };
        RollbackPolicy {
            max_error_rate: self
                .max_error_rate
                .as_ref_option()
                .copied()
                .unwrap_or(d.max_error_rate),
            window_secs: count(&self.window_secs, d.window_secs),
            min_calls: count(&self.min_calls, d.min_calls),
        }
    }
}

/// Its state.
#[derive(Serialize, Deserialize)]
pub(crate) struct State<'a> {
    actor_type: ValueString<'a>,
    version: ValueString<'a>,
    canary_version: ValueString<'a>,
    canary_percent: Value<f64>,
    rollback_policy: Value<Policy>,
    previous_version: ValueString<'a>,
    revision: ValueNumber,
}

impl<'a> State<'a> {
    fn from_info(info: DeploymentInfo) -> Option<Self> {
        let active = info.active?; // removed: no deployment
        Some(State {
            actor_type: Value::Value(info.actor_type.into()),
            version: Value::Value(active.into()),
            canary_version: info
                .canary
                .as_ref()
                .map(|c| c.version.clone().into())
                .into(),
            canary_percent: info
                .canary
                .as_ref()
                .map(|c| f64::from(c.basis_points) / 100.0)
                .into(),
            rollback_policy: Value::Value(Policy::from_wire(info.policy)),
            previous_version: info.previous.map(Into::into).into(),
            revision: Value::Value(i64::try_from(info.revision).unwrap_or(i64::MAX)),
        })
    }

    fn actor_type(&self) -> &str {
        self.actor_type.as_deref_option().unwrap_or_default()
    }

    fn with_policy_defaults(mut self) -> Self {
        self.rollback_policy = match self.rollback_policy {
            Value::Null => Value::Value(Policy::from_wire(RollbackPolicy::default())),
            Value::Value(p) => Value::Value(p.with_defaults()),
            Value::Unknown => Value::Unknown,
        };
        self
    }

    /// What the rollout aims for (all of it is known at apply time).
    fn desired(&self) -> Desired {
        Desired {
            version: self
                .version
                .as_deref_option()
                .unwrap_or_default()
                .to_owned(),
            canary: self.canary_version.as_deref_option().map(|v| {
                (
                    v.to_owned(),
                    self.canary_percent.as_ref_option().copied().unwrap_or(0.0),
                )
            }),
            policy: self
                .rollback_policy
                .as_ref_option()
                .map_or_else(RollbackPolicy::default, Policy::to_wire),
        }
    }

    /// Whether the rollout settings differ from `other`'s.
    fn rollout_differs(&self, other: &State<'_>) -> bool {
        self.version != other.version
            || self.canary_version != other.canary_version
            || self.canary_percent != other.canary_percent
            || self.rollback_policy != other.rollback_policy
    }
}

/// Checks what the configuration says, naming the attribute at fault.
fn check(diags: &mut Diagnostics, config: &State<'_>) -> Option<()> {
    let before = diags.errors.len();
    match (&config.canary_version, &config.canary_percent) {
        (Value::Null, Value::Value(_)) => attribute_error(
            diags,
            "canary_percent",
            "canary_percent needs canary_version: which version runs on that share of keys?",
        ),
        (Value::Value(_), Value::Null) => attribute_error(
            diags,
            "canary_percent",
            "canary_version needs canary_percent: the share of keys (0 to 100) to run it on",
        ),
        _ => {}
    }
    if let Value::Value(p) = config.canary_percent {
        let exact = basis_points(p).is_some_and(|bp| (f64::from(bp) / 100.0 - p).abs() < 1e-9);
        if !exact {
            attribute_error(
                diags,
                "canary_percent",
                format!("canary_percent must be 0 to 100 with at most two decimals, got {p}"),
            );
        }
    }
    if let (Value::Value(v), Value::Value(c)) = (&config.version, &config.canary_version)
        && v == c
    {
        attribute_error(
            diags,
            "canary_version",
            "canary_version is the same as version: a canary needs another version",
        );
    }
    if let Value::Value(p) = &config.rollback_policy {
        if let Value::Value(rate) = p.max_error_rate
            && !(0.0..=1.0).contains(&rate)
        {
            attribute_error(
                diags,
                "rollback_policy",
                format!(
                    "rollback_policy.max_error_rate is a fraction of calls, 0 to 1; got {rate}"
                ),
            );
        }
        for (name, v) in [("window_secs", p.window_secs), ("min_calls", p.min_calls)] {
            if let Value::Value(n) = v
                && n <= 0
            {
                attribute_error(
                    diags,
                    "rollback_policy",
                    format!("rollback_policy.{name} must be above 0, got {n}"),
                );
            }
        }
    }
    (diags.errors.len() == before).then_some(())
}

impl DeploymentResource {
    async fn fetch(
        &self,
        client: &Client,
        actor_type: &str,
    ) -> Result<Option<DeploymentInfo>, ClientError> {
        match client.deployment(actor_type).await {
            Ok(detail) => Ok(Some(detail.deployment)),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs the rollout from what is deployed to `planned`, then reads the result back.
    async fn roll_out<'a>(&self, diags: &mut Diagnostics, planned: State<'a>) -> Option<State<'a>> {
        let client = self.0.client(diags)?;
        let actor_type = planned.actor_type().to_owned();
        let current = match self.fetch(&client, &actor_type).await {
            Ok(current) => current,
            Err(e) => {
                api_error(
                    diags,
                    &format!("reading the deployment of `{actor_type}`"),
                    None,
                    &e,
                );
                return None;
            }
        };
        let reason = Some("terraform apply");
        for step in steps(current.as_ref(), &planned.desired()) {
            let (result, what, attribute) = match &step {
                Step::Abort => (
                    client.deployment_action(&actor_type, "abort", reason).await,
                    "aborting the canary of".to_owned(),
                    "canary_version",
                ),
                Step::Promote => (
                    client
                        .deployment_action(&actor_type, "promote", reason)
                        .await,
                    "promoting the canary of".to_owned(),
                    "version",
                ),
                Step::Deploy(v) => (
                    client.deploy(&actor_type, v, reason).await,
                    format!("deploying {v} to"),
                    "version",
                ),
                Step::Canary(v, percent) => (
                    client.canary(&actor_type, v, *percent).await,
                    format!("starting a canary of {v} on {percent}% of"),
                    "canary_version",
                ),
                Step::Policy(p) => (
                    client.set_policy(&actor_type, p).await,
                    "setting the rollback policy of".to_owned(),
                    "rollback_policy",
                ),
            };
            if let Err(e) = result {
                api_error(
                    diags,
                    &format!("{what} `{actor_type}`"),
                    Some(attribute),
                    &e,
                );
                return None;
            }
        }
        match self.fetch(&client, &actor_type).await {
            Ok(Some(info)) => State::from_info(info),
            Ok(None) => {
                diags.root_error_short(format!(
                    "the deployment of `{actor_type}` vanished during apply"
                ));
                None
            }
            Err(e) => {
                api_error(
                    diags,
                    &format!("reading the deployment of `{actor_type}`"),
                    None,
                    &e,
                );
                None
            }
        }
    }

    async fn read_type<'a>(
        &self,
        diags: &mut Diagnostics,
        actor_type: &str,
    ) -> Option<Option<State<'a>>> {
        let client = self.0.client(diags)?;
        match self.fetch(&client, actor_type).await {
            Ok(info) => Some(info.and_then(State::from_info)),
            Err(e) => {
                api_error(
                    diags,
                    &format!("reading the deployment of `{actor_type}`"),
                    None,
                    &e,
                );
                None
            }
        }
    }
}

#[async_trait]
impl Managed for DeploymentResource {
    type State<'a> = State<'a>;

    fn schema(&self) -> Schema {
        let policy_fields = ["max_error_rate", "window_secs", "min_calls"]
            .into_iter()
            .map(|name| (name.to_owned(), AttributeType::Number))
            .collect();
        Schema {
            version: 1,
            block: block(
                "An actor type's deployment: the module version its actors run, an optional canary, and when the control plane rolls back by itself. Changing `version` performs a hot upgrade of live actors; destroying it stops the type (its stored state is kept).",
                vec![
                    (
                        "actor_type",
                        attr(
                            AttributeType::String,
                            Set::Required,
                            "The actor type. Changing it replaces the deployment.",
                        ),
                    ),
                    (
                        "version",
                        attr(
                            AttributeType::String,
                            Set::Required,
                            "Content id of the module every key runs (outside a canary), e.g. `latchkey_module.x.content_id`.",
                        ),
                    ),
                    (
                        "canary_version",
                        attr(
                            AttributeType::String,
                            Set::Optional,
                            "Content id of a version to run on `canary_percent` of keys. Setting `version` to it (and removing the canary) promotes it.",
                        ),
                    ),
                    (
                        "canary_percent",
                        attr(
                            AttributeType::Number,
                            Set::Optional,
                            "Share of keys on the canary, 0 to 100 (two decimals).",
                        ),
                    ),
                    (
                        "rollback_policy",
                        attr(
                            AttributeType::Object(policy_fields),
                            Set::Defaulted,
                            "When the control plane rolls a version back by itself, judged on the outcomes nodes report: `{ max_error_rate = 0.05, window_secs = 60, min_calls = 100 }` (the defaults) rolls back when more than 5% of the calls of the last 60 seconds failed, once there were at least 100. Give all three fields, or omit the attribute for the defaults.",
                        ),
                    ),
                    (
                        "previous_version",
                        attr(
                            AttributeType::String,
                            Set::Computed,
                            "The version active before the last change: what a rollback returns to.",
                        ),
                    ),
                    (
                        "revision",
                        attr(
                            AttributeType::Number,
                            Set::Computed,
                            "Counts the deployment's changes.",
                        ),
                    ),
                ],
            ),
        }
    }

    fn check(&self, diags: &mut Diagnostics, config: &State<'_>) -> Option<()> {
        check(diags, config)
    }

    async fn plan<'a>(
        &self,
        _: &mut Diagnostics,
        prior: Option<&State<'a>>,
        proposed: State<'a>,
    ) -> Option<(State<'a>, Vec<AttributePath>)> {
        let mut planned = proposed.with_policy_defaults();
        match prior {
            Some(p) if !planned.rollout_differs(p) => {
                planned.previous_version = p.previous_version.clone();
                planned.revision = p.revision;
            }
            _ => {
                planned.previous_version = Value::Unknown;
                planned.revision = Value::Unknown;
            }
        }
        let replace = prior
            .filter(|p| p.actor_type != planned.actor_type)
            .map(|_| AttributePath::new("actor_type"))
            .into_iter()
            .collect();
        Some((planned, replace))
    }

    async fn read<'a>(&self, diags: &mut Diagnostics, state: State<'a>) -> Option<State<'a>> {
        let actor_type = state.actor_type().to_owned();
        self.read_type(diags, &actor_type).await?
    }

    async fn apply<'a>(
        &self,
        diags: &mut Diagnostics,
        _: Option<State<'a>>,
        planned: State<'a>,
    ) -> Option<State<'a>> {
        self.roll_out(diags, planned).await
    }

    async fn remove<'a>(&self, diags: &mut Diagnostics, prior: State<'a>) -> Option<()> {
        let client = self.0.client(diags)?;
        let actor_type = prior.actor_type();
        let result = client
            .remove_deployment(actor_type, Some("terraform destroy"))
            .await;
        let what = format!("removing the deployment of `{actor_type}`");
        removed(diags, &what, result)
    }

    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<State<'a>> {
        let found = self.read_type(diags, &id).await?;
        if found.is_none() {
            diags.root_error_short(format!(
                "cannot import: actor type `{id}` has no deployment"
            ));
        }
        found
    }
}
