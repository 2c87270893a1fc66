//! One activation: the single live instance of an actor on this node. Calls take turns on it
//! one at a time, in arrival order (a fair lock), on one instance that keeps its in-memory state
//! between calls. The caller's own task runs its call (no hand-off to another task); once a call
//! holds the instance it runs to its end even if its caller stops waiting ([`Detached`]), so a
//! guest call or a commit is never cut off halfway. Between calls the activation switches to a
//! newly deployed version (`upgrade.rs`).
//!
//! A call's answer is released only after its writes are committed (`instance.rs`). A trap, a
//! resource limit, a timeout, a stale fence or a failed commit discards the call's writes, resets
//! the instance and fails the call; a stale fence also ends the activation, and the router
//! (which owns the table) then drops it, so the next call asks the control plane where the
//! actor lives. An activation holds its node's [`Hosting`], never the node itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use latchkey_wire::node::Activation as Placement;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::CallError;
use crate::host::{Poison, ReadCache};
use crate::hosting::Hosting;
use crate::instance::{Instance, Stop, Stopped, instantiate};
use crate::protocol::CommitError;
use crate::runtime::bindings::exports::latchkey::actor::handler::Error as GuestError;
use crate::tail::{CallTag, Site};

/// One call for an activation.
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) payload: Bytes,
    /// Token id of the caller's capability.
    pub(crate) caller: Option<String>,
    pub(crate) deadline: Instant,
}

/// The handle the activation table keeps. The instance lives while the table or a call holds
/// the activation: after it leaves the table, the calls already admitted still run on it.
pub(crate) struct Activation {
    pub(crate) placement: Placement,
    slot: Arc<Mutex<Slot>>,
    load: Arc<Load>,
}

/// What the table and the calls both track.
#[derive(Default)]
pub(crate) struct Load {
    /// Calls (and version checks) admitted and not finished.
    pending: AtomicUsize,
    /// Node clock (µs) when the last call finished.
    last_used: AtomicU64,
    /// Waiting for a turn to switch versions (`upgrade::Switching`).
    pub(crate) queued: AtomicBool,
    /// The activation's generation may be over (fenced, a lost switch) or its deployment was
    /// removed: it must leave the table.
    ended: AtomicBool,
}

/// A call admitted to an activation (counted as pending until it finishes or is abandoned
/// before it started).
pub(crate) struct Admitted {
    slot: Arc<Mutex<Slot>>,
    pending: Pending,
}

/// One pending call or version check; uncounted when dropped.
struct Pending(Arc<Load>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activation {
    /// A new activation; the instance is created by its first call.
    pub(crate) fn new(hosting: &Arc<Hosting>, placement: Placement) -> Arc<Self> {
        let load = Arc::new(Load::default());
        load.last_used.store(hosting.lease.now(), Ordering::Release);
        let slot = Arc::new_cyclic(|this| {
            Mutex::new(Slot {
                hosting: Arc::clone(hosting),
                this: this.clone(),
                placement: placement.clone(),
                instance: None,
                no_state: placement.no_state,
                seen_revision: NEVER_CHECKED,
                retired: false,
                load: Arc::clone(&load),
            })
        });
        Arc::new(Activation {
            placement,
            slot,
            load,
        })
    }

    /// Counts a call as pending, or refuses it at once if `max_waiting` calls already wait
    /// (overloaded). The table calls this under its lock, so an activation with a call admitted
    /// is never evicted as idle.
    pub(crate) fn admit(&self, max_waiting: usize) -> Result<Admitted, CallError> {
        let before = self.load.pending.fetch_add(1, Ordering::AcqRel);
        let pending = Pending(Arc::clone(&self.load));
        // One call runs; `max_waiting` may wait behind it.
        if before > max_waiting {
            return Err(CallError::Overloaded(self.name()));
        }
        Ok(Admitted {
            slot: Arc::clone(&self.slot),
            pending,
        })
    }

    /// Asks the activation to check its code version now, between calls.
    pub(crate) fn poke(&self) {
        poke(&self.slot, &self.load);
    }

    /// A handle that stays alive while the activation can still run calls (also after it left
    /// the table, while the calls already admitted finish).
    pub(crate) fn task_alive(&self) -> Weak<Load> {
        Arc::downgrade(&self.load)
    }

    /// No call admitted or running.
    pub(crate) fn is_idle(&self) -> bool {
        self.load.pending.load(Ordering::Acquire) == 0
    }

    /// The activation ended: the table drops it (see `Load::ended`).
    pub(crate) fn has_ended(&self) -> bool {
        self.load.ended.load(Ordering::Acquire)
    }

    /// Holds a guest instance, or runs a call (which may be creating one).
    pub(crate) fn holds_instance(&self) -> bool {
        self.slot
            .try_lock()
            .map_or(true, |slot| slot.instance.is_some())
    }

    /// Node clock (µs) of the last finished call.
    pub(crate) fn last_used(&self) -> u64 {
        self.load.last_used.load(Ordering::Acquire)
    }

    fn name(&self) -> String {
        format!("{}/{}", self.placement.actor_type, self.placement.key)
    }
}

impl Admitted {
    /// Waits for the activation's earlier calls (in arrival order), then runs `call` in this
    /// task. The wait has no timer of its own: each earlier call ends by its own deadline, and a
    /// call whose deadline passed while it waited fails at once with a timeout.
    pub(crate) async fn run(self, call: Call) -> Result<Bytes, CallError> {
        let Admitted { slot, pending } = self;
        let slot = slot.lock_owned().await;
        Detached::new(async move {
            let mut slot = slot;
            slot.maybe_switch().await;
            let tagged = slot.tag(&call.method);
            let tag = tagged.as_ref().map(|(tag, _)| tag.clone());
            let result = slot
                .execute(&call.method, &call.payload, call.caller, tag, call.deadline)
                .await;
            if let Some(tagged) = tagged {
                slot.report(tagged, &result);
            }
            slot.load
                .last_used
                .store(slot.hosting.lease.now(), Ordering::Release);
            drop(pending);
            result
        })
        .await
    }
}

/// A future that, if dropped before it finished (its caller stopped waiting), finishes in a
/// task of its own.
struct Detached<T: Send + 'static>(Option<Pin<Box<dyn Future<Output = T> + Send>>>);

impl<T: Send + 'static> Detached<T> {
    fn new(work: impl Future<Output = T> + Send + 'static) -> Self {
        Detached(Some(Box::pin(work)))
    }
}

