//! Rollout decisions as pure functions: which version of an actor type is on trial, and whether
//! its reported outcomes call for an automatic rollback under the type's policy.

use latchkey_wire::admin::{DeploymentInfo, OutcomeCounts, RollbackPolicy};

/// The version whose outcomes can trigger a rollback: a canary in progress, else the active
/// version if there is a previous one to return to. `None`: nothing to roll back to.
pub fn on_trial(deployment: &DeploymentInfo) -> Option<&str> {
    match (&deployment.canary, &deployment.previous) {
        (Some(canary), _) => Some(&canary.version),
        (None, Some(_)) => deployment.active.as_deref(),
        (None, None) => None,
    }
}

/// Why a version was rolled back: the numbers, for the deployment history.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// The version rolled back.
    pub version: String,
    /// Outcomes within the window.
    pub counts: OutcomeCounts,
    /// The window, in seconds.
    pub window_secs: u64,
    /// The observed error rate.
    pub rate: f64,
    /// The policy's limit.
    pub max_rate: f64,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "error rate {:.1}% above the limit of {:.1}% over the last {} s for version {} ({})",
            self.rate * 100.0,
            self.max_rate * 100.0,
            self.window_secs,
            self.version,
            self.counts
        )
    }
}

/// Whether `counts` (the outcomes of `version` within the policy's window) exceed the policy:
/// at least `min_calls` outcomes and an error rate above `max_error_rate`.
pub fn decide(policy: &RollbackPolicy, version: &str, counts: &OutcomeCounts) -> Option<Evidence> {
    let total = counts.total();
    if total == 0 || total < policy.min_calls {
        return None;
    }
    let rate = counts.errors() as f64 / total as f64;
    (rate > policy.max_error_rate).then(|| Evidence {
        version: version.to_owned(),
        counts: *counts,
        window_secs: policy.window_secs,
        rate,
        max_rate: policy.max_error_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_wire::admin::CanaryInfo;

    const POLICY: RollbackPolicy = RollbackPolicy {
        max_error_rate: 0.1,
        window_secs: 30,
        min_calls: 20,
    };

    fn counts(ok: u64, traps: u64) -> OutcomeCounts {
        OutcomeCounts {
            ok,
            traps,
            ..OutcomeCounts::default()
        }
    }

    #[test]
    fn rolls_back_only_past_the_minimum_and_the_rate() {
        assert_eq!(
            decide(&POLICY, "v3", &counts(5, 10)),
            None,
            "too few calls to judge"
        );
        assert_eq!(
            decide(&POLICY, "v3", &counts(18, 2)),
            None,
            "exactly 10% is not above"
        );
        let evidence = decide(&POLICY, "v3", &counts(15, 5)).unwrap();
        assert_eq!(evidence.rate, 0.25);
        let text = evidence.to_string();
        assert!(
            text.contains("25.0%") && text.contains("v3") && text.contains("5 traps"),
            "{text}"
        );
    }

    #[test]
    fn the_version_on_trial_is_the_canary_or_a_replaced_active_one() {
        let mut d = DeploymentInfo {
            actor_type: "t".into(),
            active: Some("v1".into()),
            previous: None,
            canary: None,
            policy: POLICY,
            revision: 1,
        };
        assert_eq!(on_trial(&d), None, "nothing to return to");
        d.previous = Some("v0".into());
        assert_eq!(on_trial(&d), Some("v1"));
        d.canary = Some(CanaryInfo {
            version: "v2".into(),
            basis_points: 100,
        });
        assert_eq!(on_trial(&d), Some("v2"));
    }
}
