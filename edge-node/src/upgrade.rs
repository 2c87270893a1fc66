//! Hot upgrades: between two calls, an activation whose deployment now names another version for
//! its key switches to it. The new version is instantiated beside the old instance, its
//! `on-upgrade(previous)` hook runs, and the switch commits through the control plane in one
//! fenced transaction that also writes a new activation generation (so nothing running the old
//! code can commit again) and the hook's writes. Only then is the old instance dropped; if the
//! hook fails, the actor stays on the old version and the failure counts against the new one.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use latchkey_wire::ErrorCode;
use latchkey_wire::node::UpgradeRequest;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::activation::{Load, Slot, guest_message, poke};
use crate::deployments::Target;
use crate::error::CallError;
use crate::host::{Poison, ReadCache};
use crate::instance::{Instance, Stop, Stopped, instantiate};
use crate::runtime::bindings::exports::latchkey::actor::handler::Error as GuestError;
use crate::tail::Site;

/// Switches run at once on a node: enough to keep the control plane busy, few enough that each
/// is quick, so a call waits for its own actor's switch only, not for a thousand others.
const CONCURRENT_SWITCHES: usize = 32;

/// The node's switches in progress and the activations waiting for a turn (which keep serving
/// calls on their old version meanwhile). `W` wakes a waiting activation.
pub(crate) struct Switching<W = Weak<AsyncMutex<Slot>>> {
    queue: Mutex<Queue<W>>,
}

impl<W> Default for Switching<W> {
    fn default() -> Self {
        Switching {
            queue: Mutex::new(Queue {
                running: 0,
                waiting: VecDeque::new(),
            }),
        }
    }
}

struct Queue<W> {
    running: usize,
    waiting: VecDeque<(W, Weak<Load>)>,
}

/// Wakes an activation waiting for its turn to switch; false if it is gone.
pub(crate) trait Wake {
    fn wake(&self, load: &Arc<Load>) -> bool;
}

impl Wake for Weak<AsyncMutex<Slot>> {
    fn wake(&self, load: &Arc<Load>) -> bool {
        let Some(slot) = self.upgrade() else {
            return false;
        };
        poke(&slot, load);
        true
    }
}

impl<W: Wake + Clone> Switching<W> {
    /// Takes a turn to switch, or queues the activation to be woken when one ends.
    fn begin(&self, waker: &W, load: &Arc<Load>) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.running < CONCURRENT_SWITCHES {
            queue.running += 1;
            return true;
        }
        if !load.queued.swap(true, Ordering::AcqRel) {
            queue
                .waiting
                .push_back((waker.clone(), Arc::downgrade(load)));
        }
        false
    }

    /// Ends a turn and wakes the first waiting activation that is still there.
    fn end(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.running -= 1;
        while let Some((waker, load)) = queue.waiting.pop_front() {
            let Some(load) = load.upgrade() else { continue };
            load.queued.store(false, Ordering::Release);
            if waker.wake(&load) {
                return;
            }
        }
    }
}

/// How a switch attempt ended.
enum Switched {
    /// Running the new version.
    Done,
    /// Stayed on the old version for good reason (the hook failed, the deployment moved on):
    /// do not try again until the deployment changes.
    Stayed,
    /// The outcome was not decided (the control plane could not be reached): try again before
    /// the next call.
    Retry,
}

/// Why the new version's `on-upgrade` did not succeed.
#[derive(Debug, PartialEq, Eq)]
struct HookFailure {
    reason: String,
    /// The outcome was not the guest's doing (the control plane or the host failed): try again
    /// before the next call rather than count it against the new version.
    retry: bool,
}

impl HookFailure {
    /// What the hook's result and the call's poison (a failed or fenced read) say.
    fn of(
        hook: Result<Result<(), GuestError>, Stopped>,
        poison: Option<Poison>,
    ) -> Option<HookFailure> {
        let (reason, retry) = match (hook, poison) {
            (_, Some(Poison { reason, .. })) => {
                (format!("{reason}; the switch was not committed"), true)
            }
            (Err(Stopped { error, stop }), None) => {
                let retry = stop == Stop::Host && !matches!(error, CallError::Timeout(_));
                (error.to_string(), retry)
            }
            (Ok(Err(e)), None) => (format!("on-upgrade failed: {}", guest_message(&e)), false),
            (Ok(Ok(())), None) => return None,
        };
        Some(HookFailure { reason, retry })
    }
}