impl<T: Send + 'static> Future for Detached<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let work = self.0.as_mut().expect("polled after it finished");
        let output = std::task::ready!(work.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(rest) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(rest);
        }
    }
}

/// `Slot::seen_revision` of an activation that has not checked its version yet (the control
/// plane may have placed it on the version that last ran it, not the deployment's).
const NEVER_CHECKED: u64 = u64::MAX;

impl Load {
    /// Waiting for a turn to switch versions.
    #[cfg(test)]
    pub(crate) fn is_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }
}

/// Has an activation check its code version between calls, in a task of its own (counted as
/// pending, so that the activation is not evicted while it switches).
pub(crate) fn poke(slot: &Arc<Mutex<Slot>>, load: &Arc<Load>) {
    load.pending.fetch_add(1, Ordering::AcqRel);
    let pending = Pending(Arc::clone(load));
    let slot = Arc::clone(slot);
    tokio::spawn(async move {
        slot.lock().await.maybe_switch().await;
        drop(pending);
    });
}

/// An activation's state: its instance and what it runs.
pub(crate) struct Slot {
    pub(crate) hosting: Arc<Hosting>,
    /// This slot (weak: a waiting switch must not keep a dropped activation alive), for waking
    /// it when its turn to switch versions comes.
    pub(crate) this: Weak<Mutex<Slot>>,
    /// The activation as the control plane records it (the generation changes on upgrades).
    pub(crate) placement: Placement,
    pub(crate) instance: Option<Instance>,
    /// The control plane placed the actor with no stored state and no instance has run yet: the
    /// first instance starts with a complete, empty read cache.
    no_state: bool,
    /// The node's deployment revision this activation last checked its version against.
    pub(crate) seen_revision: u64,
    /// The actor type's deployment was removed: this activation ended and refuses the calls
    /// still queued on it.
    pub(crate) retired: bool,
    pub(crate) load: Arc<Load>,
}

impl Slot {
    /// A tag for a call of `method` (and the time it starts), if anyone follows this actor.
    fn tag(&self, method: &str) -> Option<(CallTag, Instant)> {
        let (actor_type, key) = (&self.placement.actor_type, &self.placement.key);
        let tag = self
            .hosting
            .tail
            .tag(actor_type, key, Site::Method(method))?;
        Some((tag, Instant::now()))
    }

    /// Reports how the call tagged `tag` ended to whoever follows the actor.
    fn report(&self, (tag, started): (CallTag, Instant), result: &Result<Bytes, CallError>) {
        let error = result.as_ref().err().map(|e| (e.code(), e.to_string()));
        let (actor_type, key) = (&self.placement.actor_type, &self.placement.key);
        self.hosting
            .tail
            .outcome(actor_type, key, &tag, error, started.elapsed());
    }

