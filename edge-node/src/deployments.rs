//! The deployments this node follows: per actor type, the control plane's latest
//! [`DeploymentInfo`] as heard from its feed, what it says an actor should run ([`Target`]), a
//! revision counter activations compare before each call, and which revisions are in effect
//! here (their versions compiled).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use latchkey_wire::admin::DeploymentInfo;
use tokio::sync::watch;

/// What a deployment says an actor should run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// This node has not heard of the actor type's deployment (yet), or only of a revision
    /// older than the one the actor was placed under.
    Unknown,
    /// The deployment was removed: the actor runs nothing.
    Removed,
    /// This version.
    Version(String),
}

impl Target {
    /// What `deployment` (this node's view of it) says `key` should run, if the view is at
    /// least revision `at_least`. An older view is [`Target::Unknown`]: the control plane
    /// already decided past it, and acting on it would retire an actor just deployed again or
    /// switch an upgraded one back.
    pub(crate) fn of(deployment: Option<&DeploymentInfo>, key: &str, at_least: u64) -> Target {
        match deployment {
            None => Target::Unknown,
            Some(d) if d.revision < at_least => Target::Unknown,
            Some(d) => d
                .version_for(key)
                .map_or(Target::Removed, |v| Target::Version(v.to_owned())),
        }
    }
}

/// The deployments as this node last heard them.
pub(crate) struct Deployments {
    views: RwLock<HashMap<String, DeploymentInfo>>,
    /// Bumped whenever a deployment took effect here: activations compare it before each call.
    revision: AtomicU64,
    /// Actor type → the latest deployment revision in effect here.
    applied: watch::Sender<HashMap<String, u64>>,
}

impl Default for Deployments {
    fn default() -> Self {
        Deployments {
            views: RwLock::default(),
            revision: AtomicU64::new(0),
            applied: watch::channel(HashMap::new()).0,
        }
    }
}

impl Deployments {
    /// What the deployment says actor `(actor_type, key)` should run ([`Target::of`];
    /// `at_least` is the revision the actor was placed under).
    pub(crate) fn target(&self, actor_type: &str, key: &str, at_least: u64) -> Target {
        let views = self.views.read().unwrap_or_else(PoisonError::into_inner);
        Target::of(views.get(actor_type), key, at_least)
    }

    /// The revision counter (see `revision`).
    pub(crate) fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Records `deployment`; returns whether this node's view changed.
    pub(crate) fn set(&self, deployment: DeploymentInfo) -> bool {
        let mut views = self.views.write().unwrap_or_else(PoisonError::into_inner);
        let changed = views.get(&deployment.actor_type) != Some(&deployment);
        views.insert(deployment.actor_type.clone(), deployment);
        changed
    }

    /// Replaces every view with a snapshot's; returns the actor types whose view changed.
    pub(crate) fn replace(&self, snapshot: Vec<DeploymentInfo>) -> Vec<String> {
        let mut views = self.views.write().unwrap_or_else(PoisonError::into_inner);
        let before = std::mem::take(&mut *views);
        let mut changed = Vec::new();
        for d in snapshot {
            if before.get(&d.actor_type) != Some(&d) {
                changed.push(d.actor_type.clone());
            }
            views.insert(d.actor_type.clone(), d);
        }
        changed
    }

    /// The versions `actor_type`'s deployment runs (active and canary) and its revision.
    pub(crate) fn versions(&self, actor_type: &str) -> (Vec<String>, u64) {
        let views = self.views.read().unwrap_or_else(PoisonError::into_inner);
        views.get(actor_type).map_or_else(
            || (Vec::new(), 0),
            |d| {
                let versions = d
                    .active
                    .iter()
                    .chain(d.canary.as_ref().map(|c| &c.version))
                    .cloned()
                    .collect();
                (versions, d.revision)
            },
        )
    }

    /// `actor_type`'s deployment at `revision` took effect: its versions are compiled and every
    /// call from now on checks against it.
    pub(crate) fn took_effect(&self, actor_type: &str, revision: u64) {
        self.revision.fetch_add(1, Ordering::AcqRel);
        self.applied.send_modify(|applied| {
            let known = applied.entry(actor_type.to_owned()).or_default();
            *known = (*known).max(revision);
        });
    }

    /// Follows which revisions are in effect.
    pub(crate) fn in_effect(&self) -> watch::Receiver<HashMap<String, u64>> {
        self.applied.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(active: Option<&str>, revision: u64) -> DeploymentInfo {
        DeploymentInfo {
            actor_type: "counter".into(),
            active: active.map(str::to_owned),
            previous: None,
            canary: None,
            policy: Default::default(),
            revision,
        }
    }

    #[test]
    fn a_view_older_than_the_placement_decides_nothing() {
        // Removed at revision 8, deployed again at 9: an actor placed under 9 on a node that
        // still sees 8 is not retired (and one upgraded under 9 is not switched back).
        let removed = deployment(None, 8);
        assert_eq!(Target::of(Some(&removed), "k", 9), Target::Unknown);
        let old = deployment(Some("v1"), 8);
        assert_eq!(Target::of(Some(&old), "k", 9), Target::Unknown);
    }

    #[test]
    fn a_current_view_decides() {
        assert_eq!(
            Target::of(Some(&deployment(None, 9)), "k", 9),
            Target::Removed
        );
        assert_eq!(
            Target::of(Some(&deployment(Some("v2"), 10)), "k", 9),
            Target::Version("v2".into())
        );
        assert_eq!(Target::of(None, "k", 0), Target::Unknown);
    }

    #[test]
    fn a_snapshot_names_only_the_types_whose_view_changed() {
        let deployments = Deployments::default();
        assert!(deployments.set(deployment(Some("v1"), 1)));
        assert!(!deployments.set(deployment(Some("v1"), 1)), "heard again");
        assert!(
            deployments
                .replace(vec![deployment(Some("v1"), 1)])
                .is_empty()
        );
        assert_eq!(
            deployments.replace(vec![deployment(Some("v2"), 2)]),
            ["counter"]
        );
        assert_eq!(deployments.versions("counter"), (vec!["v2".into()], 2));
        let before = deployments.revision();
        deployments.took_effect("counter", 2);
        assert_eq!(deployments.revision(), before + 1);
        assert_eq!(deployments.in_effect().borrow().get("counter"), Some(&2));
    }
}