impl Slot {
    /// Switches to the deployment's version for this key if the deployment changed since the
    /// last check and names another version. Called between calls only.
    pub(crate) async fn maybe_switch(&mut self) {
        let hosting = Arc::clone(&self.hosting);
        let revision = hosting.deployments.revision();
        if revision == self.seen_revision {
            return;
        }
        let target = match hosting.deployments.target(
            &self.placement.actor_type,
            &self.placement.key,
            self.placement.deployment_revision,
        ) {
            Target::Version(v) if v != self.placement.module_version => v,
            Target::Removed => {
                tracing::info!(actor = %self.name(), "the actor type's deployment was removed; ending the activation");
                self.retired = true;
                self.seen_revision = revision;
                self.lost();
                return;
            }
            Target::Unknown | Target::Version(_) => {
                self.seen_revision = revision;
                return;
            }
        };
        if hosting.lease.valid_epoch() != Some(self.placement.node_epoch) {
            return; // the next call fails and the actor is placed again, on the new version
        }
        if !hosting.shared.switching.begin(&self.this, &self.load) {
            return; // serve on the old version meanwhile; woken when a switch ends
        }
        let switched = self.switch(&target).await;
        hosting.shared.switching.end();
        match switched {
            Switched::Done => {
                self.seen_revision = revision;
                hosting.shared.switches.fetch_add(1, Ordering::Relaxed);
            }
            Switched::Stayed => self.seen_revision = revision,
            Switched::Retry => {}
        }
    }

    async fn switch(&mut self, target: &str) -> Switched {
        let hosting = Arc::clone(&self.hosting);
        let previous = self.placement.module_version.clone();
        let deadline = Instant::now() + hosting.call_timeout;
        let mut next = self.placement.clone();
        next.module_version = target.to_owned();
        // The new instance reads with the old fence (still the live generation) through the old
        // instance's cache, which stays valid: it only holds committed values.
        let cache = self
            .instance
            .as_mut()
            .map(|i| std::mem::take(&mut i.store.data_mut().actor.cache))
            .unwrap_or_default();
        let mut fresh = match instantiate(&hosting, &next, cache, None, deadline).await {
            Ok(fresh) => fresh,
            Err(Stopped { error, stop }) => {
                tracing::warn!(actor = %self.name(), version = target, %error, "cannot instantiate the new version; staying on {previous}");
                return self.failed(target, stop);
            }
        };
        let tag = hosting.tail.tag(&next.actor_type, &next.key, Site::Upgrade);
        let started = Instant::now();
        fresh.begin(&hosting, None, tag.clone(), deadline);
        let hook = fresh.on_upgrade(&previous, deadline).await;
        let poison = fresh.take_poison();
        let fenced = poison.as_ref().is_some_and(|p| p.fenced);
        let failure = HookFailure::of(hook, poison);
        if let Some(tag) = &tag {
            let failed = failure
                .as_ref()
                .map(|f| (ErrorCode::ActorFailed, f.reason.clone()));
            let took = started.elapsed();
            hosting
                .tail
                .outcome(&next.actor_type, &next.key, tag, failed, took);
        }
        if let Some(HookFailure { reason, retry }) = failure {
            self.give_back(fresh);
            if fenced {
                self.lost();
                return Switched::Stayed;
            }
            tracing::warn!(actor = %self.name(), version = target, %reason, "the upgrade hook failed; staying on {previous}");
            if retry {
                return Switched::Retry;
            }
            return self.failed(target, Stop::Trap);
        }
        let writes = std::mem::take(&mut fresh.store.data_mut().actor.writes);
        let request = UpgradeRequest {
            fence: self.placement.fence(),
            version: target.to_owned(),
            writes: writes.to_commit(),
        };
        let upgraded = match hosting.cp.upgrade_activation(&request).await {
            Ok(upgraded) => upgraded,
            Err(e) if e.code() == Some(ErrorCode::Conflict) => {
                // The deployment moved on since this node heard of it; the feed will say so.
                tracing::info!(actor = %self.name(), error = %e, "switch refused; staying on {previous}");
                self.give_back(fresh);
                return Switched::Stayed;
            }
            Err(e) => {
                // Fenced, or the answer was lost (the switch may have committed): either way this
                // generation may be over. Drop everything; the next call asks the control plane.
                tracing::warn!(actor = %self.name(), error = %e, "switch outcome unknown or fenced; re-placing the actor");
                self.lost();
                return Switched::Stayed;
            }
        };
        // Committed: the old instance and its generation are over.
        let actor = &mut fresh.store.data_mut().actor;
        actor.fence = upgraded.fence();
        actor.cache.apply(&writes);
        self.placement = upgraded;
        self.instance = Some(fresh);
        self.reactivate(deadline).await;
        Switched::Done
    }