    async fn execute(
        &mut self,
        method: &str,
        payload: &[u8],
        caller: Option<String>,
        tag: Option<CallTag>,
        deadline: Instant,
    ) -> Result<Bytes, CallError> {
        let hosting = Arc::clone(&self.hosting);
        if self.retired {
            return Err(CallError::NotFound(format!(
                "actor type `{}` is no longer deployed",
                self.placement.actor_type
            )));
        }
        if hosting.lease.valid_epoch() != Some(self.placement.node_epoch) {
            self.instance = None;
            return Err(CallError::Unavailable(
                "this node's lease lapsed or its epoch changed; the actor will be placed again, retry".into(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(CallError::Timeout(
                "the call's deadline passed before it started".into(),
            ));
        }
        if self.instance.is_none() {
            let hook = tag.as_ref().map(CallTag::activation);
            let instance = self.activate(hook, deadline).await?;
            self.instance = Some(instance);
        }
        let live = self.instance.as_mut().expect("just activated");
        live.begin(&hosting, caller, tag, deadline);
        let result = match live.handle(method, payload, deadline).await {
            Ok(result) => result,
            Err(Stopped { error, stop }) => {
                self.count_stop(stop);
                self.instance = None;
                return Err(error);
            }
        };
        self.gate().await?;
        let version = self.placement.module_version.as_str();
        let actor_type = self.placement.actor_type.as_str();
        match result {
            Ok(bytes) => {
                hosting.outcomes.record(actor_type, version, |c| c.ok += 1);
                Ok(Bytes::from(bytes))
            }
            Err(GuestError::UnknownMethod(m)) => {
                hosting.outcomes.record(actor_type, version, |c| c.ok += 1);
                Err(CallError::NotFound(m))
            }
            Err(GuestError::BadRequest(m)) => {
                hosting.outcomes.record(actor_type, version, |c| c.ok += 1);
                Err(CallError::BadRequest(m))
            }
            Err(GuestError::Failed(m)) => {
                hosting
                    .outcomes
                    .record(actor_type, version, |c| c.guest_errors += 1);
                Err(CallError::ActorFailed(m))
            }
        }
    }

    /// Creates the instance and runs `on-activate`, committing its writes.
    async fn activate(
        &mut self,
        tag: Option<CallTag>,
        deadline: Instant,
    ) -> Result<Instance, CallError> {
        let hosting = Arc::clone(&self.hosting);
        let cache = if std::mem::take(&mut self.no_state) {
            ReadCache::of_empty_actor()
        } else {
            ReadCache::default()
        };
        let mut instance = instantiate(&hosting, &self.placement, cache, None, deadline)
            .await
            .map_err(|stopped| self.stopped(stopped))?;
        instance.begin(&hosting, None, tag, deadline);
        let activated = instance
            .on_activate(deadline)
            .await
            .map_err(|stopped| self.stopped(stopped))?;
        self.instance = Some(instance);
        self.gate().await?;
        let instance = self
            .instance
            .take()
            .expect("gate keeps the instance on success");
        if let Err(e) = activated {
            let version = &self.placement.module_version;
            self.hosting
                .outcomes
                .record(&self.placement.actor_type, version, |c| c.guest_errors += 1);
            return Err(CallError::ActorFailed(format!(
                "on-activate failed: {}",
                guest_message(&e)
            )));
        }
        Ok(instance)
    }

    /// After the guest returned: fails if the call was poisoned; commits its writes. On failure
    /// the instance is reset (and a fenced activation ends).
    pub(crate) async fn gate(&mut self) -> Result<(), CallError> {
        let hosting = Arc::clone(&self.hosting);
        let live = self.instance.as_mut().expect("a call just ran");
        if let Some(Poison { reason, fenced }) = live.take_poison() {
            self.instance = None;
            if fenced {
                self.end();
            }
            return Err(CallError::Unavailable(format!(
                "{reason}; nothing of the call was committed"
            )));
        }
        if let Err(CommitError { error, fenced }) = live.commit(&hosting).await {
            self.instance = None;
            if fenced {
                self.end();
            }
            return Err(error);
        }
        Ok(())
    }

    /// Ends this activation: the control plane no longer records it, so it leaves the table
    /// (the router drops it) and the next call asks where the actor lives.
    pub(crate) fn end(&self) {
        self.load.ended.store(true, Ordering::Release);
    }

    /// Counts what stopped a guest export; the error its caller gets.
    fn stopped(&self, Stopped { error, stop }: Stopped) -> CallError {
        self.count_stop(stop);
        error
    }

    pub(crate) fn count_stop(&self, stop: Stop) {
        let (actor_type, version) = (&self.placement.actor_type, &self.placement.module_version);
        let outcomes = &self.hosting.outcomes;
        match stop {
            Stop::Trap => outcomes.record(actor_type, version, |c| c.traps += 1),
            Stop::Cpu => outcomes.record(actor_type, version, |c| c.cpu_limits += 1),
            Stop::Memory => outcomes.record(actor_type, version, |c| c.memory_limits += 1),
            Stop::Host => {}
        }
    }
}

/// The text of a guest error.
pub(crate) fn guest_message(e: &GuestError) -> &str {
    match e {
        GuestError::UnknownMethod(m) | GuestError::BadRequest(m) | GuestError::Failed(m) => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    /// What lets a call outlive its caller: dropped while pending, the work goes on in a task
    /// of its own (here it can only finish if it still runs after the drop).
    #[tokio::test]
    async fn abandoned_work_finishes_in_a_task_of_its_own() {
        let (go, wait) = oneshot::channel::<()>();
        let (finished, done) = oneshot::channel::<()>();
        let mut work = Box::pin(Detached::new(async move {
            wait.await.expect("the test sends go");
            finished.send(()).expect("the test waits");
        }));
        let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        drop(work);
        go.send(()).expect("the abandoned work is still alive");
        done.await.expect("and runs to its end");
    }
}
