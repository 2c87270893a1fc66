//! Where actors are, as this node knows it: its own activations (bounded; only idle ones are
//! evicted, so a call never meets two instances of one actor here) and a cache of where remote
//! actors live, so calls are forwarded without asking the control plane each time. Both are LRUs.
//!
//! An activation that leaves the table (lease doubt, eviction, fencing) finishes the calls already
//! queued on it. Until it has, no new activation of the same generation is started here
//! ([`Table::draining`]): two objects committing for one generation could have a resend of the
//! older one's commit acknowledged by the newer one's number.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use foldhash::fast::RandomState;
use latchkey_wire::Generation;
use lru::LruCache;

use crate::activation::{Activation, Admitted, Load};
use crate::error::CallError;

/// `type \0 key`: one string per actor.
pub(crate) fn actor_id(actor_type: &str, key: &str) -> String {
    let mut id = String::with_capacity(actor_type.len() + key.len() + 1);
    id.push_str(actor_type);
    id.push('\0');
    id.push_str(key);
    id
}

/// Where a remote actor was last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// The node's id.
    pub node_id: String,
    /// Where it takes calls.
    pub address: String,
    /// The activation's generation there.
    pub generation: Generation,
}

/// Local activations and remote locations.
pub(crate) struct Table {
    local: Mutex<LruCache<String, Arc<Activation>, RandomState>>,
    max_local: usize,
    remote: Mutex<LruCache<String, Remote, RandomState>>,
    retired: Mutex<Retired>,
}

/// Activations that left the table, by actor: their generation, and a handle alive while their
/// task still runs. Entries whose task ended are pruned when the map reaches `prune_at`, which
/// then doubles past what is left (so dropping many busy activations at once stays linear).
struct Retired {
    map: HashMap<String, (Generation, Weak<Load>), RandomState>,
    prune_at: usize,
}

/// The smallest `Retired::prune_at`.
const RETIRED_PRUNE_AT: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a few LRU operations that leave the map consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Table {
    pub(crate) fn new(max_local: usize, max_remote: NonZeroUsize) -> Self {
        Table {
            local: Mutex::new(LruCache::unbounded_with_hasher(RandomState::default())),
            max_local: max_local.max(1),
            remote: Mutex::new(LruCache::with_hasher(max_remote, RandomState::default())),
            retired: Mutex::new(Retired {
                map: HashMap::with_hasher(RandomState::default()),
                prune_at: RETIRED_PRUNE_AT,
            }),
        }
    }

    /// Notes that `activation` left the table (its task may still be finishing calls).
    fn retire(&self, id: &str, activation: &Activation) {
        let mut retired = lock(&self.retired);
        if retired.map.len() >= retired.prune_at {
            retired.map.retain(|_, (_, alive)| alive.strong_count() > 0);
            retired.prune_at = RETIRED_PRUNE_AT.max(2 * retired.map.len());
        }
        retired.map.insert(
            id.to_owned(),
            (activation.placement.generation, activation.task_alive()),
        );
    }

    /// Whether an activation of `id` in `generation` that left the table is still finishing
    /// calls: then no new one may start for that generation yet.
    pub(crate) fn draining(&self, id: &str, generation: &Generation) -> bool {
        let mut retired = lock(&self.retired);
        match retired.map.get(id) {
            Some((g, alive)) if alive.strong_count() > 0 => g == generation,
            Some(_) => {
                retired.map.remove(id);
                false
            }
            None => false,
        }
    }

    /// Admits a call to the local activation of `id`, if there is one of `epoch` that has not
    /// ended (`None`: there is none; a stale or ended one leaves the table). Done under the table
    /// lock, so eviction cannot race it.
    pub(crate) fn admit_local(
        &self,
        id: &str,
        epoch: u64,
        max_waiting: usize,
    ) -> Option<Result<Admitted, CallError>> {
        let mut local = lock(&self.local);
        match local.get(id) {
            Some(activation)
                if activation.placement.node_epoch == epoch && !activation.has_ended() =>
            {
                Some(activation.admit(max_waiting))
            }
            Some(_) => {
                if let Some(stale) = local.pop(id) {
                    self.retire(id, &stale);
                }
                None
            }
            None => None,
        }
    }

    /// Whether the local activation of `id` is of `epoch`, has not ended, and holds an instance
    /// (or runs a call).
    pub(crate) fn serving(&self, id: &str, epoch: u64) -> bool {
        lock(&self.local).peek(id).is_some_and(|a| {
            a.placement.node_epoch == epoch && !a.has_ended() && a.holds_instance()
        })
    }

    /// The placement of the local activation of `id`, if there is one.
    pub(crate) fn placement(&self, id: &str) -> Option<latchkey_wire::node::Activation> {
        lock(&self.local).peek(id).map(|a| a.placement.clone())
    }

    /// Adds an activation unless one of the same generation is there already; evicts idle
    /// activations beyond the bound, least recently used first.
    pub(crate) fn insert_local(&self, id: String, make: impl FnOnce() -> Arc<Activation>) {
        let mut local = lock(&self.local);
        if local.peek(&id).is_some() {
            return;
        }
        local.put(id, make());
        let mut budget = local.len().saturating_sub(self.max_local);
        while budget > 0 {
            let victim = local
                .iter()
                .rev()
                .find(|(_, a)| a.is_idle())
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    if let Some(evicted) = local.pop(&k) {
                        self.retire(&k, &evicted);
                    }
                    budget -= 1;
                }
                None => break, // every activation is busy: stay over the bound for now
            }
        }
    }

    /// Drops the local activation of `id` if it ended (fenced, lost or retired: the control
    /// plane no longer records it here). A newer activation of the actor stays.
    pub(crate) fn remove_ended(&self, id: &str) {
        let mut local = lock(&self.local);
        if local.peek(id).is_some_and(|a| a.has_ended())
            && let Some(removed) = local.pop(id)
        {
            self.retire(id, &removed);
        }
    }

    /// Asks every local activation of `actor_type` to check its code version now.
    pub(crate) fn poke(&self, actor_type: &str) -> usize {
        let prefix = actor_id(actor_type, "");
        let local = lock(&self.local);
        local
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, a)| a.poke())
            .count()
    }

    /// Drops every local activation (the lease lapsed or the epoch changed).
    pub(crate) fn clear_local(&self) -> usize {
        let mut local = lock(&self.local);
        let n = local.len();
        while let Some((id, dropped)) = local.pop_lru() {
            self.retire(&id, &dropped);
        }
        n
    }

    /// Drops idle activations whose last call finished before `before` (node clock, µs).
    pub(crate) fn evict_idle(&self, before: u64) -> usize {
        let mut local = lock(&self.local);
        let stale: Vec<String> = local
            .iter()
            .filter(|(_, a)| a.is_idle() && a.last_used() < before)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &stale {
            if let Some(evicted) = local.pop(k) {
                self.retire(k, &evicted);
            }
        }
        stale.len()
    }

    /// Number of local activations.
    pub(crate) fn local_count(&self) -> usize {
        lock(&self.local).len()
    }

    /// Where a remote actor was last seen.
    pub(crate) fn location(&self, id: &str) -> Option<Remote> {
        lock(&self.remote).get(id).cloned()
    }

    pub(crate) fn set_location(&self, id: String, remote: Remote) {
        lock(&self.remote).put(id, remote);
    }

    pub(crate) fn forget_location(&self, id: &str) {
        lock(&self.remote).pop(id);
    }
}