    /// Runs `on-activate` on the instance just switched to, so it rebuilds its in-memory state
    /// as any fresh instance does. A failure resets the instance: the next call activates anew.
    async fn reactivate(&mut self, deadline: Instant) {
        let hosting = Arc::clone(&self.hosting);
        let Some(live) = self.instance.as_mut() else {
            return;
        };
        let tag = hosting.tail.tag(
            &self.placement.actor_type,
            &self.placement.key,
            Site::Activate,
        );
        live.begin(&hosting, None, tag, deadline);
        match live.on_activate(deadline).await {
            Err(Stopped { error, stop }) => {
                self.count_stop(stop);
                self.instance = None;
                tracing::warn!(actor = %self.name(), %error, "on-activate failed after the switch");
            }
            Ok(activated) => {
                if let Err(error) = self.gate().await {
                    tracing::warn!(actor = %self.name(), %error, "on-activate's writes were not committed after the switch");
                } else if let Err(e) = activated {
                    let (actor_type, version) =
                        (&self.placement.actor_type, &self.placement.module_version);
                    hosting
                        .outcomes
                        .record(actor_type, version, |c| c.guest_errors += 1);
                    self.instance = None;
                    tracing::warn!(actor = %self.name(), error = guest_message(&e), "on-activate failed after the switch");
                }
            }
        }
    }

    /// Counts a failed switch against `target` and stays on the old version.
    fn failed(&self, target: &str, stop: Stop) -> Switched {
        if stop == Stop::Host {
            return Switched::Retry;
        }
        self.hosting
            .outcomes
            .record(&self.placement.actor_type, target, |c| {
                c.upgrade_failures += 1;
            });
        Switched::Stayed
    }

    /// Returns the read cache the new instance borrowed to the old one.
    fn give_back(&mut self, mut fresh: Instance) {
        let cache: ReadCache = std::mem::take(&mut fresh.store.data_mut().actor.cache);
        if let Some(old) = self.instance.as_mut() {
            old.store.data_mut().actor.cache = cache;
        }
    }

    /// This generation may be over: drop the instance and end the activation.
    fn lost(&mut self) {
        self.instance = None;
        self.end();
    }

    fn name(&self) -> String {
        format!("{}/{}", self.placement.actor_type, self.placement.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records wake-ups; `alive: false` plays an activation dropped while it waited.
    #[derive(Clone)]
    struct Probe {
        woken: Arc<std::sync::atomic::AtomicUsize>,
        alive: bool,
    }

    impl Wake for Probe {
        fn wake(&self, _: &Arc<Load>) -> bool {
            if self.alive {
                self.woken.fetch_add(1, Ordering::Relaxed);
            }
            self.alive
        }
    }

    fn probe(alive: bool) -> Probe {
        Probe {
            woken: Arc::default(),
            alive,
        }
    }

    fn stopped(error: CallError, stop: Stop) -> Result<Result<(), GuestError>, Stopped> {
        Err(Stopped { error, stop })
    }

    #[test]
    fn a_hook_that_failed_by_no_fault_of_its_own_is_tried_again() {
        let retry = |hook, poison| HookFailure::of(hook, poison).map(|f| f.retry);
        assert_eq!(retry(Ok(Ok(())), None), None, "the hook succeeded");
        let poison = Poison {
            reason: "reading storage failed".into(),
            fenced: false,
        };
        assert_eq!(retry(Ok(Ok(())), Some(poison)), Some(true));
        let no_slot = CallError::Unavailable("no slot".into());
        assert_eq!(retry(stopped(no_slot, Stop::Host), None), Some(true));
        // Its own doing: counted against the new version, not tried again.
        let slow = CallError::Timeout("late".into());
        assert_eq!(retry(stopped(slow, Stop::Host), None), Some(false));
        let trap = CallError::Trapped("unreachable".into());
        assert_eq!(retry(stopped(trap, Stop::Trap), None), Some(false));
        let refused = Ok(Err(GuestError::Failed("no".into())));
        let failure = HookFailure::of(refused, None).expect("a failure");
        assert_eq!(failure.reason, "on-upgrade failed: no");
        assert!(!failure.retry);
    }

    #[test]
    fn a_switch_ending_wakes_the_first_activation_still_waiting() {
        let switching = Switching::<Probe>::default();
        let (running, load) = (probe(true), Arc::new(Load::default()));
        for _ in 0..CONCURRENT_SWITCHES {
            assert!(switching.begin(&running, &load));
        }
        let (gone, gone_load) = (probe(false), Arc::new(Load::default()));
        assert!(!switching.begin(&gone, &gone_load), "no turn left");
        let (waiting, waiting_load) = (probe(true), Arc::new(Load::default()));
        assert!(!switching.begin(&waiting, &waiting_load));
        assert!(!switching.begin(&waiting, &waiting_load), "queued once");

        switching.end();
        assert_eq!(waiting.woken.load(Ordering::Relaxed), 1, "woken, once");
        assert!(!waiting_load.is_queued());
        assert!(switching.begin(&waiting, &waiting_load), "its turn");
    }
}
