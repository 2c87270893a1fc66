//! What a `latchkey_deployment` change takes: the control-plane operations (abort, promote,
//! deploy, canary, policy) that move a deployment from what it is to what the configuration
//! says, in an order the control plane accepts. Pure: the resource runs the steps.

use latchkey_wire::admin::{DeploymentInfo, RollbackPolicy};
use latchkey_wire::canary::basis_points;

/// What the configuration asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The version every key outside the canary runs.
    pub version: String,
    /// A canary: version and percent of keys.
    pub canary: Option<(String, f64)>,
    /// The automatic rollback policy.
    pub policy: RollbackPolicy,
}

/// One control-plane operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Drop the canary in progress.
    Abort,
    /// Make the canary's version active for every key.
    Promote,
    /// Make a version active for every key.
    Deploy(String),
    /// Run a version on a percent of keys (or resize the canary of that version).
    Canary(String, f64),
    /// Replace the rollback policy.
    Policy(RollbackPolicy),
}

/// The steps from `current` (`None`: nothing deployed) to `desired`. A canary whose version
/// becomes the desired version is promoted (the keys already on it stay); any other canary that
/// is not the desired one is aborted before the deploy, since the control plane refuses deploys
/// during a canary.
pub fn steps(current: Option<&DeploymentInfo>, desired: &Desired) -> Vec<Step> {
    let mut out = Vec::new();
    let mut active = current.and_then(|c| c.active.clone());
    let mut canary = current
        .and_then(|c| c.canary.as_ref())
        .map(|c| (c.version.clone(), c.basis_points));
    if let Some((version, _)) = canary.clone() {
        let kept = desired.canary.as_ref().is_some_and(|(v, _)| *v == version);
        if !kept {
            if version == desired.version && desired.canary.is_none() {
                out.push(Step::Promote);
                active = Some(version);
            } else {
                out.push(Step::Abort);
            }
            canary = None;
        }
    }
    if active.as_deref() != Some(desired.version.as_str()) {
        out.push(Step::Deploy(desired.version.clone()));
    }
    if let Some((version, percent)) = &desired.canary {
        let wanted = basis_points(*percent).map(|bp| (version.clone(), bp));
        if canary != wanted {
            out.push(Step::Canary(version.clone(), *percent));
        }
    }
    let policy = current.map_or_else(RollbackPolicy::default, |c| c.policy);
    if policy != desired.policy {
        out.push(Step::Policy(desired.policy));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::admin::CanaryInfo;

    fn info(active: Option<&str>, canary: Option<(&str, u32)>) -> DeploymentInfo {
        DeploymentInfo {
            actor_type: "counter".into(),
            active: active.map(Into::into),
            previous: None,
            canary: canary.map(|(v, bp)| CanaryInfo {
                version: v.into(),
                basis_points: bp,
            }),
            policy: RollbackPolicy::default(),
            revision: 1,
        }
    }

    fn desired(version: &str, canary: Option<(&str, f64)>) -> Desired {
        Desired {
            version: version.into(),
            canary: canary.map(|(v, p)| (v.into(), p)),
            policy: RollbackPolicy::default(),
        }
    }

    #[test]
    fn a_new_deployment_is_one_deploy_and_nothing_when_it_matches() {
        assert_eq!(
            steps(None, &desired("v1", None)),
            [Step::Deploy("v1".into())]
        );
        assert_eq!(
            steps(Some(&info(Some("v1"), None)), &desired("v1", None)),
            []
        );
    }

    #[test]
    fn a_canary_starts_resizes_and_is_promoted_by_naming_its_version() {
        let d = info(Some("v1"), None);
        assert_eq!(
            steps(Some(&d), &desired("v1", Some(("v2", 10.0)))),
            [Step::Canary("v2".into(), 10.0)]
        );
        let c = info(Some("v1"), Some(("v2", 1_000)));
        assert_eq!(steps(Some(&c), &desired("v1", Some(("v2", 10.0)))), []);
        assert_eq!(
            steps(Some(&c), &desired("v1", Some(("v2", 50.0)))),
            [Step::Canary("v2".into(), 50.0)]
        );
        assert_eq!(steps(Some(&c), &desired("v2", None)), [Step::Promote]);
    }

    #[test]
    fn another_canary_is_aborted_before_a_deploy() {
        let c = info(Some("v1"), Some(("v2", 1_000)));
        assert_eq!(steps(Some(&c), &desired("v1", None)), [Step::Abort]);
        assert_eq!(
            steps(Some(&c), &desired("v3", None)),
            [Step::Abort, Step::Deploy("v3".into())]
        );
        assert_eq!(
            steps(Some(&c), &desired("v1", Some(("v3", 5.0)))),
            [Step::Abort, Step::Canary("v3".into(), 5.0)]
        );
    }

    #[test]
    fn drift_back_to_the_configured_version_and_policy() {
        // Rolled back behind Terraform's back (or automatically): deploy the configured one.
        let rolled = info(Some("v1"), None);
        let mut want = desired("v2", None);
        want.policy.min_calls = 10;
        assert_eq!(
            steps(Some(&rolled), &want),
            [Step::Deploy("v2".into()), Step::Policy(want.policy)]
        );
    }
}
