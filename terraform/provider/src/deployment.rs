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
use tf_provider::value::{Value, ValueString};
use tf_provider::{AttributePath, Diagnostics};

use crate::diag::{api_error, attribute_error, path_error, removed};
use crate::managed::Managed;
use crate::number::{Number, keep_form, real_in, whole_in};
use crate::provider::Shared;
use crate::rollout::{Desired, Step, steps};
use crate::schema::{Set, attr, block};

/// The resource.
pub(crate) struct DeploymentResource(pub(crate) Shared);

/// `rollback_policy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Policy {
    max_error_rate: Value<Number>,
    window_secs: Value<Number>,
    min_calls: Value<Number>,
}

/// A configuration error: where, and what is wrong.
type Fault = (AttributePath, String);

fn policy_path(field: &'static str) -> AttributePath {
    AttributePath::new("rollback_policy").attribute(field)
}

/// `rollback_policy.max_error_rate`: a fraction of calls.
fn error_rate(n: &Number) -> Result<f64, Fault> {
    real_in("rollback_policy.max_error_rate", n, 0.0, 1.0)
        .map_err(|e| (policy_path("max_error_rate"), e))
}

/// `rollback_policy.window_secs` and `.min_calls`: counts above 0.
fn policy_count(field: &'static str, n: &Number) -> Result<u64, Fault> {
    whole_in(&format!("rollback_policy.{field}"), n, 1, u64::MAX)
        .map_err(|e| (policy_path(field), e))
}

/// `canary_percent` in basis points: 0 to 100 with at most two decimals.
fn canary_basis_points(n: &Number) -> Result<u32, Fault> {
    let at = || AttributePath::new("canary_percent");
    let p = real_in("canary_percent", n, 0.0, 100.0).map_err(|e| (at(), e))?;
    basis_points(p)
        .filter(|bp| (f64::from(*bp) / 100.0 - p).abs() < 1e-9)
        .ok_or_else(|| {
            (
                at(),
                format!("canary_percent must be 0 to 100 with at most two decimals, got {n}"),
            )
        })
}

impl Policy {
    fn from_wire(p: RollbackPolicy) -> Self {
        Policy {
            max_error_rate: Value::Value(Number::from_f64(p.max_error_rate)),
            window_secs: Value::Value(Number::from_u64(p.window_secs)),
            min_calls: Value::Value(Number::from_u64(p.min_calls)),
        }
    }

    /// This policy with each number in `known`'s form where they are equal.
    fn in_form_of(self, known: &Policy) -> Self {
        Policy {
            max_error_rate: keep_form(self.max_error_rate, &known.max_error_rate),
            window_secs: keep_form(self.window_secs, &known.window_secs),
            min_calls: keep_form(self.min_calls, &known.min_calls),
        }
    }

