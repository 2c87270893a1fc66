//! Call outcomes per (actor type, version), counted as calls end and taken by the node's report
//! to the control plane (which may roll a version back on them). A report that fails gives its
//! counts back, so none is lost.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use latchkey_wire::admin::OutcomeCounts;
use latchkey_wire::node::VersionOutcomes;

type Counts = HashMap<String, HashMap<String, OutcomeCounts>>;

/// Outcomes since the last report.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    counts: Mutex<Counts>,
}

/// Counts taken for one report.
#[derive(Debug, Default)]
pub(crate) struct Taken(Counts);

impl Taken {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The counts as the report sends them.
    pub(crate) fn to_report(&self) -> Vec<VersionOutcomes> {
        self.0
            .iter()
            .flat_map(|(actor_type, versions)| {
                versions.iter().map(|(version, counts)| VersionOutcomes {
                    actor_type: actor_type.clone(),
                    version: version.clone(),
                    counts: *counts,
                })
            })
            .collect()
    }
}

impl Outcomes {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Each critical section leaves the counts consistent.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one outcome of `version` of `actor_type`.
    pub(crate) fn record(
        &self,
        actor_type: &str,
        version: &str,
        count: impl FnOnce(&mut OutcomeCounts),
    ) {
        let mut outcomes = self.lock();
        // Looked up by `&str` first: no allocation once the version was counted.
        if let Some(counts) = outcomes
            .get_mut(actor_type)
            .and_then(|versions| versions.get_mut(version))
        {
            count(counts);
            return;
        }
        count(
            outcomes
                .entry(actor_type.to_owned())
                .or_default()
                .entry(version.to_owned())
                .or_default(),
        );
    }

    /// Takes everything counted so far.
    pub(crate) fn take(&self) -> Taken {
        Taken(std::mem::take(&mut *self.lock()))
    }

    /// Gives back counts a report could not deliver (added to those counted meanwhile).
    pub(crate) fn give_back(&self, taken: Taken) {
        let mut outcomes = self.lock();
        for (actor_type, versions) in taken.0 {
            let kept = outcomes.entry(actor_type).or_default();
            for (version, counts) in versions {
                kept.entry(version).or_default().add(&counts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_given_back_add_to_those_counted_meanwhile() {
        let outcomes = Outcomes::default();
        outcomes.record("counter", "v1", |c| c.ok += 2);
        let taken = outcomes.take();
        assert!(outcomes.take().is_empty(), "taken once");
        outcomes.record("counter", "v1", |c| c.traps += 1);
        outcomes.give_back(taken);
        let report = outcomes.take().to_report();
        assert_eq!(report.len(), 1);
        assert_eq!((report[0].counts.ok, report[0].counts.traps), (2, 1));
    }
}
