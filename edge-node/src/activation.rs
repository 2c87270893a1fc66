//! One activation: the single live instance of an actor on this node. Calls wait in a bounded
//! mailbox and run one at a time, in arrival order, on one instance that keeps its in-memory
//! state between calls. Between calls the activation switches to a newly deployed version
//! (`upgrade.rs`).
//!
//! A call's answer is released only after its writes are committed (`instance.rs`). A trap, a
//! resource limit, a timeout, a stale fence or a failed commit discards the call's writes, resets
//! the instance and fails the call; a stale fence also removes the activation from the table, so
//! the next call asks the control plane where the actor lives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use latchkey_wire::node::Activation as Placement;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::CallError;
use crate::host::ReadCache;
use crate::instance::{Instance, Stop, context, instantiate};
use crate::node::NodeInner;
use crate::runtime::bindings::exports::latchkey::actor::handler::Error as GuestError;
use crate::table::actor_id;

/// One call waiting in a mailbox.
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) payload: Bytes,
    /// Token id of the caller's capability.
    pub(crate) caller: Option<String>,
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<Bytes, CallError>>,
}

/// What an activation's task receives.
pub(crate) enum Message {
    Call(Call),
    /// A deployment changed: check the version now rather than at the next call.
    Upgrade,
}

/// The handle the activation table keeps. Dropping it closes the mailbox: the task finishes
/// the calls already queued, then ends and drops the instance.
pub(crate) struct Activation {
    pub(crate) placement: Placement,
    mailbox: mpsc::Sender<Message>,
    load: Arc<Load>,
}

/// What the task and the table both track (the task must not hold the mailbox's sender).
#[derive(Default)]
pub(crate) struct Load {
    /// Calls (and version checks) enqueued or running.
    pending: AtomicUsize,
    /// Node clock (µs) when the last call finished.
    last_used: AtomicU64,
    /// Waiting for a turn to switch versions (`upgrade::Switching`).
    pub(crate) queued: AtomicBool,
}

impl Activation {
    /// Starts the activation's task; the instance is created by its first call.
    pub(crate) fn spawn(node: &Arc<NodeInner>, placement: Placement) -> Arc<Self> {
        let (mailbox, messages) = mpsc::channel(node.config.mailbox_size.max(1));
        let load = Arc::new(Load::default());
        load.last_used.store(node.lease.now(), Ordering::Release);
        let slot = Slot {
            node: Arc::clone(node),
            mailbox: mailbox.downgrade(),
            placement: placement.clone(),
            instance: None,
            seen_revision: NEVER_CHECKED,
            load: Arc::clone(&load),
        };
        tokio::spawn(run(slot, messages));
        Arc::new(Activation {
            placement,
            mailbox,
            load,
        })
    }