    /// What is wrong with the fields that are known.
    fn faults(&self) -> Vec<Fault> {
        let mut faults = Vec::new();
        if let Value::Value(n) = &self.max_error_rate
            && let Err(fault) = error_rate(n)
        {
            faults.push(fault);
        }
        for (field, v) in [
            ("window_secs", &self.window_secs),
            ("min_calls", &self.min_calls),
        ] {
            if let Value::Value(n) = v
                && let Err(fault) = policy_count(field, n)
            {
                faults.push(fault);
            }
        }
        faults
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

    /// The policy for the control plane (unset fields: its defaults).
    fn to_wire(&self) -> Result<RollbackPolicy, Fault> {
        let d = RollbackPolicy::default();
        let count = |field, v: &Value<Number>, default| {
            v.as_ref_option()
                .map_or(Ok(default), |n| policy_count(field, n))
        };
        Ok(RollbackPolicy {
            max_error_rate: self
                .max_error_rate
                .as_ref_option()
                .map_or(Ok(d.max_error_rate), error_rate)?,
            window_secs: count("window_secs", &self.window_secs, d.window_secs)?,
            min_calls: count("min_calls", &self.min_calls, d.min_calls)?,
        })
    }
}

/// Its state.
#[derive(Serialize, Deserialize)]
pub(crate) struct State<'a> {
    actor_type: ValueString<'a>,
    version: ValueString<'a>,
    canary_version: ValueString<'a>,
    canary_percent: Value<Number>,
    rollback_policy: Value<Policy>,
    previous_version: ValueString<'a>,
    revision: Value<Number>,
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
                .map(|c| Number::from_f64(f64::from(c.basis_points) / 100.0))
                .into(),
            rollback_policy: Value::Value(Policy::from_wire(info.policy)),
            previous_version: info.previous.map(Into::into).into(),
            revision: Value::Value(Number::from_u64(info.revision)),
        })
    }

    /// This state with its numbers in `known`'s form where they are equal: Terraform wants a
    /// refreshed or applied value exactly as it stored or planned it (`"0.05"`, not the float
    /// the control plane answers).
    fn in_form_of(mut self, known: &State<'_>) -> Self {
        self.canary_percent = keep_form(self.canary_percent, &known.canary_percent);
        if let (Value::Value(p), Value::Value(k)) = (&self.rollback_policy, &known.rollback_policy)
        {
            self.rollback_policy = Value::Value(p.clone().in_form_of(k));
        }
        self
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
    fn desired(&self) -> Result<Desired, Fault> {
        let canary = match (
            self.canary_version.as_deref_option(),
            self.canary_percent.as_ref_option(),
        ) {
            (Some(v), Some(p)) => Some((v.to_owned(), f64::from(canary_basis_points(p)?) / 100.0)),
            (Some(v), None) => Some((v.to_owned(), 0.0)),
            (None, _) => None,
        };
        Ok(Desired {
            version: self
                .version
                .as_deref_option()
                .unwrap_or_default()
                .to_owned(),
            canary,
            policy: self
                .rollback_policy
                .as_ref_option()
                .map_or_else(|| Ok(RollbackPolicy::default()), Policy::to_wire)?,
        })
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
    if let Value::Value(p) = &config.canary_percent
        && let Err((path, message)) = canary_basis_points(p)
    {
        path_error(diags, path, message);
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
        for (path, message) in p.faults() {
            path_error(diags, path, message);
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
        let desired = match planned.desired() {
            Ok(desired) => desired,
            Err((path, message)) => {
                path_error(diags, path, message);
                return None;
            }
        };
        let reason = Some("terraform apply");
        for step in steps(current.as_ref(), &desired) {
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
            Ok(Some(info)) => State::from_info(info).map(|s| s.in_form_of(&planned)),
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
        if let Some(p) = prior {
            // The same numbers as before stay as Terraform stored them (it accepts the prior
            // value for an equal configuration).
            planned = planned.in_form_of(p);
        }
        match prior {
            Some(p) if !planned.rollout_differs(p) => {
                planned.previous_version = p.previous_version.clone();
                planned.revision = p.revision.clone();
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
        let found = self.read_type(diags, &actor_type).await?;
        found.map(|fresh| fresh.in_form_of(&state))
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

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::admin::CanaryInfo;

    /// A configuration as Terraform sends it (JSON here; the same serde calls as MessagePack,
    /// see `crate::number`): `policy` is the `rollback_policy` object.
    fn config(canary_percent: &str, policy: &str) -> State<'static> {
        let json = format!(
            r#"{{"actor_type": "counter", "version": "v1", "canary_version": "v2",
                "canary_percent": {canary_percent}, "rollback_policy": {policy},
                "previous_version": null, "revision": null}}"#
        );
        serde_json::from_str(&json).expect("a configuration")
    }

    fn errors(config: &State<'_>) -> Vec<(AttributePath, String)> {
        let mut diags = Diagnostics::default();
        check(&mut diags, config);
        diags
            .errors
            .into_iter()
            .map(|d| (d.attribute, d.summary.into_owned()))
            .collect()
    }

    #[test]
    fn the_readme_policy_with_0_05_reaches_the_control_plane() {
        // Terraform sends 0.05 as the text "0.05".
        let c = config(
            "10",
            r#"{"max_error_rate": "0.05", "window_secs": 60, "min_calls": 100}"#,
        );
        assert!(errors(&c).is_empty(), "{:?}", errors(&c));
        let desired = c.desired().expect("valid");
        assert_eq!(
            desired.policy,
            RollbackPolicy {
                max_error_rate: 0.05,
                window_secs: 60,
                min_calls: 100
            }
        );
        assert_eq!(desired.canary, Some(("v2".to_owned(), 10.0)));
        let decimal = config(r#""12.34""#, "null");
        assert_eq!(decimal.desired().unwrap().canary.unwrap().1, 12.34);
    }

    #[test]
    fn numbers_out_of_range_name_their_field() {
        let c = config(
            "0.001",
            r#"{"max_error_rate": -0.5, "window_secs": 1e20, "min_calls": "abc"}"#,
        );
        let at = |field| AttributePath::new("rollback_policy").attribute(field);
        assert_eq!(
            errors(&c),
            [
                (
                    AttributePath::new("canary_percent"),
                    "canary_percent must be 0 to 100 with at most two decimals, got 0.001".into()
                ),
                (
                    at("max_error_rate"),
                    "rollback_policy.max_error_rate must be a number from 0 to 1, got -0.5".into()
                ),
                (
                    at("window_secs"),
                    "rollback_policy.window_secs must be a whole number of at least 1, got 100000000000000000000".into()
                ),
                (
                    at("min_calls"),
                    "rollback_policy.min_calls must be a whole number of at least 1, got `abc`, which is not a number".into()
                ),
            ]
        );
        // Apply-time values (unknown at validation) are converted with the same errors.
        let (path, message) = c.desired().unwrap_err();
        assert_eq!(path, AttributePath::new("canary_percent"), "{message}");
    }

    #[test]
    fn what_the_control_plane_answers_keeps_terraforms_form() {
        let c = config(
            r#""33.33""#,
            r#"{"max_error_rate": "0.05", "window_secs": 60, "min_calls": 100}"#,
        );
        let info = DeploymentInfo {
            actor_type: "counter".into(),
            active: Some("v1".into()),
            previous: None,
            canary: Some(CanaryInfo {
                version: "v2".into(),
                basis_points: 3_333,
            }),
            policy: RollbackPolicy::default(),
            revision: 3,
        };
        let fresh = State::from_info(info.clone()).unwrap().in_form_of(&c);
        let json = serde_json::to_value(&fresh).unwrap();
        assert_eq!(json["rollback_policy"]["max_error_rate"], "0.05");
        assert_eq!(json["canary_percent"], "33.33");
        assert!(!fresh.rollout_differs(&c), "the same rollout");
        // A changed value is the control plane's.
        let mut changed = info;
        changed.policy.max_error_rate = 0.25;
        let fresh = State::from_info(changed).unwrap().in_form_of(&c);
        let json = serde_json::to_value(&fresh).unwrap();
        assert_eq!(json["rollback_policy"]["max_error_rate"], 0.25);
        assert!(fresh.rollout_differs(&c), "drift shows");
    }
}