    /// Queues a call, or fails at once if the mailbox is full (overloaded) or closed.
    pub(crate) fn enqueue(&self, call: Call) -> Result<(), CallError> {
        self.load.pending.fetch_add(1, Ordering::AcqRel);
        match self.mailbox.try_send(Message::Call(call)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.load.pending.fetch_sub(1, Ordering::AcqRel);
                Err(match e {
                    mpsc::error::TrySendError::Full(_) => CallError::Overloaded(self.name()),
                    mpsc::error::TrySendError::Closed(_) => CallError::Unavailable(format!(
                        "activation of {} was dropped; retry",
                        self.name()
                    )),
                })
            }
        }
    }

    /// Asks the task to check its code version now; false if the mailbox is full (the task
    /// checks before its next call anyway).
    pub(crate) fn poke(&self) -> bool {
        poke(&self.mailbox, &self.load)
    }

    /// A handle that stays alive while the activation's task runs (also after the activation
    /// left the table, while it finishes the calls already queued).
    pub(crate) fn task_alive(&self) -> std::sync::Weak<Load> {
        Arc::downgrade(&self.load)
    }

    /// No call queued or running.
    pub(crate) fn is_idle(&self) -> bool {
        self.load.pending.load(Ordering::Acquire) == 0
    }

    /// Node clock (µs) of the last finished call.
    pub(crate) fn last_used(&self) -> u64 {
        self.load.last_used.load(Ordering::Acquire)
    }

    fn name(&self) -> String {
        format!("{}/{}", self.placement.actor_type, self.placement.key)
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

/// Sends a version check to an activation's task.
pub(crate) fn poke(mailbox: &mpsc::Sender<Message>, load: &Load) -> bool {
    // Counted as pending so that the activation is not evicted while it switches.
    load.pending.fetch_add(1, Ordering::AcqRel);
    let sent = mailbox.try_send(Message::Upgrade).is_ok();
    if !sent {
        load.pending.fetch_sub(1, Ordering::AcqRel);
    }
    sent
}

/// An activation's task state.
pub(crate) struct Slot {
    pub(crate) node: Arc<NodeInner>,
    /// This activation's own mailbox (weak: the task must not keep it open), for waking it when
    /// its turn to switch versions comes.
    pub(crate) mailbox: mpsc::WeakSender<Message>,
    /// The activation as the control plane records it (the generation changes on upgrades).
    pub(crate) placement: Placement,
    pub(crate) instance: Option<Instance>,
    /// The node's deployment revision this activation last checked its version against.
    pub(crate) seen_revision: u64,
    pub(crate) load: Arc<Load>,
}

async fn run(mut slot: Slot, mut messages: mpsc::Receiver<Message>) {
    while let Some(message) = messages.recv().await {
        slot.maybe_switch().await;
        if let Message::Call(call) = message {
            let result = slot
                .execute(&call.method, &call.payload, call.caller, call.deadline)
                .await;
            let _ = call.reply.send(result);
            slot.load
                .last_used
                .store(slot.node.lease.now(), Ordering::Release);
        }
        slot.load.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slot {
    async fn execute(
        &mut self,
        method: &str,
        payload: &[u8],
        caller: Option<String>,
        deadline: Instant,
    ) -> Result<Bytes, CallError> {
        let node = Arc::clone(&self.node);
        if node.lease.valid_epoch() != Some(self.placement.node_epoch) {
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
            let instance = self.activate(deadline).await?;
            self.instance = Some(instance);
        }
        let live = self.instance.as_mut().expect("just activated");
        live.begin(&node, context(&self.placement, caller), deadline);
        let result = match live.handle(method, payload, deadline).await {
            Ok(result) => result,
            Err((error, stop)) => {
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
                node.record(actor_type, version, |c| c.ok += 1);
                Ok(Bytes::from(bytes))
            }
            Err(GuestError::UnknownMethod(m)) => {
                node.record(actor_type, version, |c| c.ok += 1);
                Err(CallError::NotFound(m))
            }
            Err(GuestError::BadRequest(m)) => {
                node.record(actor_type, version, |c| c.ok += 1);
                Err(CallError::BadRequest(m))
            }
            Err(GuestError::Failed(m)) => {
                node.record(actor_type, version, |c| c.guest_errors += 1);
                Err(CallError::ActorFailed(m))
            }
        }
    }

    /// Creates the instance and runs `on-activate`, committing its writes.
    async fn activate(&mut self, deadline: Instant) -> Result<Instance, CallError> {
        let node = Arc::clone(&self.node);
        let mut instance =
            instantiate(&node, &self.placement, ReadCache::default(), None, deadline)
                .await
                .map_err(|(e, stop)| {
                    self.count_stop(stop);
                    e
                })?;
        instance.begin(&node, context(&self.placement, None), deadline);
        let activated = instance.on_activate(deadline).await.map_err(|(e, stop)| {
            self.count_stop(stop);
            e
        })?;
        self.instance = Some(instance);
        self.gate().await?;
        let instance = self
            .instance
            .take()
            .expect("gate keeps the instance on success");
        if let Err(e) = activated {
            let version = &self.placement.module_version;
            self.node
                .record(&self.placement.actor_type, version, |c| c.guest_errors += 1);
            return Err(CallError::ActorFailed(format!(
                "on-activate failed: {}",
                guest_message(&e)
            )));
        }
        Ok(instance)
    }

    /// After the guest returned: fails if the call was poisoned; commits its writes. On failure
    /// the instance is reset (and a fenced activation leaves the table).
    pub(crate) async fn gate(&mut self) -> Result<(), CallError> {
        let node = Arc::clone(&self.node);
        let live = self.instance.as_mut().expect("a call just ran");
        if let Some(reason) = live.take_poison() {
            let fenced = live.store.data().actor.fenced;
            self.instance = None;
            if fenced {
                self.forget();
            }
            return Err(CallError::Unavailable(format!(
                "{reason}; nothing of the call was committed"
            )));
        }
        if let Err((error, fenced)) = live.commit(&node).await {
            self.instance = None;
            if fenced {
                self.forget();
            }
            return Err(error);
        }
        Ok(())
    }

    /// Removes this activation from the table (if it is still this one): the control plane no
    /// longer records it, so the next call must ask where the actor lives.
    pub(crate) fn forget(&self) {
        let id = actor_id(&self.placement.actor_type, &self.placement.key);
        self.node
            .table
            .remove_local(&id, &|a: &Activation| Arc::ptr_eq(&a.load, &self.load));
    }

    pub(crate) fn count_stop(&self, stop: Stop) {
        let (actor_type, version) = (&self.placement.actor_type, &self.placement.module_version);
        match stop {
            Stop::Trap => self.node.record(actor_type, version, |c| c.traps += 1),
            Stop::Cpu => self.node.record(actor_type, version, |c| c.cpu_limits += 1),
            Stop::Memory => self
                .node
                .record(actor_type, version, |c| c.memory_limits += 1),
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
